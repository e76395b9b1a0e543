//! The single pass over the archive: each entry is classified from its name and first bytes
//! and either kept in memory (small JSON: manifests, configs, indexes) or streamed to the
//! registry by a blob job while the walk moves on. Links are recorded and resolved at the
//! end, since a symlink may point forward.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use tokio::io::AsyncRead;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::blob::{self, BlobJob, Finished};
use super::cache::{LayerCache, Locations};
use super::entry::{self, Fed};
use super::error::PushError;
use super::events::{Event, Events};
use super::placement::{self, Dest, Placed, Reused};
use crate::archive::walk::{Item, Walker};
use crate::archive::{ArchiveError, names};
use crate::codec::{self, LayerTransform};
use crate::config::Config;
use crate::image::{ArchiveFiles, File};
use crate::oci::{Digest, LayerEncoding};
use crate::registry::Registry;

/// Small files that are not JSON (`oci-layout`, `repositories`) are kept too, up to this.
const SMALL_FILE: u64 = 4096;

/// What one pass needs.
pub(super) struct Pass<'a> {
    pub registry: &'a Arc<Registry>,
    pub config: &'a Config,
    /// Where streamed blobs go: the target repository, or the staging one.
    pub upload_repo: &'a str,
    /// What uncompressed layers become.
    pub transform: LayerTransform,
    pub cancel: CancellationToken,
    pub cache: Arc<LayerCache>,
    pub locations: Arc<Locations>,
    /// Where to tell about each blob done.
    pub events: Events,
    /// Bytes sent to the registry by this push, as they go.
    pub sent: Arc<std::sync::atomic::AtomicU64>,
    /// Write nothing: hash everything, say what a push would do.
    pub dry_run: bool,
    /// Where this push may mount from.
    pub access: placement::Access<'a>,
}

/// What the pass found and did.
#[derive(Default)]
pub(super) struct Ingested {
    pub archive: ArchiveFiles,
    /// Where each streamed blob (by the digest the registry holds it under) is now.
    pub placed: HashMap<Digest, Placed>,
    pub bytes_sent: u64,
    pub entries: u64,
}

type Jobs = JoinSet<Result<Finished, PushError>>;

/// Runs the pass. On failure every blob job is stopped, and their sessions cancelled, before
/// returning.
pub(super) async fn ingest<R: AsyncRead + Unpin + Send + 'static>(
    walker: &mut Walker<R>,
    pass: &Pass<'_>,
) -> Result<Ingested, PushError> {
    let mut jobs = JoinSet::new();
    let mut out = Ingested::default();
    let result = match walk(walker, pass, &mut jobs, &mut out).await {
        Ok(()) => collect(&mut jobs, &mut out, &pass.events).await,
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        pass.cancel.cancel();
        // Jobs see their input end, find the token cancelled, and cancel their sessions.
        let drain = async { while jobs.join_next().await.is_some() {} };
        let _ = tokio::time::timeout(std::time::Duration::from_secs(30), drain).await;
        jobs.abort_all();
        return Err(e);
    }
    out.entries = walker.count();
    Ok(out)
}

async fn collect(jobs: &mut Jobs, out: &mut Ingested, events: &Events) -> Result<(), PushError> {
    while let Some(res) = jobs.join_next().await {
        record(res, out, events)?;
    }
    Ok(())
}

fn record(
    res: Result<Result<Finished, PushError>, tokio::task::JoinError>,
    out: &mut Ingested,
    events: &Events,
) -> Result<(), PushError> {
    let done = res.map_err(|e| PushError::Internal {
        detail: format!("blob job failed: {e}"),
    })??;
    events.emit(Event::Blob {
        entry: done.blob.path.clone(),
        digest: done.blob.pushed.clone(),
        size: done.blob.pushed_size,
        outcome: done.placed.outcome,
    });
    out.bytes_sent += done.bytes_sent;
    crate::telemetry::blob_placed(&done.placed.outcome);
    out.placed.insert(done.blob.pushed.clone(), done.placed);
    let path = done.blob.path.clone();
    out.archive.files.insert(path, File::Streamed(done.blob));
    Ok(())
}

