//! The push session: the one place that joins `archive`, `codec`, `image` and `registry`.
//! One request's archive flows decode → tar walk → blob jobs in a single pass; at its end the
//! images are resolved, verified and published, tags last.

mod blob;
mod cache;
mod entry;
mod error;
pub mod events;
mod ingest;
mod known;
mod placement;
mod publish;
mod request;
mod run;
mod tags;
mod targets;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};

pub use cache::{Learned, LearnedBlob, LearnedLayer, LearnedName};
pub use error::PushError;
pub use request::{Request, Target};
pub use targets::authorize_one as authorize;

use crate::archive::input::{self, BodyLimits, Counters};
use crate::auth::{AuthError, Client};
use crate::config::Config;
use crate::registry::{Registry, RegistryError, SetupError};
use crate::report::Report;

/// Shared by every push of the process.
pub struct Pusher {
    pub registry: Arc<Registry>,
    pub config: Arc<Config>,
    cache: Arc<cache::LayerCache>,
    locations: Arc<cache::Locations>,
    known: known::Known,
}

impl Pusher {
    pub fn new(config: Config) -> Result<Pusher, SetupError> {
        let registry = Registry::new(config.registry_settings())?;
        Ok(Pusher {
            registry: Arc::new(registry),
            config: Arc::new(config),
            cache: Arc::new(cache::LayerCache::new(10_000)),
            locations: Arc::new(cache::Locations::new(20_000)),
            known: known::Known::new(1_000, 64 << 20),
        })
    }

    /// What this pusher learned so far (compressed layers, blob locations), for a later
    /// process to start from (the CLI's cache file).
    pub fn learned(&self) -> Learned {
        let mut out = Learned::default();
        self.cache.export(&mut out);
        self.locations.export(&mut out);
        out
    }

    /// Starts from what an earlier process learned.
    pub fn learn(&self, learned: &Learned) {
        self.cache.import(learned);
        self.locations.import(learned);
    }

    /// Runs one push over `body`, for HTTP and the CLI alike. The pipeline runs as its own
    /// task: if the caller goes away mid-push, the pipeline sees the body end, fails, and
    /// cleans up (sessions cancelled, nothing tagged).
    pub async fn push<S, E>(
        self: &Arc<Self>,
        request: Request,
        mut body: S,
    ) -> Result<Report, PushError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
    {
        let (tx, rx) = input::channel();
        let counters = Arc::new(match request.digest {
            Some(_) => Counters::hashing(),
            None => Counters::default(),
        });
        let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let events = request.events.clone();
        let seen = counters.clone();
        let ticker = events.ticker(move || seen.received(), sent.clone());
        let client = request.client.clone();
        let this = self.clone();
        let seen = counters.clone();
        let task = tokio::spawn(crate::telemetry::scoped(async move {
            this.run(request, rx, seen, sent).await
        }));
        let limits = BodyLimits {
            max_bytes: self.config.limits.request_bytes,
            idle: self.config.client_idle_timeout,
            min_rate: self.config.limits.min_body_rate,
        };
        input::forward(&mut body, &tx, &counters, limits).await;
        drop(tx);
        let result = task
            .await
            .unwrap_or_else(|e| {
                Err(PushError::Internal {
                    detail: e.to_string(),
                })
            })
            .map_err(|e| judged_by_registry(e, &client));
        if let Some(t) = ticker {
            t.abort();
        }
        match &result {
            Ok(report) => events.emit(events::Event::Done {
                report: report.clone(),
            }),
            Err(e) => {
                events.emit(events::Event::Error {
                    error: e.body()["error"].clone(),
                });
                // Read on a little, so a client still sending sees the answer, not a reset.
                let drain = async { while body.next().await.is_some() {} };
                let _ = tokio::time::timeout(Duration::from_secs(2), drain).await;
            }
        }
        result
    }
}

/// In pass-through mode the registry judged the client's own credentials: its 401/403 is
/// the client's UNAUTHORIZED/DENIED, not a fault of hoist's (REGISTRY_UNAUTHORIZED/DENIED).
fn judged_by_registry(e: PushError, client: &Client) -> PushError {
    if client.registry.is_none() {
        return e;
    }
    match e {
        PushError::Registry(RegistryError::Unauthorized { op, detail }) => AuthError::unauthorized(
            format!("the registry refused your credentials for {op}: {detail}"),
        )
        .into(),
        PushError::Registry(RegistryError::Denied { op, detail }) => AuthError::RegistryDenied {
            client: client.name.clone(),
            detail: format!("{op}: {detail}"),
        }
        .into(),
        e => e,
    }
}

/// One `image` event per image published, for callers that follow the push live.
fn announce(events: &events::Events, images: &[crate::report::ImageReport]) {
    for i in images {
        events.emit(events::Event::Image {
            repository: i.repository.clone(),
            tags: i.tags.clone(),
            digest: i.digest.clone(),
        });
    }
}
