//! Admission, in order, before a push takes a slot: the query, the declared size, and the
//! start of the archive itself (the first body bytes, or a multipart body's `file` part
//! within a deadline and a byte budget). A push slot is taken only once archive bytes flow,
//! so clients that open a request and send nothing cannot lock everyone else out.

use std::pin::Pin;
use std::time::Duration;

use axum::extract::Request;
use axum::http::header;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use super::multipart;
use crate::archive::ArchiveError;
use crate::codec::LayerCompression;
use crate::config::Config;
use crate::oci::Digest;
use crate::push::PushError;

/// A request body as the pipeline takes it.
pub type Body = Pin<Box<dyn Stream<Item = Result<Bytes, BoxError>> + Send>>;
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What the query asks: `tag` (repeatable), `layer_compression`, `dry_run`, `platform`
/// (repeatable).
pub struct Query {
    pub tags: Vec<String>,
    pub layer_compression: LayerCompression,
    pub dry_run: bool,
    pub platforms: Vec<String>,
    pub digest: Option<Digest>,
}

/// Parses the query string.
pub fn query(req: &Request, default: LayerCompression) -> Result<Query, PushError> {
    let mut q = Query {
        tags: Vec::new(),
        layer_compression: default,
        dry_run: false,
        platforms: Vec::new(),
        digest: None,
    };
    for (k, v) in url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes()) {
        match k.as_ref() {
            "tag" => q.tags.push(v.into_owned()),
            "layer_compression" => {
                q.layer_compression = v.parse().map_err(|_| PushError::ParameterInvalid {
                    name: "layer_compression",
                    value: v.chars().take(100).collect(),
                    expected: "one of gzip, zstd or keep",
                })?;
            }
            "dry_run" => {
                q.dry_run = match v.as_ref() {
                    "true" | "1" | "" => true,
                    "false" | "0" => false,
                    _ => return Err(invalid("dry_run", &v, "true or false")),
                };
            }
            "platform" if crate::oci::reference::valid_platform(&v) => {
                q.platforms.push(v.into_owned());
            }
            "platform" => return Err(invalid("platform", &v, "os/architecture[/variant]")),
            "digest" => {
                let sha256 = v
                    .parse::<Digest>()
                    .ok()
                    .filter(|d| d.algorithm() == "sha256");
                let expected = "sha256: and the 64 hex digits of the archive's sha256";
                q.digest = Some(sha256.ok_or_else(|| invalid("digest", &v, expected))?);
            }
            _ => {}
        }
    }
    Ok(q)
}

fn invalid(name: &'static str, value: &str, expected: &'static str) -> PushError {
    PushError::ParameterInvalid {
        name,
        value: value.chars().take(100).collect(),
        expected,
    }
}

/// A declared Content-Length over the limit is refused before anything is read.
pub fn check_length(req: &Request, limit: u64) -> Result<(), PushError> {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(n) if n > limit => Err(ArchiveError::RequestTooLarge { limit }.into()),
        _ => Ok(()),
    }
}

/// Waits for the archive to start: returns the tags a multipart body's text fields add, and
/// the archive's bytes (starting with what was already read).
pub async fn archive(req: Request, config: &Config) -> Result<(Vec<String>, Body), PushError> {
    let deadline = config.client_idle_timeout;
    if is_multipart(&req) {
        let (tags, file) = multipart::open(req, config.limits.preamble_bytes, deadline).await?;
        let body = started(file.map(|r| r.map_err(BoxError::from)), deadline).await?;
        return Ok((tags, body));
    }
    let raw = req.into_body().into_data_stream();
    let body = started(raw.map(|r| r.map_err(BoxError::from)), deadline).await?;
    Ok((Vec::new(), body))
}

/// The client asked to follow the push as NDJSON events.
pub fn wants_ndjson(req: &Request) -> bool {
    req.headers()
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.to_ascii_lowercase().contains("application/x-ndjson"))
}

fn is_multipart(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"))
}

/// Waits (at most `deadline`) for the first bytes; the body then starts with them.
async fn started<S>(mut body: S, deadline: Duration) -> Result<Body, PushError>
where
    S: Stream<Item = Result<Bytes, BoxError>> + Send + Unpin + 'static,
{
    let first = loop {
        match tokio::time::timeout(deadline, body.next()).await {
            Ok(Some(Ok(b))) if b.is_empty() => continue,
            Ok(first) => break first,
            Err(_) => {
                return Err(ArchiveError::BodyStalled {
                    secs: deadline.as_secs(),
                    received: 0,
                }
                .into());
            }
        }
    };
    Ok(Box::pin(futures_util::stream::iter(first).chain(body)))
}

/// Reads a refused request's body on a little (2 s, 16 MiB at most) before the answer goes
/// out: closing a connection with unread bytes resets it, and a client still sending would
/// see a broken pipe instead of the error. A client that waits for `100 Continue` sent
/// nothing and needs no draining.
pub async fn drain(req: Request) {
    if req.headers().get(header::EXPECT).is_none() {
        let body = req.into_body().into_data_stream();
        drain_body(Box::pin(body.map(|r| r.map_err(BoxError::from)))).await;
    }
}

/// The same for a body already started.
pub async fn drain_body(mut body: Body) {
    let mut left: usize = 16 << 20;
    let read = async {
        while let Some(Ok(b)) = body.next().await {
            left = left.saturating_sub(b.len());
            if left == 0 {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), read).await;
}
