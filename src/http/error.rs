//! Errors as the client sees them: the status, `{"error": {"code", "message"}}`, a
//! `Retry-After` where retrying helps; each one logged at the level its fault deserves and
//! counted by code.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::push::PushError;

/// A failed push, as a response.
pub struct ApiError(pub PushError);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let e = self.0;
        crate::telemetry::metrics().failed(e.code());
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(code = e.code(), error = ?e, "push failed: internal error");
        } else if status.is_server_error() {
            tracing::warn!(code = e.code(), error = %e, "push failed");
        } else {
            tracing::info!(code = e.code(), error = %e, "push rejected");
        }
        let mut resp = (status, axum::Json(e.body())).into_response();
        if matches!(e, PushError::Busy) {
            resp.headers_mut()
                .insert("retry-after", HeaderValue::from_static("5"));
        }
        resp
    }
}

impl From<PushError> for ApiError {
    fn from(e: PushError) -> ApiError {
        ApiError(e)
    }
}
