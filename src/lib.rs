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
use std::time::Duration;

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
    let interval = config.readiness_interval;
    let pusher = Arc::new(push::Pusher::new(config)?);
    let ready = http::Readiness::new(pusher.registry.clone(), interval);
    Ok(http::AppState {
        pusher,
        slots,
        ready,
        auth,
        client_slots,
    })
}

/// How long, after the connections are gone, pushes still cleaning up (a client went away:
/// their upload sessions are being cancelled) may take before the process exits anyway.
const CLEANUP: Duration = Duration::from_secs(10);

/// Serves `listener` (and `admin`, the admin listener, when given) until `shutdown`
/// resolves, then drains for at most the configured `drain_timeout`: readiness goes 503,
/// requests in flight finish, and at the deadline what is left is cancelled.
pub async fn run(
    listener: TcpListener,
    admin: Option<TcpListener>,
    state: http::AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    telemetry::install();
    let idle = Settled::now(&state);
    let config = state.pusher.config.clone();
    let probe = tokio::spawn(state.ready.clone().run());
    let upkeep = tokio::spawn(telemetry::upkeep());
    let mut listeners = vec![http::serve::Listener {
        tcp: listener,
        app: http::app(state.clone()),
        name: "public",
        max_connections: config.max_connections,
    }];
    if let Some(tcp) = admin {
        listeners.push(http::serve::Listener {
            tcp,
            app: http::admin(state.clone()),
            name: "admin",
            max_connections: 32,
        });
    }
    let options = http::serve::Options {
        header_read_timeout: config.header_read_timeout,
        drain_timeout: config.drain_timeout,
    };
    let ready = state.ready.clone();
    http::serve::serve(listeners, options, shutdown, move || ready.start_drain()).await;
    probe.abort();
    let _ = probe.await;
    let deadline = tokio::time::Instant::now() + CLEANUP;
    while !idle.reached(&state) && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if !idle.reached(&state) {
        tracing::warn!(
            "pushes still cleaning up after {} s; exiting anyway",
            CLEANUP.as_secs()
        );
    }
    upkeep.abort();
    Ok(())
}

/// When nothing of a push is left running. Every push pipeline holds the pusher, and every
/// upload session (and the task that cancels one dropped uncommitted) holds the registry
/// client: once both are back to the references they had before serving, no push is.
struct Settled {
    pushers: usize,
    registries: usize,
}

impl Settled {
    fn now(state: &http::AppState) -> Settled {
        Settled {
            pushers: Arc::strong_count(&state.pusher),
            registries: Arc::strong_count(&state.pusher.registry),
        }
    }

    fn reached(&self, state: &http::AppState) -> bool {
        Arc::strong_count(&state.pusher) <= self.pushers
            && Arc::strong_count(&state.pusher.registry) <= self.registries
    }
}
