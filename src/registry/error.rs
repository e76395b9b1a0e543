//! What can go wrong talking to the backend registry. All of it is the registry's side (or
//! the network's), so it maps to 502/503/504, never to a client error.

use std::time::Duration;

use reqwest::Response;
use reqwest::header::RETRY_AFTER;

/// A failed registry operation; `op` says which request (`HEAD blob sha256:… in team/app`).
#[derive(Debug, Clone, thiserror::Error)]
pub enum RegistryError {
    #[error("registry refused hoist's credentials for {op}: {detail}")]
    Unauthorized { op: String, detail: String },
    #[error("registry denied {op}: {detail}")]
    Denied { op: String, detail: String },
    #[error("registry answered {status} to {op}: {detail}")]
    Status {
        op: String,
        status: u16,
        code: Option<String>,
        detail: String,
    },
    #[error("registry unreachable for {op}: {detail}")]
    Unreachable { op: String, detail: String },
    #[error("registry stalled during {op} (no progress for {secs} s)")]
    Timeout { op: String, secs: u64 },
    #[error("registry broke the protocol during {op}: {detail}")]
    Protocol { op: String, detail: String },
    #[error(
        "upload of archive entry {entry:?} failed after its bytes were sent ({detail}); the push can be retried and will skip what was committed"
    )]
    StreamFailed { entry: String, detail: String },
}

impl RegistryError {
    /// The stable error code clients see.
    pub fn code(&self) -> &'static str {
        match self {
            // Distinct from the client-facing UNAUTHORIZED/DENIED: here the registry judged
            // hoist's own credentials, which the client can do nothing about.
            RegistryError::Unauthorized { .. } => "REGISTRY_UNAUTHORIZED",
            RegistryError::Denied { .. } => "REGISTRY_DENIED",
            RegistryError::Unreachable { .. } => "REGISTRY_UNAVAILABLE",
            RegistryError::Timeout { .. } => "REGISTRY_TIMEOUT",
            RegistryError::Status { .. }
            | RegistryError::Protocol { .. }
            | RegistryError::StreamFailed { .. } => "REGISTRY_ERROR",
        }
    }

    /// The HTTP status hoist answers with.
    pub fn status(&self) -> u16 {
        match self {
            RegistryError::Unreachable { .. } => 503,
            RegistryError::Timeout { .. } => 504,
            _ => 502,
        }
    }

    /// Whether sending the same request again may succeed.
    pub fn retryable(&self) -> bool {
        match self {
            RegistryError::Status { status, .. } => {
                matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
            }
            RegistryError::Unreachable { .. } | RegistryError::Timeout { .. } => true,
            _ => false,
        }
    }
}

pub(super) fn backoff(attempt: u32) -> Duration {
    let base = 200u64 << attempt.min(6);
    Duration::from_millis(base + fastrand::u64(0..=base / 2)).min(Duration::from_secs(30))
}

pub(super) fn retry_after(resp: &Response) -> Option<Duration> {
    let value = resp.headers().get(RETRY_AFTER)?.to_str().ok()?.trim();
    let wait = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        // The other form is an HTTP date.
        Err(_) => httpdate::parse_http_date(value)
            .ok()?
            .duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO),
    };
    Some(wait.min(Duration::from_secs(60)))
}

pub(super) fn transport_error(op: &str, e: &reqwest::Error, idle: Duration) -> RegistryError {
    // A connect that timed out is an unreachable registry (503), not a stalled one (504).
    if e.is_timeout() && !e.is_connect() {
        return RegistryError::Timeout {
            op: op.into(),
            secs: idle.as_secs(),
        };
    }
    // Upload URLs carry signed state (`_state=`): keep them out of messages, but name the
    // host, so "registry down" says which registry.
    let mut detail = e.to_string();
    if let Some(url) = e.url() {
        let shown = format!("{}{}", url.origin().ascii_serialization(), url.path());
        detail = detail.replace(url.as_str(), &shown);
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

pub(super) async fn read_capped(mut resp: Response, cap: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        out.extend_from_slice(&chunk[..chunk.len().min(cap - out.len())]);
        if out.len() >= cap {
            break;
        }
    }
    out
}

/// The registry's error envelope `{"errors":[{"code","message","detail"}]}`, or a short
/// excerpt of whatever else it sent (an HTML page from a proxy).
pub fn describe_body(body: &[u8]) -> (Option<String>, String) {
    #[derive(serde::Deserialize)]
    struct Envelope {
        errors: Vec<Item>,
    }
    #[derive(serde::Deserialize)]
    struct Item {
        code: Option<String>,
        message: Option<String>,
        detail: Option<serde_json::Value>,
    }
    if let Ok(env) = serde_json::from_slice::<Envelope>(body)
        && let Some(first) = env.errors.first()
    {
        let mut msg = format!(
            "{}: {}",
            first.code.as_deref().unwrap_or("UNKNOWN"),
            first.message.as_deref().unwrap_or("")
        );
        if let Some(d) = &first.detail {
            let d = d.to_string();
            if d != "null" {
                msg.push_str(&format!(" ({})", d.chars().take(300).collect::<String>()));
            }
        }
        if env.errors.len() > 1 {
            msg.push_str(&format!(" and {} more", env.errors.len() - 1));
        }
        return (first.code.clone(), msg);
    }
    let text = String::from_utf8_lossy(body);
    let text = strip_tags(&text);
    let text: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let text: String = text.chars().take(200).collect();
    (
        None,
        if text.is_empty() {
            "empty body".into()
        } else {
            text
        },
    )
}

fn strip_tags(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_and_html() {
        let (code, msg) = describe_body(
            br#"{"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match uploaded content","detail":null}]}"#,
        );
        assert_eq!(code.as_deref(), Some("DIGEST_INVALID"));
        assert!(msg.contains("did not match"));
        let (code, msg) =
            describe_body(b"<html><body><h1>413 Request Entity Too Large</h1></body></html>");
        assert_eq!(code, None);
        assert_eq!(msg, "413 Request Entity Too Large");
    }

    fn answer_with_retry_after(value: &str) -> Response {
        let resp = axum::http::Response::builder()
            .status(503)
            .header(RETRY_AFTER, value)
            .body(Vec::<u8>::new())
            .unwrap();
        Response::from(resp)
    }

    #[test]
    fn retry_after_in_seconds_or_as_a_date() {
        let secs = retry_after(&answer_with_retry_after("7"));
        assert_eq!(secs, Some(Duration::from_secs(7)));
        let soon = std::time::SystemTime::now() + Duration::from_secs(20);
        let date = retry_after(&answer_with_retry_after(&httpdate::fmt_http_date(soon))).unwrap();
        assert!(
            (Duration::from_secs(18)..=Duration::from_secs(20)).contains(&date),
            "{date:?}"
        );
        let past = httpdate::fmt_http_date(std::time::SystemTime::UNIX_EPOCH);
        assert_eq!(
            retry_after(&answer_with_retry_after(&past)),
            Some(Duration::ZERO)
        );
        let far = retry_after(&answer_with_retry_after("86400"));
        assert_eq!(far, Some(Duration::from_secs(60)), "capped");
    }
}
