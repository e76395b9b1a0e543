//! One push, once its body flows: checks that need no bytes, the archive's contents (replayed
//! or read in the single pass), then resolve, verify and publish, tags last.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::ingest::{self, Ingested};
use super::{Pusher, Request, Target, known, placement, publish, targets};
use crate::archive::ArchiveError;
use crate::archive::decode::{self, Compression};
use crate::archive::input::{Counters, Feed};
use crate::archive::walk::Walker;
use crate::auth::{Client, PassThrough};
use crate::codec::LayerTransform;
use crate::registry::{Credentials, Registry};
use crate::report::{ImageReport, Report};

use super::PushError;

/// One push's settings, worked out before a byte is read.
struct Plan<'a> {
    request: &'a Request,
    registry: Arc<Registry>,
    access: placement::Access<'a>,
    /// Where streamed blobs go: the target repository, or staging with a platform filter.
    upload_repo: String,
    /// What becomes of the archive's uncompressed layers.
    transform: LayerTransform,
    /// Under what a push that ends well is remembered, where the client named its digest.
    known: Option<known::Key>,
}

impl Pusher {
    #[tracing::instrument(skip_all, fields(target = ?request.target, client = %request.client.name))]
    pub(super) async fn run(
        &self,
        request: Request,
        feed: mpsc::Receiver<Feed>,
        counters: Arc<Counters>,
        sent: Arc<AtomicU64>,
    ) -> Result<Report, PushError> {
        let started = Instant::now();
        self.check_request(&request)?;
        let plan = self.plan(&request);
        let (ingested, replayed) = self.contents(&plan, feed, counters.clone(), sent).await?;
        check_body_digest(&request, &counters)?;
        let (images, sent) = self.publish(&plan, &ingested).await?;
        super::announce(&request.events, &images);
        if let Some(key) = plan.known {
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

    fn plan<'a>(&'a self, request: &'a Request) -> Plan<'a> {
        // With a platform filter, which blobs belong is known only at the end: stage them all,
        // and mount into the target only those of the platforms chosen.
        let upload_repo = match &request.target {
            Target::Named { repository, .. } if request.platforms.is_empty() => repository.clone(),
            _ => self.config.staging_repository.clone(),
        };
        let config = &self.config;
        let transform = request
            .layer_compression
            .transform(config.gzip_level, config.zstd_level);
        let known = request.digest.clone().filter(|_| !request.dry_run);
        let known = known.map(|digest| known::Key {
            digest,
            upload_repo: upload_repo.clone(),
            transform,
        });
        Plan {
            request,
            registry: self.registry_for(&request.client),
            access: placement::Access {
                client: &request.client,
                staging: &self.config.staging_repository,
            },
            upload_repo,
            transform,
            known,
        }
    }

    /// The archive's contents: replayed where the same bytes were pushed here before into the
    /// same repository (the body is only drained, the forwarder hashing it), otherwise read.
    /// Says whether it was a replay.
    async fn contents(
        &self,
        plan: &Plan<'_>,
        feed: mpsc::Receiver<Feed>,
        counters: Arc<Counters>,
        sent: Arc<AtomicU64>,
    ) -> Result<(Ingested, bool), PushError> {
        let replay = match &plan.known {
            Some(key) => self.known.replayable(key, &plan.registry).await,
            None => None,
        };
        match replay {
            Some(ingested) => {
                known::drain(feed).await?;
                Ok((ingested, true))
            }
            None => Ok((self.read(plan, feed, counters, sent).await?, false)),
        }
    }

    /// Resolves the images, checks every name, publishes: blobs, manifests, tags last.
    async fn publish(
        &self,
        plan: &Plan<'_>,
        ingested: &Ingested,
    ) -> Result<(Vec<ImageReport>, u64), PushError> {
        let (request, limits) = (plan.request, &self.config.limits);
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
            registry: &plan.registry,
            upload_repo: &plan.upload_repo,
            placed: &ingested.placed,
            locations: &self.locations,
            dry_run: request.dry_run,
            access: plan.access,
        };
        publisher.check_absent_blobs(&images, &targets).await?;
        publisher.publish(&images, &targets).await
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
    async fn read(
        &self,
        plan: &Plan<'_>,
        feed: mpsc::Receiver<Feed>,
        counters: Arc<Counters>,
        sent: Arc<AtomicU64>,
    ) -> Result<Ingested, PushError> {
        let limits = self.config.limits.clone();
        let (reader, decoder) = decode::spawn(feed, limits.clone(), counters);
        let mut walker = match Walker::new(reader, limits) {
            Ok(w) => w,
            Err(e) => return Err(prefer_decoder(decoder, e.into()).await),
        };
        let request = plan.request;
        let pass = ingest::Pass {
            registry: &plan.registry,
            config: &self.config,
            upload_repo: &plan.upload_repo,
            transform: plan.transform,
            cancel: CancellationToken::new(),
            cache: self.cache.clone(),
            locations: self.locations.clone(),
            events: request.events.clone(),
            sent,
            dry_run: request.dry_run,
            access: plan.access,
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

/// The archive's bytes must be those the client named, before anything is published.
fn check_body_digest(request: &Request, counters: &Counters) -> Result<(), PushError> {
    let (Some(claimed), Some(actual)) = (&request.digest, counters.body_digest()) else {
        return Ok(());
    };
    if *claimed == actual {
        return Ok(());
    }
    Err(ArchiveError::BodyDigestMismatch {
        claimed: claimed.to_string(),
        actual: actual.to_string(),
        bytes: counters.received(),
    }
    .into())
}

/// When a later stage fails, the decode stage's own error (body cut short, bomb, bad gzip)
/// is usually the cause and says more.
async fn prefer_decoder(
    decoder: tokio::task::JoinHandle<Result<Compression, ArchiveError>>,
    later: PushError,
) -> PushError {
    match tokio::time::timeout(Duration::from_secs(10), decoder).await {
        Ok(Ok(Err(e))) => e.into(),
        _ => later,
    }
}
