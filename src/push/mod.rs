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
mod tags;
mod targets;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use cache::{Learned, LearnedBlob, LearnedLayer, LearnedName};
pub use error::PushError;
pub use request::{Request, Target};
pub use targets::authorize_one as authorize;

use crate::archive::decode::{self, Compression};
use crate::archive::input::{self, BodyLimits, Counters, Feed};
use crate::archive::walk::Walker;
use crate::auth::{AuthError, Client, PassThrough};
use crate::codec;
use crate::config::Config;
use crate::registry::{Credentials, Registry, RegistryError, SetupError};
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

    #[tracing::instrument(skip_all, fields(target = ?request.target, client = %request.client.name))]
    async fn run(
        &self,
        request: Request,
        feed: mpsc::Receiver<Feed>,
        counters: Arc<Counters>,
        sent: Arc<std::sync::atomic::AtomicU64>,
    ) -> Result<Report, PushError> {
        let started = Instant::now();
        self.check_request(&request)?;
        // With a platform filter, which blobs belong is known only at the end: stage them all,
        // and mount into the target only those of the platforms chosen.
        let upload_repo = match &request.target {
            Target::Named { repository, .. } if request.platforms.is_empty() => repository.clone(),
            _ => self.config.staging_repository.clone(),
        };
        let registry = self.registry_for(&request.client);
        let access = placement::Access {
            client: &request.client,
            staging: &self.config.staging_repository,
        };
        // The same bytes pushed here before into the same repository: replayed, not read.
        let known = request
            .digest
            .clone()
            .filter(|_| !request.dry_run)
            .map(|digest| known::Key {
                digest,
                upload_repo: upload_repo.clone(),
                transform: self.transform(&request),
            });
        let replay = match &known {
            Some(key) => self.known.replayable(key, &registry).await,
            None => None,
        };
        let replayed = replay.is_some();
        let ingested = match replay {
            Some(ingested) => {
                known::drain(feed).await?;
                ingested
            }
            None => {
                let (feed, counters) = (feed, counters.clone());
                self.read(
                    &request,
                    &registry,
                    access,
                    &upload_repo,
                    feed,
                    counters,
                    sent,
                )
                .await?
            }
        };
        check_body_digest(&request, &counters)?;
        let limits = &self.config.limits;
        let images = crate::image::resolve(
            &ingested.archive,
            limits.metadata_file_bytes,
            limits.references,
        )?;
        let images = crate::image::select_platforms(images, &request.platforms)?;
        let targets = targets::targets(&images, &request.target, &request.extra_tags, limits.tags)?;
        // Every name the archive gave is checked before anything is published.
        targets::authorize(&targets, &request.client)?;
        let publisher = publish::Publisher {
            registry: &registry,
            upload_repo: &upload_repo,
            placed: &ingested.placed,
            locations: &self.locations,
            dry_run: request.dry_run,
            access,
        };
        publisher.check_absent_blobs(&images, &targets).await?;
        let (images, sent) = publisher.publish(&images, &targets).await?;
        announce(&request.events, &images);
        if let Some(key) = known {
            self.known.remember(key, &ingested);
        }
        let report = Report {
            dry_run: request.dry_run,
            replayed,
            client: request.client.name.clone(),
            images,
            bytes_received: counters.received(),
            bytes_sent: ingested.bytes_sent + sent,
            seconds: started.elapsed().as_secs_f64(),
        };
        tracing::info!(
            client = %report.client,
            images = report.images.len(),
            bytes_sent = report.bytes_sent,
            replayed,
            seconds = report.seconds,
            "pushed"
        );
        Ok(report)
    }

    /// What can be refused before a byte is read: tags, and a named target outside the
    /// client's scopes (nothing may be uploaded into it).
    fn check_request(&self, request: &Request) -> Result<(), PushError> {
        if request.extra_tags.len() > self.config.limits.tags {
            return Err(PushError::TooManyTags {
                count: request.extra_tags.len(),
                limit: self.config.limits.tags,
            });
        }
        if let Some(t) = request
            .extra_tags
            .iter()
            .find(|t| !crate::oci::reference::valid_tag(t))
        {
            return Err(PushError::ReferenceInvalid {
                what: "tag",
                name: t.chars().take(300).collect(),
            });
        }
        if let Target::Named { repository, .. } = &request.target {
            targets::authorize_one(repository, &request.client)?;
        }
        Ok(())
    }

    /// What becomes of the archive's uncompressed layers.
    fn transform(&self, request: &Request) -> codec::LayerTransform {
        let config = &self.config;
        request
            .layer_compression
            .transform(config.gzip_level, config.zstd_level)
    }

    /// hoist's registry client, or in pass-through mode one carrying the client's own
    /// credentials and a token cache of its own (shared connection pool).
    fn registry_for(&self, client: &Client) -> Arc<Registry> {
        match &client.registry {
            None => self.registry.clone(),
            Some(PassThrough::Anonymous) => {
                Arc::new(self.registry.with_credentials(Credentials::Anonymous))
            }
            Some(PassThrough::Basic { username, password }) => {
                Arc::new(self.registry.with_credentials(Credentials::Basic {
                    username: username.clone(),
                    password: password.clone(),
                }))
            }
        }
    }

    /// The single pass: decode, walk, stream blobs; then the archive must end cleanly.
    #[expect(
        clippy::too_many_arguments,
        reason = "one push's parts, each used once"
    )]
    async fn read(
        &self,
        request: &Request,
        registry: &Arc<Registry>,
        access: placement::Access<'_>,
        upload_repo: &str,
        feed: mpsc::Receiver<Feed>,
        counters: Arc<Counters>,
        sent: Arc<std::sync::atomic::AtomicU64>,
    ) -> Result<ingest::Ingested, PushError> {
        let limits = self.config.limits.clone();
        let (reader, decoder) = decode::spawn(feed, limits.clone(), counters);
        let mut walker = match Walker::new(reader, limits) {
            Ok(w) => w,
            Err(e) => return Err(prefer_decoder(decoder, e.into()).await),
        };
        let config = &self.config;
        let pass = ingest::Pass {
            registry,
            config,
            upload_repo,
            transform: self.transform(request),
            cancel: CancellationToken::new(),
            cache: self.cache.clone(),
            locations: self.locations.clone(),
            events: request.events.clone(),
            sent,
            dry_run: request.dry_run,
            access,
        };
        let ingested = match ingest::ingest(&mut walker, &pass).await {
            Ok(i) => i,
            Err(e) => {
                drop(walker);
                return Err(prefer_decoder(decoder, e).await);
            }
        };
        if let Err(e) = walker.finish().await {
            return Err(prefer_decoder(decoder, e.into()).await);
        }
        let compression = decoder.await.map_err(|e| PushError::Internal {
            detail: e.to_string(),
        })??;
        tracing::info!(?compression, entries = ingested.entries, "archive read");
        Ok(ingested)
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

/// The archive's bytes must be those the client named, before anything is published.
fn check_body_digest(request: &Request, counters: &Counters) -> Result<(), PushError> {
    let (Some(claimed), Some(actual)) = (&request.digest, counters.body_digest()) else {
        return Ok(());
    };
    if *claimed == actual {
        return Ok(());
    }
    Err(crate::archive::ArchiveError::BodyDigestMismatch {
        claimed: claimed.to_string(),
        actual: actual.to_string(),
        bytes: counters.received(),
    }
    .into())
}

/// When a later stage fails, the decode stage's own error (body cut short, bomb, bad gzip)
/// is usually the cause and says more.
async fn prefer_decoder(
    decoder: tokio::task::JoinHandle<Result<Compression, crate::archive::ArchiveError>>,
    later: PushError,
) -> PushError {
    match tokio::time::timeout(Duration::from_secs(10), decoder).await {
        Ok(Ok(Err(e))) => e.into(),
        _ => later,
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
