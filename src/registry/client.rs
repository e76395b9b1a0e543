//! The registry client proper. Every request that carries no body (or a body still in memory)
//! is retried with backoff; a streamed PATCH is sent once, since its bytes are gone.

use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, LOCATION, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::{Response, StatusCode};
use url::Url;

use super::RegistryError;
use super::auth::Auth;
use super::error::describe_body;
use crate::config::Config;
use crate::digest::Digest;

pub(super) const OCTET: &str = "application/octet-stream";
const MANIFEST_MAX: usize = 4 << 20;

/// The registry hoist pushes to. Cheap to share (`Arc`); one connection pool per process.
pub struct Registry {
    pub(super) http: reqwest::Client,
    pub(super) base: Url,
    pub(super) auth: Auth,
    pub(super) retries: u32,
    pub(super) idle: Duration,
    pub(super) chunk_size: u64,
    pub(super) content_length: bool,
    pub(super) upload_hosts: Vec<String>,
}

/// An open upload session: where to send the next request.
#[derive(Debug, Clone)]
pub struct Upload {
    pub location: Url,
    pub repository: String,
    /// `OCI-Chunk-Min-Length` from the POST, for chunked mode.
    pub min_chunk: u64,
}

/// The answer to a POST that may mount.
pub enum Started {
    Mounted,
    Session(Upload),
}

impl Registry {
    pub fn new(config: &Config) -> anyhow::Result<Registry> {
        let mut builder = reqwest::Client::builder();
        if let Some(ca) = &config.registry_ca_file {
            let pem =
                std::fs::read(ca).map_err(|e| anyhow::anyhow!("reading {}: {e}", ca.display()))?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem)? {
                builder = builder.add_root_certificate(cert);
            }
        }
        if !config.registry_tls_verify {
            tracing::warn!(registry = %config.registry, "TLS verification of the registry is OFF (registry_tls_verify = false)");
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        let http = builder
            // No client-wide read timeout: reqwest's runs from send to response, which would
            // kill a long streamed PATCH that is still moving. Body-less requests get a
            // timeout in `send`; a PATCH is watched for progress by the blob job.
            .connect_timeout(config.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("hoist/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Registry {
            http,
            base: config.registry.clone(),
            auth: Auth::new(config.credentials.clone()),
            retries: config.retries,
            idle: config.idle_timeout,
            chunk_size: config.upload_chunk_bytes,
            content_length: config.patch_content_length,
            upload_hosts: config.registry_upload_hosts.clone(),
        })
    }

    /// How long a transfer may make no progress.
    pub fn idle(&self) -> Duration {
        self.idle
    }

    /// The registry's host, as clients name it (`host:port`).
    pub fn host(&self) -> String {
        match self.base.port() {
            Some(p) => format!("{}:{p}", self.base.host_str().unwrap_or("")),
            None => self.base.host_str().unwrap_or("").to_string(),
        }
    }

    pub(super) fn url(&self, path: &str) -> Url {
        let mut u = self.base.clone();
        u.set_path(path);
        u.set_query(None);
        u
    }

    pub(super) fn scopes(repo: &str, from: Option<&str>) -> Vec<String> {
        let mut s = vec![format!("repository:{repo}:pull,push")];
        if let Some(f) = from.filter(|f| *f != repo) {
            s.push(format!("repository:{f}:pull"));
        }
        s
    }

