//! The push session: the one place that joins `archive` and `registry`. One request's archive
//! flows decode → tar walk → blob jobs in a single pass; at its end the images are resolved,
//! verified and published, tags last.

mod blob;
mod cache;
mod error;
mod images;
mod ingest;
mod pgzip;
mod publish;
mod worker;

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use error::PushError;

use crate::archive::decode::{self, Counters, Feed};
use crate::archive::walk::Walker;
use crate::config::{Config, LayerCompression};
use crate::registry::Registry;
use crate::report::Report;

/// Where the images go.
#[derive(Debug, Clone)]
pub enum Target {
    /// `/push/{repository}[:{tag}]`.
    Named {
        repository: String,
        tag: Option<String>,
    },
    /// `/push`: the names the archive carries.
    FromArchive,
}

/// One push, as asked.
#[derive(Debug, Clone)]
pub struct Request {
    pub target: Target,
    pub extra_tags: Vec<String>,
    pub layer_compression: LayerCompression,
}

/// Shared by every push of the process.
pub struct Pusher {
    pub registry: Arc<Registry>,
    pub config: Arc<Config>,
    pub cache: Arc<cache::LayerCache>,
    pub locations: Arc<cache::Locations>,
}

impl Pusher {
    pub fn new(registry: Arc<Registry>, config: Arc<Config>) -> Pusher {
        Pusher {
            registry,
            config,
            cache: Arc::new(cache::LayerCache::new(10_000)),
            locations: Arc::new(cache::Locations::new(20_000)),
        }
    }
}

impl Pusher {
    /// Runs a push over the body fed through `feed`. `counters.received` is kept up to date by
    /// the feeder.
    #[tracing::instrument(skip_all, fields(target = ?req.target))]
    pub async fn push(
        &self,
        req: Request,
        feed: mpsc::Receiver<Feed>,
        counters: Arc<Counters>,
    ) -> Result<Report, PushError> {
        let started = Instant::now();
        for t in &req.extra_tags {
            if !crate::reference::valid_tag(t) {
                return Err(PushError::ReferenceInvalid {
                    what: "tag",
                    name: t.clone(),
                });
            }
        }
        let upload_repo = match &req.target {
            Target::Named { repository, .. } => repository.clone(),
            Target::FromArchive => self.config.staging_repository.clone(),
        };
        let (reader, decoder) = decode::spawn(feed, self.config.limits.clone(), counters.clone());
        let mut walker = match Walker::new(reader, self.config.limits.clone()) {
            Ok(w) => w,
            Err(e) => return Err(prefer_decoder(decoder, e.into()).await),
        };
        let pass = ingest::Pass {
            registry: &self.registry,
            config: &self.config,
            upload_repo: &upload_repo,
            compression: req.layer_compression,
            cancel: CancellationToken::new(),
            cache: self.cache.clone(),
            locations: self.locations.clone(),
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
        let compression = match decoder.await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(e.into()),
            Err(e) => {
                return Err(PushError::Internal {
                    detail: e.to_string(),
                });
            }
        };
        tracing::info!(
            ?compression,
            entries = ingested.entries,
            files = ingested.files.len(),
            "archive read"
        );
        let resolver = images::Resolver {
            registry: &self.registry,
            upload_repo: &upload_repo,
            metadata_limit: self.config.limits.metadata_file_bytes,
        };
        let plans = resolver.plans(&ingested).await?;
        let targets = publish::targets(&plans, &req.target, &req.extra_tags)?;
        let (images, sent) = publish::publish(
            &self.registry,
            &plans,
            &targets,
            &upload_repo,
            &self.locations,
        )
        .await?;
        let report = Report {
            images,
            bytes_received: counters.received.load(std::sync::atomic::Ordering::Relaxed),
            bytes_sent: ingested.bytes_sent + sent,
            seconds: started.elapsed().as_secs_f64(),
        };
        tracing::info!(
            images = report.images.len(),
            bytes_sent = report.bytes_sent,
            seconds = report.seconds,
            "pushed"
        );
        Ok(report)
    }
}

/// When a later stage fails, the decode stage's own error (body cut short, bomb, bad gzip)
/// is usually the cause and says more.
async fn prefer_decoder(
    decoder: tokio::task::JoinHandle<Result<decode::Compression, crate::archive::ArchiveError>>,
    later: PushError,
) -> PushError {
    match tokio::time::timeout(std::time::Duration::from_secs(10), decoder).await {
        Ok(Ok(Err(e))) => e.into(),
        _ => later,
    }
}
