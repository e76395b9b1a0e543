//! The HTTP face of hoist: router, upload extraction (raw body or multipart), errors → JSON
//! responses, health and readiness, request ids and access logs, and the server loop itself
//! (header-read timeout, connection limit, drain). The only module that knows axum.

mod access;
mod admission;
mod error;
mod health;
mod multipart;
mod observe;
mod page;
mod progress;
pub mod serve;
mod upload;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::routing::{MethodFilter, get, on};
use tokio::sync::Semaphore;
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use error::ApiError;
pub use health::Readiness;

use crate::auth::{Authenticator, ClientSlots};
use crate::push::Pusher;

/// Shared state of the server.
#[derive(Clone)]
pub struct AppState {
    pub pusher: Arc<Pusher>,
    /// Pushes in flight; one more is shed with 503 BUSY rather than queued.
    pub slots: Arc<Semaphore>,
    /// What /readyz answers.
    pub ready: Arc<Readiness>,
    /// Who a request's client is.
    pub auth: Arc<Authenticator>,
    /// Pushes in flight per client; one more is answered 429 TOO_MANY_REQUESTS.
    pub client_slots: Arc<ClientSlots>,
}

/// Builds the public router; tests build the same one. /metrics is on it unless an
/// `admin_listen` serves it apart.
pub fn app(state: AppState) -> Router {
    let push = MethodFilter::PUT.or(MethodFilter::POST);
    let cors = cors(&state.pusher.config.cors_allow_origins);
    let mut router = Router::new()
        .route("/", get(page::index))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz));
    if state.pusher.config.admin_listen.is_none() {
        router = router.route("/metrics", get(health::metrics));
    }
    let mut router = router
        .route("/push", on(push, upload::push_from_archive))
        .route("/push/", on(push, upload::push_from_archive))
        .route("/push/{*spec}", on(push, upload::push_named))
        // The body is streamed, never buffered: the buffering extractors' cap does not apply,
        // limits.request_bytes does.
        .layer(DefaultBodyLimit::disable())
        .layer(axum::middleware::from_fn(observe::observe))
        .with_state(state);
    if let Some(cors) = cors {
        router = router.layer(cors);
    }
    router
}

/// The admin router (`admin_listen`): /metrics, /healthz, /readyz.
pub fn admin(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .layer(axum::middleware::from_fn(observe::observe))
        .with_state(state)
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
            // A portal sends its token (and may send a request id); its script may read
            // when to retry, why a 401, and the request id to quote.
            .allow_headers([
                header::CONTENT_TYPE,
                header::AUTHORIZATION,
                HeaderName::from_static(observe::REQUEST_ID),
            ])
            .expose_headers([
                header::RETRY_AFTER,
                header::WWW_AUTHENTICATE,
                HeaderName::from_static(observe::REQUEST_ID),
            ]),
    )
}

#[cfg(test)]
mod tests;