    /// Sends a request whose body can be rebuilt, following auth challenges and retrying
    /// transient failures with exponential backoff, jitter and `Retry-After`.
    pub(super) async fn send(
        &self,
        op: &str,
        url: &Url,
        scopes: &[String],
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Response, RegistryError> {
        let mut attempt = 0u32;
        let mut auth_retried = false;
        loop {
            let mut req = build();
            if self.same_origin(url)
                && let Some(h) = self.auth.header(&self.http, scopes).await?
            {
                req = req.header(AUTHORIZATION, h);
            }
            let result = tokio::time::timeout(self.idle, req.send()).await;
            let err = match result {
                Err(_) => RegistryError::Timeout {
                    op: op.into(),
                    secs: self.idle.as_secs(),
                },
                Ok(Err(e)) => transport_error(op, &e, self.idle),
                Ok(Ok(resp)) if resp.status() == StatusCode::UNAUTHORIZED && !auth_retried => {
                    auth_retried = true;
                    let challenge = resp
                        .headers()
                        .get(WWW_AUTHENTICATE)
                        .and_then(|v| v.to_str().ok());
                    self.auth.forget(scopes);
                    if self.auth.learn(challenge) {
                        continue;
                    }
                    return Err(status_error(op, resp).await);
                }
                Ok(Ok(resp))
                    if resp.status().is_success() || resp.status() == StatusCode::NOT_FOUND =>
                {
                    return Ok(resp);
                }
                Ok(Ok(resp)) => {
                    let retry_after = retry_after(&resp);
                    let err = status_error(op, resp).await;
                    if err.retryable() && attempt < self.retries {
                        attempt += 1;
                        tokio::time::sleep(retry_after.unwrap_or_else(|| backoff(attempt))).await;
                        continue;
                    }
                    return Err(err);
                }
            };
            if err.retryable() && attempt < self.retries {
                attempt += 1;
                tokio::time::sleep(backoff(attempt)).await;
                continue;
            }
            return Err(err);
        }
    }

    /// Whether `repo` has the blob.
    pub async fn blob_exists(&self, repo: &str, digest: &Digest) -> Result<bool, RegistryError> {
        let op = format!("HEAD blob {digest} in {repo}");
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}"));
        let resp = self
            .send(&op, &url, &Self::scopes(repo, None), || {
                self.http.head(url.clone())
            })
            .await?;
        Ok(resp.status().is_success())
    }

    /// PUTs a manifest under a tag or digest; returns the digest the registry computed.
    pub async fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &Bytes,
    ) -> Result<(), RegistryError> {
        let op = format!("PUT manifest {repo}:{reference}");
        // Registries cap manifests at 4 MiB (distribution answers a confusing 400 past it).
        if bytes.len() > MANIFEST_MAX {
            return Err(RegistryError::Protocol {
                op,
                detail: format!(
                    "manifest is {} bytes, over the 4 MiB registries accept",
                    bytes.len()
                ),
            });
        }
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"));
        let resp = self
            .send(&op, &url, &Self::scopes(repo, None), || {
                self.http
                    .put(url.clone())
                    .header(CONTENT_TYPE, media_type)
                    .body(bytes.clone())
            })
            .await?;
        if resp.status() != StatusCode::CREATED && !resp.status().is_success() {
            return Err(status_error(&op, resp).await);
        }
        Ok(())
    }

    /// Whether a manifest exists (by digest or tag).
    pub async fn manifest_exists(
        &self,
        repo: &str,
        reference: &str,
    ) -> Result<bool, RegistryError> {
        let op = format!("HEAD manifest {repo}:{reference}");
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"));
        let resp = self
            .send(&op, &url, &Self::scopes(repo, None), || {
                self.http.head(url.clone()).header(
                    reqwest::header::ACCEPT,
                    "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json",
                )
            })
            .await?;
        Ok(resp.status().is_success())
    }

    /// The Location of a response, resolved against the request URL. A Location on another
    /// host is refused: credentials must never follow it and it is an SSRF vector.
    pub(super) fn location(
        &self,
        op: &str,
        request: &Url,
        resp: &Response,
    ) -> Result<Url, RegistryError> {
        let raw = resp
            .headers()
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| RegistryError::Protocol {
                op: op.into(),
                detail: "no Location header".into(),
            })?;
        let url = request.join(raw).map_err(|e| RegistryError::Protocol {
            op: op.into(),
            detail: format!("bad Location {raw:?}: {e}"),
        })?;
        if !self.same_origin(&url) && !self.allowed_upload_host(&url) {
            return Err(RegistryError::Protocol {
                op: op.into(),
                detail: format!(
                    "Location {:?} points away from the registry (allow its host with registry_upload_hosts)",
                    url.origin().ascii_serialization()
                ),
            });
        }
        Ok(url)
    }

    /// Credentials go only to the registry itself, never to another host a Location names.
    pub(super) fn same_origin(&self, url: &Url) -> bool {
        url.host_str() == self.base.host_str()
            && url.port_or_known_default() == self.base.port_or_known_default()
            && url.scheme() == self.base.scheme()
    }

    /// Hosts configured to receive upload bodies (pre-signed storage URLs): https only.
    fn allowed_upload_host(&self, url: &Url) -> bool {
        let Some(host) = url.host_str() else {
            return false;
        };
        let with_port = url.port().map(|p| format!("{host}:{p}"));
        url.scheme() == "https"
            && self
                .upload_hosts
                .iter()
                .any(|h| h == host || Some(h) == with_port.as_ref())
    }
}