async fn walk<R: AsyncRead + Unpin + Send + 'static>(
    walker: &mut Walker<R>,
    pass: &Pass<'_>,
    jobs: &mut Jobs,
    out: &mut Ingested,
) -> Result<(), PushError> {
    let inflight = Arc::new(Semaphore::new(pass.config.max_inflight_blobs));
    let mut metadata = MetadataBudget::default();
    while let Some(item) = walker.next().await? {
        while let Some(res) = jobs.try_join_next() {
            record(res, out, &pass.events)?;
        }
        let (path, size, mut entry) = match item {
            Item::Symlink { path, target } | Item::Hardlink { path, target } => {
                out.archive.links.insert(path, target);
                continue;
            }
            Item::File { path, size, entry } => (path, size, entry),
        };
        if names::is_legacy_extra(&path) {
            entry::skip(&mut entry, &path).await?;
            out.archive.files.insert(path, File::Skipped);
            continue;
        }
        let head = entry::head(&mut entry, size, &path).await?;
        let encoding = codec::sniff(&head);
        if is_document(pass.config, &path, size, &head, encoding) {
            metadata.take(pass.config, &path, size)?;
            let bytes = entry::rest(&mut entry, head, size, &path).await?;
            let digest = Digest::sha256_of(&bytes);
            out.archive
                .files
                .insert(path, File::Memory { bytes, digest });
            continue;
        }
        let mut job = plan(pass, path, size, encoding).await?;
        if pass.dry_run {
            job.dest = job.dest.dry();
        }
        let permit = inflight
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore never closed");
        stream(pass, jobs, job, permit, &mut entry, head).await?;
    }
    Ok(())
}

/// Whether an entry is kept in memory: the layout's own files, and small JSON documents
/// (manifests, configs, indexes) that resolution reads.
fn is_document(
    config: &Config,
    path: &str,
    size: u64,
    head: &[u8],
    encoding: Option<LayerEncoding>,
) -> bool {
    let limit = config.limits.metadata_file_bytes;
    names::is_metadata(path)
        || (size <= limit
            && (names::looks_like_json(head) || (size <= SMALL_FILE && encoding.is_none())))
}

/// The bytes of metadata kept in memory so far, against both limits.
#[derive(Default)]
struct MetadataBudget {
    total: u64,
}

impl MetadataBudget {
    fn take(&mut self, config: &Config, path: &str, size: u64) -> Result<(), ArchiveError> {
        let limits = &config.limits;
        if size > limits.metadata_file_bytes {
            return Err(ArchiveError::MetadataTooLarge {
                path: path.to_string(),
                limit: limits.metadata_file_bytes,
            });
        }
        self.total += size;
        if self.total > limits.metadata_total_bytes {
            return Err(ArchiveError::MetadataTotalTooLarge {
                path: path.to_string(),
                limit: limits.metadata_total_bytes,
            });
        }
        Ok(())
    }
}

