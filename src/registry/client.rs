//! The registry client proper. Every request that carries no body (or a body still in memory)
//! is retried with backoff; a streamed PATCH is sent once, since its bytes are gone.

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, LOCATION, WWW_AUTHENTICATE};
use reqwest::{Response, StatusCode};
use url::Url;

use super::RegistryError;
use super::auth::Auth;
use super::credentials::Credentials;
use super::error::{backoff, retry_after, status_error, transport_error};
use crate::oci::Digest;

pub(super) const OCTET: &str = "application/octet-stream";
/// Registries cap manifests at 4 MiB (distribution answers a confusing 400 past it).
pub(super) const MANIFEST_MAX: usize = 4 << 20;

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

/// Everything the client is configured with.
#[derive(Debug, Clone)]
pub struct Settings {
    pub url: Url,
    pub credentials: Credentials,
    /// Extra CA certificates (PEM) to trust beside the system roots.
    pub ca_file: Option<std::path::PathBuf>,
    /// Verify the registry's TLS certificate (off only by explicit, logged opt-in).
    pub tls_verify: bool,
    /// Other hosts an upload Location may point to: https only, never sent credentials.
    pub upload_hosts: Vec<String>,
    pub connect_timeout: Duration,
    /// How long a request may make no progress.
    pub idle_timeout: Duration,
    pub retries: u32,
    /// 0: one streamed PATCH per blob; otherwise fixed-size Content-Range chunks.
    pub chunk_bytes: u64,
    /// Declare Content-Length on a streamed PATCH of known size.
    pub patch_content_length: bool,
}

/// Why the client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("reading registry_ca_file {path}: {source}")]
    CaFile {
        path: String,
        source: std::io::Error,
    },
    #[error("setting up the registry client: {0}")]
    Tls(#[from] reqwest::Error),
}

impl Registry {
    pub fn new(settings: Settings) -> Result<Registry, SetupError> {
        let mut builder = reqwest::Client::builder();
        if let Some(ca) = &settings.ca_file {
            let pem = std::fs::read(ca).map_err(|source| SetupError::CaFile {
                path: ca.display().to_string(),
                source,
            })?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem)? {
                builder = builder.add_root_certificate(cert);
            }
        }
        if !settings.tls_verify {
            tracing::warn!(registry = %settings.url, "TLS verification of the registry is OFF (registry_tls_verify = false)");
            builder = builder.tls_danger_accept_invalid_certs(true);
        }
        let http = builder
            // No client-wide read timeout: reqwest's runs from send to response, which would
            // kill a long streamed PATCH that is still moving. Body-less requests get a
            // timeout in `send`; a PATCH is watched for progress by its session.
            .connect_timeout(settings.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("hoist/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Registry {
            http,
            base: settings.url,
            auth: Auth::new(settings.credentials),
            retries: settings.retries,
            idle: settings.idle_timeout,
            chunk_size: settings.chunk_bytes,
            content_length: settings.patch_content_length,
            upload_hosts: settings.upload_hosts,
        })
    }

    /// The same registry and connection pool with other credentials, and a token cache of
    /// its own: for pass-through, one per client push, so no client's token or credentials
    /// ever serve another.
    pub fn with_credentials(&self, credentials: Credentials) -> Registry {
        Registry {
            http: self.http.clone(),
            base: self.base.clone(),
            auth: Auth::new(credentials),
            retries: self.retries,
            idle: self.idle,
            chunk_size: self.chunk_size,
            content_length: self.content_length,
            upload_hosts: self.upload_hosts.clone(),
        }
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
            let mut authorized = false;
            if self.same_origin(url)
                && let Some(h) = self.auth.header(&self.http, scopes).await?
            {
                req = req.header(AUTHORIZATION, h);
                authorized = true;
            }
            let result = super::observe::timed(op, self.idle, req.send()).await;
            let err = match result {
                Err(_) => RegistryError::Timeout {
                    op: op.into(),
                    secs: self.idle.as_secs(),
                },
                Ok(Err(e)) => transport_error(op, &e, self.idle),
                // Only the registry itself may set the challenge: a 401 from an upload host
                // must not send hoist's credentials to a realm of that host's choosing.
                Ok(Ok(resp))
                    if resp.status() == StatusCode::UNAUTHORIZED
                        && !auth_retried
                        && self.same_origin(url) =>
                {
                    auth_retried = true;
                    let challenge = resp
                        .headers()
                        .get(WWW_AUTHENTICATE)
                        .and_then(|v| v.to_str().ok());
                    self.auth.forget(scopes);
                    // Sent without credentials while another request (the readiness probe,
                    // a concurrent push) learnt the same challenge: send them now.
                    if self.auth.learn(challenge) || !authorized {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(upload_hosts: &[&str]) -> Registry {
        Registry::new(Settings {
            url: Url::parse("https://registry.example:5000").unwrap(),
            credentials: Credentials::Anonymous,
            ca_file: None,
            tls_verify: true,
            upload_hosts: upload_hosts.iter().map(|s| s.to_string()).collect(),
            connect_timeout: Duration::from_secs(1),
            idle_timeout: Duration::from_secs(1),
            retries: 0,
            chunk_bytes: 0,
            patch_content_length: false,
        })
        .unwrap()
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

    /// A 401 from another host (an upload host a Location named) must not set the challenge:
    /// hoist's credentials would follow a realm of that host's choosing.
    #[tokio::test]
    async fn a_401_from_another_host_does_not_set_the_challenge() {
        let app = axum::Router::new().fallback(|| async {
            (
                axum::http::StatusCode::UNAUTHORIZED,
                [(
                    "www-authenticate",
                    "Bearer realm=\"http://127.0.0.1:9/steal\"",
                )],
            )
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let other = format!("http://{}/upload", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let r = registry(&[]);
        let url = Url::parse(&other).unwrap();
        let result = r
            .send("PUT upload", &url, &[], || r.http.put(url.clone()))
            .await;
        assert!(matches!(result, Err(RegistryError::Unauthorized { .. })));
        assert!(
            !r.auth.challenged(),
            "the other host's challenge was learnt"
        );
    }
}
