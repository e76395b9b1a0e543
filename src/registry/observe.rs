//! Every registry request timed into `hoist_registry_request_duration_seconds`, by kind of
//! operation and answer (the HTTP status, `timeout`, or `error`).

use std::future::Future;
use std::time::{Duration, Instant};

use reqwest::Response;

/// Sends through `send`, recording how long the registry took to answer.
pub(super) async fn sent<F>(op: &str, send: F) -> Result<Response, reqwest::Error>
where
    F: Future<Output = Result<Response, reqwest::Error>>,
{
    let started = Instant::now();
    let result = send.await;
    let status = match &result {
        Ok(resp) => resp.status().as_str().to_string(),
        Err(e) if e.is_timeout() => "timeout".into(),
        Err(_) => "error".into(),
    };
    crate::telemetry::registry_request(op, &status, started.elapsed());
    result
}

/// `sent`, given up after `limit` (recorded as `timeout`).
pub(super) async fn timed<F>(
    op: &str,
    limit: Duration,
    send: F,
) -> Result<Result<Response, reqwest::Error>, tokio::time::error::Elapsed>
where
    F: Future<Output = Result<Response, reqwest::Error>>,
{
    let started = Instant::now();
    let result = tokio::time::timeout(limit, sent(op, send)).await;
    if result.is_err() {
        crate::telemetry::registry_request(op, "timeout", started.elapsed());
    }
    result
}
