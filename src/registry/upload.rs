//! Blob uploads: POST (with or without a mount), one streamed PATCH or fixed-size chunks,
//! PUT `?digest=`, and cancelling a session.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::{Response, StatusCode};

use super::RegistryError;
use super::client::{OCTET, Registry, Started, Upload};
use super::error::{backoff, status_error, transport_error};
use super::session::Session;
use crate::oci::Digest;

impl Registry {
    /// Opens an upload session, or mounts `digest` from `from` when given (a 202 answer to a
    /// mount is an ordinary session and is used as one).
    pub async fn start_upload(
        &self,
        repo: &str,
        mount: Option<(&Digest, &str)>,
    ) -> Result<Started, RegistryError> {
        let op = match mount {
            Some((d, from)) => format!("mount {d} from {from} into {repo}"),
            None => format!("POST blob upload in {repo}"),
        };
        let mut url = self.url(&format!("/v2/{repo}/blobs/uploads/"));
        if let Some((d, from)) = mount {
            url.query_pairs_mut()
                .append_pair("mount", d.as_str())
                .append_pair("from", from);
        }
        let scopes = Self::scopes(repo, mount.map(|m| m.1));
        let resp = self
            .send(&op, &url, &scopes, || {
                self.http.post(url.clone()).header(CONTENT_LENGTH, "0")
            })
            .await?;
        match resp.status() {
            StatusCode::CREATED if mount.is_some() => Ok(Started::Mounted),
            StatusCode::ACCEPTED => {
                let location = self.location(&op, &url, &resp)?;
                let min_chunk = resp
                    .headers()
                    .get("oci-chunk-min-length")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                Ok(Started::Session(Upload {
                    location,
                    repository: repo.to_string(),
                    min_chunk,
                }))
            }
            _ => Err(status_error(&op, resp).await),
        }
    }

    /// Mounts `digest` from `from` into `repo`; false when the registry declined (the session
    /// it opened instead is cancelled).
    pub async fn mount(
        &self,
        repo: &str,
        digest: &Digest,
        from: &str,
    ) -> Result<bool, RegistryError> {
        match self.start_upload(repo, Some((digest, from))).await? {
            Started::Mounted => Ok(true),
            Started::Session(s) => {
                self.cancel(&s).await;
                Ok(false)
            }
        }
    }

    /// Sends a whole blob in one PATCH from a stream. `len` sets Content-Length when known;
    /// otherwise the body goes with chunked transfer encoding.
    pub async fn patch_stream(
        &self,
        session: &Upload,
        body: reqwest::Body,
        len: Option<u64>,
    ) -> Result<Upload, RegistryError> {
        let op = format!("PATCH blob upload in {}", session.repository);
        let scopes = Self::scopes(&session.repository, None);
        let mut req = self
            .http
            .patch(session.location.clone())
            .header(CONTENT_TYPE, OCTET)
            .body(body);
        if let Some(len) = len {
            req = req.header(CONTENT_LENGTH, len);
        }
        // Tokens are refreshed before a body starts: a 401 after gigabytes is too late.
        if self.same_origin(&session.location)
            && let Some(h) = self.auth.header(&self.http, &scopes).await?
        {
            req = req.header(AUTHORIZATION, h);
        }
        let resp = super::observe::sent(&op, req.send())
            .await
            .map_err(|e| transport_error(&op, &e, self.idle))?;
        self.next_session(&op, session, resp).await
    }

    /// Chunked mode: one PATCH with `Content-Range: start-end` (no `bytes ` prefix, no total,
    /// as ACR insists) and `Content-Length`. The chunk is in memory, so it is retried.
    pub async fn patch_chunk(
        &self,
        session: &Upload,
        chunk: Bytes,
        offset: u64,
    ) -> Result<Upload, RegistryError> {
        let op = format!("PATCH chunk at {offset} in {}", session.repository);
        let end = offset + chunk.len() as u64 - 1;
        let scopes = Self::scopes(&session.repository, None);
        let resp = self
            .send(&op, &session.location, &scopes, || {
                self.http
                    .patch(session.location.clone())
                    .header(CONTENT_TYPE, OCTET)
                    .header("content-range", format!("{offset}-{end}"))
                    .header(CONTENT_LENGTH, chunk.len())
                    .body(chunk.clone())
            })
            .await?;
        self.next_session(&op, session, resp).await
    }

    /// The session after a PATCH: 202 (or ECR's 201, or 204) and the Location to use next.
    async fn next_session(
        &self,
        op: &str,
        session: &Upload,
        resp: Response,
    ) -> Result<Upload, RegistryError> {
        match resp.status() {
            StatusCode::ACCEPTED | StatusCode::CREATED | StatusCode::NO_CONTENT => {
                let location = self.location(op, &session.location, &resp)?;
                Ok(Upload {
                    location,
                    repository: session.repository.clone(),
                    min_chunk: session.min_chunk,
                })
            }
            _ => Err(status_error(op, resp).await),
        }
    }