/// Decides what a streamed entry's job does: where its bytes go, and whether a layer this
/// process compressed before (and the registry holds) is only verified, not redone.
async fn plan(
    pass: &Pass<'_>,
    path: String,
    size: u64,
    encoding: Option<LayerEncoding>,
) -> Result<BlobJob, PushError> {
    let (registry, locations, repo) = (pass.registry, &pass.locations, pass.upload_repo);
    let access = pass.access;
    let named = names::blob_digest(&path);
    let transform = match encoding {
        Some(LayerEncoding::Tar) => pass.transform,
        _ => LayerTransform::Keep,
    };
    let find_diff_id = matches!(encoding, Some(LayerEncoding::Gzip | LayerEncoding::Zstd))
        && (named.is_none() || pass.config.verify_layer_diff_ids);
    let mut job = BlobJob {
        diff_id: names::diff_id(&path, encoding).or_else(|| legacy_diff_id(pass, &path, encoding)),
        named: named.clone(),
        path,
        size,
        encoding,
        transform,
        find_diff_id,
        dest: Dest::Upload {
            repo: repo.to_string(),
        },
        max_ratio: pass.config.limits.max_ratio,
        sent: pass.sent.clone(),
    };
    if let (Some(d), LayerTransform::Keep) = (&named, transform) {
        if let Some(dest) =
            placement::destination(registry, locations, access, repo, d, None).await?
        {
            job.dest = dest;
        }
        return Ok(job);
    }
    let cached = match (&job.diff_id, transform) {
        (Some(diff_id), t) if t != LayerTransform::Keep => pass.cache.get(diff_id, t),
        _ => None,
    };
    if let Some((blob, size)) = cached {
        let reused = Reused {
            blob: blob.clone(),
            size,
            transform,
        };
        if let Some(dest) =
            placement::destination(registry, locations, access, repo, &blob, Some(reused)).await?
        {
            // Only verified now: its tar must hash to the diffID its name promised.
            job.dest = dest;
            job.transform = LayerTransform::Keep;
            job.named = job.diff_id.clone();
        }
    }
    Ok(job)
}

/// Starts a blob job and feeds it the entry; the job finishes in the background.
async fn stream<R: AsyncRead + Unpin>(
    pass: &Pass<'_>,
    jobs: &mut Jobs,
    job: BlobJob,
    permit: tokio::sync::OwnedSemaphorePermit,
    entry: &mut R,
    head: Bytes,
) -> Result<(), PushError> {
    let path = job.path.clone();
    let (tx, handle) = blob::start(
        pass.registry.clone(),
        pass.locations.clone(),
        job,
        pass.cancel.clone(),
        permit,
    );
    let fed = entry::feed(entry, head, &tx, &path).await;
    if let Err(Fed::Read(_)) = &fed {
        // Cancel before the job sees its input end, so it cancels its session instead of
        // committing a truncated blob.
        pass.cancel.cancel();
    }
    drop(tx);
    match fed {
        Ok(()) => {
            let (cache, locations) = (pass.cache.clone(), pass.locations.clone());
            let dry_run = pass.dry_run;
            jobs.spawn(async move {
                let done = handle.await.map_err(|e| PushError::Internal {
                    detail: e.to_string(),
                })??;
                if !dry_run {
                    remember(&cache, &locations, &done);
                }
                Ok(done)
            });
            Ok(())
        }
        Err(Fed::JobGone) => Err(match handle.await {
            Ok(Err(e)) => e,
            Ok(Ok(_)) => PushError::Internal {
                detail: format!("blob job for {path} ended early"),
            },
            Err(e) => PushError::Internal {
                detail: e.to_string(),
            },
        }),
        Err(Fed::Read(e)) => {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(30), handle).await;
            Err(e)
        }
    }
}

/// The diffID a legacy layer name had when this process saw it last.
fn legacy_diff_id(pass: &Pass<'_>, path: &str, encoding: Option<LayerEncoding>) -> Option<Digest> {
    let legacy = encoding == Some(LayerEncoding::Tar) && names::is_legacy_layer(path);
    legacy.then(|| pass.cache.diff_id_named(path)).flatten()
}

/// What later pushes may skip: the compressed form of a layer, a legacy layer name's diffID,
/// and where a blob now is.
fn remember(cache: &LayerCache, locations: &Locations, done: &Finished) {
    if let Some(diff_id) = &done.blob.diff_id
        && names::is_legacy_layer(&done.blob.path)
    {
        cache.learn_name(&done.blob.path, diff_id.clone());
    }
    let uploaded = done.placed.outcome == crate::report::Outcome::Uploaded;
    if let (Some(diff_id), true, true) = (
        &done.blob.diff_id,
        uploaded,
        done.transform != LayerTransform::Keep,
    ) {
        cache.put(
            diff_id.clone(),
            done.transform,
            (done.blob.pushed.clone(), done.blob.pushed_size),
        );
    }
    locations.put(done.blob.pushed.clone(), &done.placed.repo);
}
