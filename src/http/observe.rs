//! Around every request: a request id (the client's `x-request-id` when it is a sane token,
//! else a new one), echoed in the response and carried by the request's span into every log
//! line of the request, the pipeline's included; one access line; and for a push, the meter
//! whose summary line and metrics close it (also when the connection goes away first).
//!
//! Nothing here logs headers, the query string or a body: secrets never pass through.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use futures_util::TryStreamExt;
use tracing::Instrument;

use crate::telemetry::{Meter, PushLine};

pub const REQUEST_ID: &str = "x-request-id";

/// The middleware; see the module docs.
pub async fn observe(mut req: Request, next: Next) -> Response {
    let id = request_id(&req);
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_default();
    let path = req.uri().path().to_string();
    let span =
        tracing::info_span!("request", request_id = %id, method = %req.method(), path = %path);
    let push = matches!(*req.method(), Method::PUT | Method::POST) && path.starts_with("/push");
    let meter = Meter::new(span.clone());
    if push {
        let counted = meter.clone();
        req = req.map(|body| {
            Body::from_stream(
                body.into_data_stream()
                    .inspect_ok(move |b| counted.received(b.len())),
            )
        });
    }
    let mut guard = Finish {
        span: span.clone(),
        meter: meter.clone(),
        peer,
        push: push.then(|| PushTarget::from_request(&req)),
        quiet: matches!(path.as_str(), "/healthz" | "/readyz" | "/metrics"),
        started: Instant::now(),
        status: None,
    };
    let mut resp = meter.scope(next.run(req)).instrument(span).await;
    guard.status = Some(resp.status().as_u16());
    drop(guard);
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    resp
}

/// The client's id when it is 1..=128 characters of `[A-Za-z0-9._:/+=-]` (nothing that could
/// forge a log line), else 32 random hex digits.
fn request_id(req: &Request) -> String {
    let given = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            (1..=128).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._:/+=-".contains(&b))
        });
    match given {
        Some(id) => id.to_string(),
        None => format!("{:032x}", fastrand::u128(..)),
    }
}

/// What the URL says a push is for: `/push/{repository}:{tag}?tag=...`.
struct PushTarget {
    repository: Option<String>,
    tags: Vec<String>,
}

impl PushTarget {
    fn from_request(req: &Request) -> PushTarget {
        let spec = req
            .uri()
            .path()
            .trim_start_matches("/push")
            .trim_start_matches('/');
        let (repository, tag) = match crate::oci::reference::parse_target(spec) {
            Ok((r, t)) => (Some(r), t),
            Err(_) => (None, None),
        };
        let mut tags: Vec<String> = tag.into_iter().collect();
        let query = req.uri().query().unwrap_or("");
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            if k == "tag" && crate::oci::reference::valid_tag(&v) {
                tags.push(v.into_owned());
            }
        }
        PushTarget { repository, tags }
    }
}

/// Writes the access line and closes the push meter when the request ends, however it ends:
/// dropped without a status, the connection went away (status 499, code `CANCELLED`).
struct Finish {
    span: tracing::Span,
    meter: Arc<Meter>,
    /// The peer's address (who the client is, the push's summary says).
    peer: String,
    push: Option<PushTarget>,
    quiet: bool,
    started: Instant,
    status: Option<u16>,
}

impl Drop for Finish {
    fn drop(&mut self) {
        let _entered = self.span.enter();
        let seconds = self.started.elapsed().as_secs_f64();
        let status = self.status.unwrap_or(499);
        // Probes and scrapes come every few seconds: their lines only at debug level.
        if self.quiet {
            tracing::debug!(peer = %self.peer, status, seconds, "request");
        } else {
            tracing::info!(peer = %self.peer, status, seconds, "request");
        }
        if let Some(target) = self.push.take() {
            self.meter.close(PushLine {
                peer: std::mem::take(&mut self.peer),
                repository: target.repository,
                tags: target.tags,
                status,
                cancelled: self.status.is_none(),
            });
        }
    }
}
