//! Errors as the client sees them: the status, `{"error": {"code", "message"}}`, a
//! `Retry-After` where retrying helps; each one logged at the level its fault deserves and
//! counted by code.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::push::PushError;

/// A failed push, as a response.
pub struct ApiError(pub PushError);

/// Longest message a client or the log gets: archive names, link targets and registry
/// answers are the attacker's to choose, and nothing they choose leaves hoist unbounded.
const MESSAGE_MAX: usize = 1024;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        crate::telemetry::metrics().failed(e.code());
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let message = bounded(e.to_string());
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            let chain = bounded(format!("{e:?}"));
            tracing::error!(code = e.code(), error = %chain, "push failed: internal error");
        } else if status.is_server_error() {
            tracing::warn!(code = e.code(), error = %message, "push failed");
        } else {
            tracing::info!(code = e.code(), error = %message, "push rejected");
        }
        let body = serde_json::json!({"error": {"code": e.code(), "message": message}});
        let mut resp = (status, axum::Json(body)).into_response();
        if matches!(e, PushError::Busy | PushError::ClientBusy { .. }) {
            resp.headers_mut()
                .insert("retry-after", HeaderValue::from_static("5"));
        }
        if let PushError::Auth(a) = &e {
            for challenge in a.challenges() {
                resp.headers_mut()
                    .append("www-authenticate", HeaderValue::from_static(challenge));
            }
        }
        resp
    }
}

/// Cuts a message at `MESSAGE_MAX` characters, saying so.
fn bounded(text: String) -> String {
    match text.char_indices().nth(MESSAGE_MAX) {
        Some((at, _)) => format!("{}… (cut)", &text[..at]),
        None => text,
    }
}

impl From<PushError> for ApiError {
    fn from(e: PushError) -> ApiError {
        ApiError(e)
    }
}
