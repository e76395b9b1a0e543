//! The single pass over the archive: each entry is classified from its first bytes and either
//! kept in memory (small JSON: manifests, configs, indexes) or streamed to the registry by a
//! blob job while the walk moves on. Links are recorded and resolved at the end, since a
//! symlink may point forward.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::PushError;
use super::blob::{self, Dest, Done, Kind, Placed, Spec, Transform};
use super::cache::{LayerCache, Locations, Recipe};
use crate::archive::walk::{Item, Walker};
use crate::archive::{ArchiveError, decode::CHUNK, layout};
use crate::config::{Config, LayerCompression};
use crate::digest::Digest;
use crate::registry::{Registry, Started, Upload};

/// One file of the archive, as the end of the pass knows it.
#[derive(Debug, Clone)]
pub enum FileRec {
    /// Kept in memory: its bytes and sha256.
    Memory { bytes: Bytes, digest: Digest },
    /// Streamed by a blob job.
    Streamed(Done),
    /// Read and dropped (legacy `<id>/json`, `<id>/VERSION`).
    Skipped,
}

/// What the pass found.
#[derive(Debug, Default)]
pub struct Ingested {
    pub files: HashMap<String, FileRec>,
    /// Link path → target path (already resolved against the link's directory).
    pub links: HashMap<String, String>,
    pub bytes_sent: u64,
    pub entries: u64,
}

/// Settings of one pass.
pub struct Pass<'a> {
    pub registry: &'a Arc<Registry>,
    pub config: &'a Config,
    /// Where streamed blobs go: the target repository, or the staging one.
    pub upload_repo: &'a str,
    pub compression: LayerCompression,
    pub cancel: CancellationToken,
    pub cache: Arc<LayerCache>,
    pub locations: Arc<Locations>,
}

/// Whether the upload repository has a blob, after trying to mount it from where this
/// process last saw it.
enum Placement {
    Exists,
    Mounted,
    /// The registry declined the mount and opened an ordinary session instead: use it.
    Session(Upload),
    Absent,
}

impl Placement {
    /// Where the blob already is in `repo`, or the session to upload it on.
    fn split(self, repo: &str) -> (Option<Placed>, Option<Upload>) {
        match self {
            Placement::Exists => (Some(Placed::Existed(repo.to_string())), None),
            Placement::Mounted => (Some(Placed::Mounted(repo.to_string())), None),
            Placement::Session(s) => (None, Some(s)),
            Placement::Absent => (None, None),
        }
    }
}

async fn place(pass: &Pass<'_>, digest: &Digest) -> Result<Placement, PushError> {
    if pass.registry.blob_exists(pass.upload_repo, digest).await? {
        return Ok(Placement::Exists);
    }
    let Some(from) = pass.locations.get(digest).filter(|f| f != pass.upload_repo) else {
        return Ok(Placement::Absent);
    };
    // Any mount failure falls back to an upload (Harbor answers 401 for unknown projects).
    Ok(
        match pass
            .registry
            .start_upload(pass.upload_repo, Some((digest, &from)))
            .await
        {
            Ok(Started::Mounted) => Placement::Mounted,
            Ok(Started::Session(s)) => Placement::Session(s),
            Err(e) => {
                tracing::debug!(%digest, %from, error = %e, "mount failed; uploading instead");
                Placement::Absent
            }
        },
    )
}

type Jobs = JoinSet<Result<Done, PushError>>;

/// Runs the pass. On failure every open upload is cancelled before returning.
pub async fn ingest<R: AsyncRead + Unpin + Send + 'static>(
    walker: &mut Walker<R>,
    pass: &Pass<'_>,
) -> Result<Ingested, PushError> {
    let mut jobs = JoinSet::new();
    let mut out = Ingested::default();
    let result = walk(walker, pass, &mut jobs, &mut out).await;
    let result = match result {
        Ok(()) => collect(&mut jobs, &mut out).await,
        Err(e) => Err(e),
    };
    if let Err(e) = result {
        pass.cancel.cancel();
        // Jobs see their input end, find the token cancelled and close nothing.
        let drain = async { while jobs.join_next().await.is_some() {} };
        let _ = tokio::time::timeout(std::time::Duration::from_secs(30), drain).await;
        jobs.abort_all();
        return Err(e);
    }
    out.entries = walker.count();
    Ok(out)
}

