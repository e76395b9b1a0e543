//! The HTTP face of hoist: router, upload extraction (raw body or multipart), errors → JSON
//! responses. The only module that knows axum.

mod access;
mod admission;
mod error;
mod multipart;
mod page;
mod progress;
mod upload;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Method};
use axum::routing::{MethodFilter, get, on};
use tokio::sync::Semaphore;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::TraceLayer;

pub use error::ApiError;

use crate::auth::{Authenticator, ClientSlots};
use crate::push::Pusher;

/// Shared state of the server.
#[derive(Clone)]
pub struct AppState {
    pub pusher: Arc<Pusher>,
    /// Pushes in flight; one more is shed with 503 BUSY rather than queued.
    pub slots: Arc<Semaphore>,
    /// Who a request's client is.
    pub auth: Arc<Authenticator>,
    /// Pushes in flight per client; one more is answered 429 TOO_MANY_REQUESTS.
    pub client_slots: Arc<ClientSlots>,
}

/// Builds the router; tests build the same one.
pub fn app(state: AppState) -> Router {
    let push = MethodFilter::PUT.or(MethodFilter::POST);
    let cors = cors(&state.pusher.config.cors_allow_origins);
    let mut router = Router::new()
        .route("/", get(page::index))
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/metrics",
            get(|| async {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4",
                    )],
                    crate::telemetry::metrics().render(),
                )
            }),
        )
        .route("/push", on(push, upload::push_from_archive))
        .route("/push/", on(push, upload::push_from_archive))
        .route("/push/{*spec}", on(push, upload::push_named))
        // The body is streamed, never buffered: the buffering extractors' cap does not apply,
        // limits.request_bytes does.
        .layer(DefaultBodyLimit::disable())
        .layer(TraceLayer::new_for_http())
        .with_state(state);
    if let Some(cors) = cors {
        router = router.layer(cors);
    }
    router
}

fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::PUT, Method::POST])
            // A portal sends its token; its script may read when to retry and why a 401.
            .allow_headers([
                axum::http::header::CONTENT_TYPE,
                axum::http::header::AUTHORIZATION,
            ])
            .expose_headers([
                axum::http::header::RETRY_AFTER,
                axum::http::header::WWW_AUTHENTICATE,
            ]),
    )
}

#[cfg(test)]
mod tests;