pub(super) fn backoff(attempt: u32) -> Duration {
    let base = 200u64 << attempt.min(6);
    Duration::from_millis(base + fastrand::u64(0..=base / 2)).min(Duration::from_secs(30))
}

fn retry_after(resp: &Response) -> Option<Duration> {
    let secs: u64 = resp
        .headers()
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs.min(60)))
}

pub(super) fn transport_error(op: &str, e: &reqwest::Error, idle: Duration) -> RegistryError {
    if e.is_timeout() {
        return RegistryError::Timeout {
            op: op.into(),
            secs: idle.as_secs(),
        };
    }
    // Upload URLs carry signed state (`_state=`): keep them out of messages.
    let mut detail = e.to_string();
    if let Some(url) = e.url() {
        detail = detail.replace(url.as_str(), url.path());
    }
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        detail = format!("{detail}: {s}");
        src = s.source();
    }
    if e.is_connect() {
        RegistryError::Unreachable {
            op: op.into(),
            detail,
        }
    } else {
        RegistryError::Protocol {
            op: op.into(),
            detail,
        }
    }
}

pub(super) async fn status_error(op: &str, resp: Response) -> RegistryError {
    let status = resp.status().as_u16();
    let body = read_capped(resp, 64 << 10).await;
    let (code, detail) = describe_body(&body);
    match status {
        401 => RegistryError::Unauthorized {
            op: op.into(),
            detail,
        },
        403 => RegistryError::Denied {
            op: op.into(),
            detail,
        },
        _ => RegistryError::Status {
            op: op.into(),
            status,
            code,
            detail,
        },
    }
}

async fn read_capped(mut resp: Response, cap: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        out.extend_from_slice(&chunk[..chunk.len().min(cap - out.len())]);
        if out.len() >= cap {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(upload_hosts: &[&str]) -> Registry {
        let raw = crate::config::RawConfig {
            registry: "https://registry.example:5000".into(),
            registry_upload_hosts: upload_hosts.iter().map(|s| s.to_string()).collect(),
            ..crate::config::RawConfig::default()
        };
        Registry::new(&raw.validate().unwrap()).unwrap()
    }

    #[test]
    fn credentials_stay_with_the_registry_and_foreign_hosts_need_allowing() {
        let r = registry(&["uploads.example"]);
        let u = |s: &str| Url::parse(s).unwrap();
        assert!(r.same_origin(&u(
            "https://registry.example:5000/v2/x/blobs/uploads/1?_state=a"
        )));
        assert!(!r.same_origin(&u("https://registry.example/v2/")));
        assert!(!r.same_origin(&u("http://registry.example:5000/v2/")));
        assert!(r.allowed_upload_host(&u("https://uploads.example/put?sig=1")));
        assert!(!r.allowed_upload_host(&u("http://uploads.example/put")));
        assert!(!r.allowed_upload_host(&u("https://evil.example/put")));
        assert!(!registry(&[]).allowed_upload_host(&u("https://uploads.example/put")));
    }
}