async fn collect(jobs: &mut Jobs, out: &mut Ingested) -> Result<(), PushError> {
    while let Some(res) = jobs.join_next().await {
        record(res, out)?;
    }
    Ok(())
}

fn record(
    res: Result<Result<Done, PushError>, tokio::task::JoinError>,
    out: &mut Ingested,
) -> Result<(), PushError> {
    let done = res.map_err(|e| PushError::Internal {
        detail: format!("blob job failed: {e}"),
    })??;
    out.bytes_sent += done.bytes_sent;
    out.files.insert(done.path.clone(), FileRec::Streamed(done));
    Ok(())
}

async fn walk<R: AsyncRead + Unpin + Send + 'static>(
    walker: &mut Walker<R>,
    pass: &Pass<'_>,
    jobs: &mut Jobs,
    out: &mut Ingested,
) -> Result<(), PushError> {
    let inflight = Arc::new(Semaphore::new(pass.config.max_inflight_blobs));
    let limits = &pass.config.limits;
    let mut metadata_total = 0u64;
    while let Some(item) = walker.next().await? {
        while let Some(res) = jobs.try_join_next() {
            record(res, out)?;
        }
        let (path, size, mut entry) = match item {
            Item::Symlink { path, target } | Item::Hardlink { path, target } => {
                out.links.insert(path, target);
                continue;
            }
            Item::File { path, size, entry } => (path, size, entry),
        };
        if is_legacy_extra(&path) {
            drain(&mut entry, &path).await?;
            out.files.insert(path, FileRec::Skipped);
            continue;
        }
        let head = read_head(&mut entry, size, &path).await?;
        let known_meta = is_metadata_name(&path);
        let kind = sniff(&head);
        let small_plain = size <= 4096 && kind == Kind::Opaque;
        if known_meta
            || (size <= limits.metadata_file_bytes
                && (layout::looks_like_json(&head) || small_plain))
        {
            if size > limits.metadata_file_bytes {
                return Err(ArchiveError::MetadataTooLarge {
                    path,
                    limit: limits.metadata_file_bytes,
                }
                .into());
            }
            metadata_total += size;
            if metadata_total > limits.metadata_total_bytes {
                return Err(ArchiveError::MetadataTotalTooLarge {
                    path,
                    limit: limits.metadata_total_bytes,
                }
                .into());
            }
            let bytes = read_rest(&mut entry, head, size, &path).await?;
            let digest = Digest::sha256_of(&bytes);
            out.files.insert(path, FileRec::Memory { bytes, digest });
            continue;
        }
        let named = digest_from_path(&path);
        let mut transform = match (kind, pass.compression) {
            (Kind::Tar, LayerCompression::Gzip) => Transform::Gzip(pass.config.gzip_level),
            (Kind::Tar, LayerCompression::Zstd) => Transform::Zstd(pass.config.zstd_level),
            _ => Transform::PassThrough,
        };
        let repo = pass.upload_repo.to_string();
        let mut session = None;
        let mut present = None;
        if let (Some(d), Transform::PassThrough) = (&named, transform) {
            (present, session) = place(pass, d).await?.split(&repo);
        }
        // A layer compressed before whose result the registry holds: verify, do not redo.
        let mut reused = None;
        if let (Some(diff_id), Some(recipe)) = (diff_id_from_path(&path, kind), recipe(transform))
            && let Some((blob, blob_size)) = pass.cache.get(&diff_id, recipe)
        {
            // A declined mount's session takes the upload: compressing again gives that blob.
            let (found, s) = place(pass, &blob).await?.split(&repo);
            session = s.or(session);
            if let Some(p) = found {
                reused = Some((diff_id, blob, blob_size, transform));
                transform = Transform::PassThrough;
                present = Some(p);
            }
        }
        let named = named.or_else(|| reused.as_ref().map(|r| r.0.clone()));
        let dest = match present {
            Some(placed) => Dest::Present {
                placed,
                reused: reused.map(|(_, blob, size, was)| (blob, size, was)),
            },
            None => Dest::Upload {
                repo: repo.clone(),
                session,
            },
        };
        let spec = Spec {
            path: path.clone(),
            named,
            size,
            kind,
            transform,
            diff_id_of_compressed: matches!(kind, Kind::Gzip | Kind::Zstd)
                && (digest_from_path(&path).is_none() || pass.config.verify_layer_diff_ids),
            dest,
            max_ratio: limits.max_ratio,
        };
        let permit = inflight
            .clone()
            .acquire_owned()
            .await
            .expect("semaphore never closed");
        let (tx, handle) = blob::start(pass.registry.clone(), spec, pass.cancel.clone(), permit);
        let fed = feed(&mut entry, head, &tx, &path).await;
        if let Err(Fed::Read(_)) = &fed {
            // Cancel before the job sees its input end, so it poisons the upload and cancels
            // the session instead of committing a truncated blob.
            pass.cancel.cancel();
        }
        drop(tx);
        match fed {
            Ok(()) => {
                let cache = pass.cache.clone();
                let locations = pass.locations.clone();
                jobs.spawn(async move {
                    let done = handle.await.map_err(|e| PushError::Internal {
                        detail: e.to_string(),
                    })??;
                    if let (Some(diff_id), Some(r), Placed::Uploaded(_)) =
                        (&done.diff_id, blob::recipe_of(&done), &done.placed)
                    {
                        cache.put(
                            diff_id.clone(),
                            r,
                            (done.pushed_digest.clone(), done.pushed_size),
                        );
                    }
                    locations.put(done.pushed_digest.clone(), &repo);
                    Ok(done)
                });
            }
            // The job stopped taking bytes: its own error says why.
            Err(Fed::JobGone) => {
                return Err(match handle.await {
                    Ok(Err(e)) => e,
                    Ok(Ok(_)) => PushError::Internal {
                        detail: format!("blob job for {path} ended early"),
                    },
                    Err(e) => PushError::Internal {
                        detail: e.to_string(),
                    },
                });
            }
            Err(Fed::Read(e)) => {
                let _ = tokio::time::timeout(std::time::Duration::from_secs(30), handle).await;
                return Err(e);
            }
        }
    }
    Ok(())
}

