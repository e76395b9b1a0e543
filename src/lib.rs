//! hoist: an HTTP gateway that streams container image archives into an OCI registry in one
//! pass. See `docs/API.md` for the contract and `shared/DESIGN.md` for the architecture.
//!
//! Data flows one way: `http` (and the CLI) → `push`, which alone joins `archive` (bytes in),
//! `codec` (layer transforms), `image` (resolution and verification) and `registry` (bytes
//! out); all of them build on `oci` (the model) and the small base modules.

pub mod archive;
pub mod auth;
pub mod codec;
pub mod config;
pub mod http;
pub mod image;
pub mod limits;
pub mod oci;
pub mod push;
pub mod registry;
pub mod report;
pub mod secret;
pub mod telemetry;

use std::sync::Arc;

use tokio::net::TcpListener;

/// Why the server cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The registry client.
    #[error(transparent)]
    Registry(#[from] registry::SetupError),
    /// Who may push (includes the refusal to run an open gateway off loopback).
    #[error(transparent)]
    Auth(#[from] auth::SetupError),
}

/// Builds the shared state from a validated config.
pub fn state(config: config::Config) -> Result<http::AppState, StartError> {
    let slots = Arc::new(tokio::sync::Semaphore::new(config.max_concurrent_pushes));
    let auth = Arc::new(auth::Authenticator::new(&config.auth, config.listen)?);
    let client_slots = Arc::new(auth::ClientSlots::new(config.auth.max_pushes_per_client));
    Ok(http::AppState {
        pusher: Arc::new(push::Pusher::new(config)?),
        slots,
        auth,
        client_slots,
    })
}

/// Serves until `shutdown` resolves, then drains in-flight requests for at most `drain`.
pub async fn run(
    listener: TcpListener,
    state: http::AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    drain: std::time::Duration,
) -> std::io::Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, http::app(state))
        .with_graceful_shutdown(async move {
            let _ = stop_rx.await;
        })
        .into_future();
    tokio::pin!(server);
    tokio::select! {
        r = &mut server => return r,
        () = shutdown => {}
    }
    tracing::info!(
        drain_secs = drain.as_secs(),
        "shutting down; draining pushes in flight"
    );
    let _ = stop_tx.send(());
    match tokio::time::timeout(drain, server).await {
        Ok(r) => r,
        Err(_) => {
            tracing::warn!("drain deadline passed; stopping with pushes in flight");
            Ok(())
        }
    }
}