    /// Whether a streamed PATCH of known size declares its Content-Length.
    pub fn send_content_length(&self) -> bool {
        self.content_length
    }

    /// Bytes per PATCH in chunked mode; 0 means one streamed PATCH per blob.
    pub fn chunk_size(&self) -> u64 {
        self.chunk_size
    }

    /// Closes a session with `PUT ?digest=` (added to the Location's query, never replacing it).
    pub async fn finish_upload(
        &self,
        session: &Upload,
        digest: &Digest,
    ) -> Result<(), RegistryError> {
        let op = format!("PUT blob {digest} in {}", session.repository);
        let mut url = session.location.clone();
        url.query_pairs_mut().append_pair("digest", digest.as_str());
        let scopes = Self::scopes(&session.repository, None);
        let resp = self
            .send(&op, &url, &scopes, || {
                self.http
                    .put(url.clone())
                    .header(CONTENT_TYPE, OCTET)
                    .header(CONTENT_LENGTH, "0")
            })
            .await?;
        match resp.status() {
            StatusCode::CREATED | StatusCode::NO_CONTENT | StatusCode::ACCEPTED => Ok(()),
            _ => Err(status_error(&op, resp).await),
        }
    }

    /// Cancels a session; best effort. distribution maps DELETE to the `delete` action even
    /// on upload URLs, so the token asks for it (an issuer grants what it allows).
    pub async fn cancel(&self, session: &Upload) {
        let mut req = self.http.delete(session.location.clone());
        let scopes = [format!(
            "repository:{}:pull,push,delete",
            session.repository
        )];
        let auth = async {
            if self.same_origin(&session.location) {
                self.auth.header(&self.http, &scopes).await
            } else {
                Ok(None)
            }
        };
        if let Ok(Ok(Some(h))) = tokio::time::timeout(Duration::from_secs(10), auth).await {
            req = req.header(AUTHORIZATION, h);
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), req.send()).await;
    }

    /// Uploads a blob held in memory (configs, small JSON), skipping it when present. The whole
    /// upload is retried from a fresh POST, since its bytes are at hand.
    pub async fn put_blob(
        self: &Arc<Self>,
        repo: &str,
        digest: &Digest,
        bytes: Bytes,
    ) -> Result<bool, RegistryError> {
        if self.blob_exists(repo, digest).await? {
            return Ok(false);
        }
        let mut attempt = 0;
        loop {
            let result = async {
                let mut session = Session::open(self, repo).await?;
                let len = Some(bytes.len() as u64);
                let body = futures_util::stream::iter([Ok(bytes.clone())]);
                if let Err(e) = session.send(body, len, Default::default()).await {
                    session.cancel().await;
                    return Err(e);
                }
                session.commit(digest).await
            }
            .await;
            match result {
                Err(e) if e.retryable() && attempt < self.retries => {
                    attempt += 1;
                    tokio::time::sleep(backoff(attempt)).await;
                }
                other => return other.map(|()| true),
            }
        }
    }

    /// Chunked mode: gathers `chunk_size` bytes (at least the registry's minimum, capped at
    /// 256 MiB whatever it asks) per PATCH, tracking the offset itself, never trusting
    /// `Range` alone. `session` follows every accepted chunk, so whatever happens next
    /// (a failed chunk, a stall) the session can be cancelled at its current Location.
    pub async fn patch_chunks(
        &self,
        session: &mut Upload,
        body: impl futures_util::Stream<Item = std::io::Result<Bytes>>,
    ) -> Result<(), RegistryError> {
        use futures_util::StreamExt;
        let size = self.chunk_size().max(session.min_chunk).min(256 << 20) as usize;
        let mut offset = 0u64;
        let mut buf = bytes::BytesMut::with_capacity(size);
        tokio::pin!(body);
        loop {
            let end = match body.next().await {
                Some(Ok(b)) => {
                    buf.extend_from_slice(&b);
                    false
                }
                Some(Err(e)) => {
                    return Err(RegistryError::Protocol {
                        op: "chunked upload".into(),
                        detail: e.to_string(),
                    });
                }
                None => true,
            };
            while buf.len() >= size || (end && !buf.is_empty()) {
                let chunk = buf.split_to(buf.len().min(size)).freeze();
                let n = chunk.len() as u64;
                *session = self.patch_chunk(session, chunk, offset).await?;
                offset += n;
            }
            if end {
                return Ok(());
            }
        }
    }
}