enum Fed {
    JobGone,
    Read(PushError),
}

async fn feed<R: AsyncRead + Unpin>(
    entry: &mut R,
    head: Bytes,
    tx: &tokio::sync::mpsc::Sender<Bytes>,
    path: &str,
) -> Result<(), Fed> {
    if !head.is_empty() && tx.send(head).await.is_err() {
        return Err(Fed::JobGone);
    }
    loop {
        let mut buf = BytesMut::with_capacity(CHUNK);
        let n = entry
            .read_buf(&mut buf)
            .await
            .map_err(|e| Fed::Read(read_err(path, e)))?;
        if n == 0 {
            return Ok(());
        }
        if tx.send(buf.freeze()).await.is_err() {
            return Err(Fed::JobGone);
        }
    }
}

/// Reads the first bytes of an entry (enough to sniff a tar header).
async fn read_head<R: AsyncRead + Unpin>(
    entry: &mut R,
    size: u64,
    path: &str,
) -> Result<Bytes, PushError> {
    let target = size.min(1024) as usize;
    let cap = size.min(CHUNK as u64) as usize;
    let mut buf = BytesMut::with_capacity(cap);
    while buf.len() < target {
        let n = (&mut *entry)
            .take((cap - buf.len()) as u64)
            .read_buf(&mut buf)
            .await
            .map_err(|e| read_err(path, e))?;
        if n == 0 {
            break;
        }
    }
    Ok(buf.freeze())
}

async fn read_rest<R: AsyncRead + Unpin>(
    entry: &mut R,
    head: Bytes,
    size: u64,
    path: &str,
) -> Result<Bytes, PushError> {
    let mut buf = Vec::with_capacity(size as usize);
    buf.extend_from_slice(&head);
    entry
        .read_to_end(&mut buf)
        .await
        .map_err(|e| read_err(path, e))?;
    Ok(Bytes::from(buf))
}

async fn drain<R: AsyncRead + Unpin>(entry: &mut R, path: &str) -> Result<(), PushError> {
    tokio::io::copy(entry, &mut tokio::io::sink())
        .await
        .map_err(|e| read_err(path, e))?;
    Ok(())
}

fn read_err(path: &str, e: std::io::Error) -> PushError {
    ArchiveError::Malformed {
        at: format!("in entry {path:?}"),
        detail: e.to_string(),
    }
    .into()
}

fn sniff(head: &[u8]) -> Kind {
    match crate::archive::decode::Compression::sniff(head) {
        crate::archive::decode::Compression::Gzip => Kind::Gzip,
        crate::archive::decode::Compression::Zstd => Kind::Zstd,
        _ if layout::looks_like_tar(head) => Kind::Tar,
        _ => Kind::Opaque,
    }
}

/// `manifest.json`, `index.json`, `oci-layout`, `repositories`, at the top or under one folder.
fn is_metadata_name(path: &str) -> bool {
    let (dir, base) = path.rsplit_once('/').unwrap_or(("", path));
    !dir.contains('/')
        && matches!(
            base,
            "manifest.json" | "index.json" | "oci-layout" | "repositories"
        )
}

/// Legacy docker-save per-layer files nobody references: `<id>/json`, `<id>/VERSION`.
fn is_legacy_extra(path: &str) -> bool {
    matches!(path.rsplit_once('/'), Some((dir, "json" | "VERSION")) if !dir.contains('/') && dir != "blobs")
}

/// The diffID an uncompressed layer's name promises: Docker 25+ `blobs/sha256/<diffid>`,
/// podman `<diffid>.tar`. Verified against the content like any other name.
fn diff_id_from_path(path: &str, kind: Kind) -> Option<Digest> {
    if kind != Kind::Tar {
        return None;
    }
    digest_from_path(path).or_else(|| {
        let hex = path.strip_suffix(".tar").filter(|h| !h.contains('/'))?;
        Digest::from_parts("sha256", hex).ok()
    })
}

fn recipe(t: Transform) -> Option<Recipe> {
    match t {
        Transform::PassThrough => None,
        Transform::Gzip(l) => Some(Recipe::Gzip(l)),
        Transform::Zstd(l) => Some(Recipe::Zstd(l)),
    }
}

/// `[folder/]blobs/<alg>/<hex>` → its digest.
pub fn digest_from_path(path: &str) -> Option<Digest> {
    let mut parts = path.rsplit('/');
    let hex = parts.next()?;
    let alg = parts.next()?;
    if parts.next()? != "blobs" {
        return None;
    }
    if parts.clone().count() > 1 {
        return None;
    }
    Digest::from_parts(alg, hex).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let hex = "a".repeat(64);
        assert!(digest_from_path(&format!("blobs/sha256/{hex}")).is_some());
        assert!(digest_from_path(&format!("img/blobs/sha256/{hex}")).is_some());
        assert!(digest_from_path(&format!("a/b/blobs/sha256/{hex}")).is_none());
        assert!(digest_from_path("blobs/sha256/xyz").is_none());
        assert!(is_metadata_name("manifest.json"));
        assert!(is_metadata_name("img/index.json"));
        assert!(!is_metadata_name("blobs/sha256/index.json"));
        assert!(is_legacy_extra("0123/json"));
        assert!(is_legacy_extra("0123/VERSION"));
        assert!(!is_legacy_extra("0123/layer.tar"));
    }
}
