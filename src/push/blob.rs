//! Stage 3, one per streamed blob: a worker thread hashes what the archive holds (and, for an
//! uncompressed layer, compresses it and hashes what comes out), while an upload task relays
//! the output to the registry in one PATCH. The digest of what was sent exists only once the
//! entry is consumed; the session is closed with it (or cancelled) after that.

use std::io;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::PushError;
use super::worker::{Hashes, Progress, Stop, Work, process};
use crate::config::LayerCompression;
use crate::digest::{Digest, Sha256};
use crate::registry::{Registry, RegistryError, Started};

/// What the blob's bytes are, judged from their first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gzip,
    Zstd,
    /// An uncompressed tar: a layer.
    Tar,
    /// Anything else, passed through as it is.
    Opaque,
}

/// What to do with the bytes on the way.
#[derive(Debug, Clone, Copy)]
pub enum Transform {
    PassThrough,
    Gzip(u32),
    Zstd(i32),
}

/// What a job is asked to do.
pub struct Spec {
    pub path: String,
    /// The digest the entry's name promises (`blobs/sha256/<hex>`).
    pub named: Option<Digest>,
    pub size: u64,
    pub kind: Kind,
    pub transform: Transform,
    /// Compute the uncompressed digest of a compressed blob (docker layers named by path only).
    pub diff_id_of_compressed: bool,
    /// Where the bytes go, or where the registry already has them (then they are only hashed).
    pub dest: Dest,
    /// limits.max_ratio: a layer inflated to hash it may not grow more than this.
    pub max_ratio: u64,
}

/// Where a streamed blob ends up.
pub enum Dest {
    /// Upload into this repository, on `session` if one is already open (a declined mount's).
    Upload {
        repo: String,
        session: Option<crate::registry::Upload>,
    },
    /// The registry has it already; `reused` names the compressed blob an uncompressed layer
    /// became last time (from the layer cache), with how it was compressed.
    Present {
        placed: Placed,
        reused: Option<(Digest, u64, Transform)>,
    },
}

/// Where a blob is in the upload repository, and how it got there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placed {
    Uploaded(String),
    Existed(String),
    Mounted(String),
}

impl Placed {
    pub fn repo(&self) -> &str {
        match self {
            Placed::Uploaded(r) | Placed::Existed(r) | Placed::Mounted(r) => r,
        }
    }

    pub fn outcome(&self) -> crate::report::Outcome {
        match self {
            Placed::Uploaded(_) => crate::report::Outcome::Uploaded,
            Placed::Existed(_) => crate::report::Outcome::Exists,
            Placed::Mounted(_) => crate::report::Outcome::Mounted,
        }
    }
}

/// What a job found and did.
#[derive(Debug, Clone)]
pub struct Done {
    pub path: String,
    pub kind: Kind,
    /// Digest and size of the bytes as they are in the archive.
    pub raw_digest: Digest,
    pub raw_size: u64,
    /// Digest of the uncompressed tar, where known.
    pub diff_id: Option<Digest>,
    /// Digest, size and compression of what the registry holds (differs when recompressed).
    pub pushed_digest: Digest,
    pub pushed_size: u64,
    pub recompressed: Option<LayerCompression>,
    /// What was done to the bytes.
    pub transform: Transform,
    /// Where the blob is now, and whether hoist sent it, found it or mounted it.
    pub placed: Placed,
    pub bytes_sent: u64,
}

/// Starts a job; returns the channel to feed the entry's bytes into and the job's handle.
pub fn start(
    registry: Arc<Registry>,
    spec: Spec,
    cancel: CancellationToken,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> (
    mpsc::Sender<Bytes>,
    tokio::task::JoinHandle<Result<Done, PushError>>,
) {
    let (raw_tx, raw_rx) = mpsc::channel::<Bytes>(4);
    let handle = tokio::spawn(async move {
        let _permit = permit;
        run(registry, spec, raw_rx, cancel).await
    });
    (raw_tx, handle)
}

async fn run(
    registry: Arc<Registry>,
    spec: Spec,
    raw_rx: mpsc::Receiver<Bytes>,
    cancel: CancellationToken,
) -> Result<Done, PushError> {
    let (out_tx, out_rx) = mpsc::channel::<io::Result<Bytes>>(4);
    let uploading = matches!(spec.dest, Dest::Upload { .. });
    let transform = spec.transform;
    let kind = spec.kind;
    let progress = Arc::new(Progress::new());
    let sized = registry.send_content_length() && matches!(transform, Transform::PassThrough);
    let work = Work {
        transform,
        kind,
        diff_of_compressed: spec.diff_id_of_compressed,
        path: spec.path.clone(),
        progress: progress.clone(),
        cancel: cancel.clone(),
        sized,
        max_ratio: spec.max_ratio,
    };
    let worker =
        tokio::task::spawn_blocking(move || process(raw_rx, uploading.then_some(out_tx), &work));
    let (repo, session) = match &spec.dest {
        Dest::Upload { repo, session } => (repo.clone(), session.clone()),
        Dest::Present { .. } => {
            let hashes = worker.await.map_err(internal)?.map_err(Stop::into_error)?;
            return finish_unsent(spec, hashes);
        }
    };
    let session = match session {
        Some(s) => s,
        None => match registry.start_upload(&repo, None).await? {
            Started::Session(s) => s,
            Started::Mounted => unreachable!("no mount requested"),
        },
    };
    let len = sized.then_some(spec.size);
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = sent.clone();
    let pulled = progress.clone();
    let body = tokio_stream_from(out_rx)
        .map(move |r| {
            if let Ok(b) = &r {
                counted.fetch_add(b.len() as u64, std::sync::atomic::Ordering::Relaxed);
            }
            pulled.pulled();
            r
        })
        .chain(futures_util::stream::poll_fn({
            // After the last byte, the registry owes an answer within `idle` too.
            let done = progress.clone();
            move |_| {
                done.set_finished();
                std::task::Poll::Ready(None)
            }
        }));
    let patch = async {
        if registry.chunk_size() == 0 {
            return registry
                .patch_stream(&session, reqwest::Body::wrap_stream(body), len)
                .await;
        }
        patch_chunks(&registry, &session, body).await
    };
    let patch = watch(patch, &progress, registry.idle(), &session.repository);
    let (patched, hashes) = tokio::join!(patch, worker);
    let hashes = match (hashes.map_err(internal)?, &patched) {
        (Ok(h), _) => h,
        // The worker only stopped because the upload did: report the upload's error.
        (Err(Stop::UploadGone), Err(_)) => Hashes {
            raw: Sha256::new(),
            diff_id: None,
            out: None,
        },
        (Err(Stop::UploadGone), Ok(_)) => {
            registry.cancel(&session).await;
            return Err(PushError::Internal {
                detail: format!("upload of {} ended early", spec.path),
            });
        }
        // The stream was ended cleanly, so the registry answered with a fresh Location that
        // can cancel the session (distribution refuses a stale `_state`).
        (Err(Stop::Failed(e)), Ok(after)) => {
            registry.cancel(after).await;
            return Err(e);
        }
        (Err(Stop::Failed(e)), Err(_)) => {
            registry.cancel(&session).await;
            return Err(e);
        }
    };
    let after_patch = match patched {
        Ok(s) => s,
        Err(e) => {
            registry.cancel(&session).await;
            return Err(match e {
                RegistryError::Status { .. } | RegistryError::Protocol { .. } => {
                    PushError::Registry(RegistryError::StreamFailed {
                        digest: spec.path.clone(),
                        detail: e.to_string(),
                    })
                }
                other => other.into(),
            });
        }
    };
    if let Err(e) = check_named(&spec, &hashes.raw.clone().finish()) {
        registry.cancel(&after_patch).await;
        return Err(e);
    }
    if cancel.is_cancelled() {
        registry.cancel(&after_patch).await;
        return Err(PushError::Internal {
            detail: "push cancelled".into(),
        });
    }
    let out = hashes.out.clone().unwrap_or_else(|| hashes.raw.clone());
    let (pushed_size, pushed_digest) = (out.len(), out.finish());
    if let Err(e) = registry.finish_upload(&after_patch, &pushed_digest).await {
        registry.cancel(&after_patch).await;
        return Err(e.into());
    }
    let raw_size = hashes.raw.len();
    Ok(Done {
        path: spec.path,
        kind,
        raw_digest: hashes.raw.finish(),
        raw_size,
        diff_id: hashes.diff_id,
        pushed_digest,
        pushed_size,
        recompressed: recompressed(transform),
        transform,
        placed: Placed::Uploaded(repo),
        bytes_sent: sent.load(std::sync::atomic::Ordering::Relaxed),
    })
}

/// A blob the registry already had: verified by its hash, nothing sent.
fn finish_unsent(spec: Spec, hashes: Hashes) -> Result<Done, PushError> {
    let raw_digest = hashes.raw.clone().finish();
    check_named(&spec, &raw_digest)?;
    let raw_size = hashes.raw.len();
    let Dest::Present { placed, reused } = spec.dest else {
        unreachable!("only called for blobs the registry has")
    };
    let (pushed_digest, pushed_size, recompressed) = match reused {
        Some((blob, size, was)) => (blob, size, recompressed(was)),
        None => (raw_digest.clone(), raw_size, None),
    };
    Ok(Done {
        path: spec.path,
        kind: spec.kind,
        raw_digest,
        raw_size,
        diff_id: hashes.diff_id,
        pushed_digest,
        pushed_size,
        recompressed,
        transform: Transform::PassThrough,
        placed,
        bytes_sent: 0,
    })
}

fn check_named(spec: &Spec, actual: &Digest) -> Result<(), PushError> {
    match &spec.named {
        Some(named) if named.algorithm() == "sha256" && named != actual => {
            Err(PushError::DigestMismatch {
                what: format!("blob {}", spec.path),
                expected: named.to_string(),
                actual: actual.to_string(),
            })
        }
        _ => Ok(()),
    }
}

/// How a finished job compressed its blob, for the layer cache.
pub fn recipe_of(done: &Done) -> Option<super::cache::Recipe> {
    match done.transform {
        Transform::PassThrough => None,
        Transform::Gzip(l) => Some(super::cache::Recipe::Gzip(l)),
        Transform::Zstd(l) => Some(super::cache::Recipe::Zstd(l)),
    }
}

pub fn recompressed(t: Transform) -> Option<LayerCompression> {
    match t {
        Transform::PassThrough => None,
        Transform::Gzip(_) => Some(LayerCompression::Gzip),
        Transform::Zstd(_) => Some(LayerCompression::Zstd),
    }
}

fn internal(e: tokio::task::JoinError) -> PushError {
    PushError::Internal {
        detail: format!("blob worker failed: {e}"),
    }
}

fn tokio_stream_from(
    rx: mpsc::Receiver<io::Result<Bytes>>,
) -> impl futures_util::Stream<Item = io::Result<Bytes>> + Send + 'static {
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
}

/// Chunked mode: gathers `chunk_size` bytes (at least the registry's minimum) per PATCH and
/// tracks the offset itself, never trusting `Range` alone.
async fn patch_chunks(
    registry: &Registry,
    session: &crate::registry::Upload,
    body: impl futures_util::Stream<Item = io::Result<Bytes>>,
) -> Result<crate::registry::Upload, RegistryError> {
    let size = registry.chunk_size().max(session.min_chunk) as usize;
    let mut session = session.clone();
    let mut offset = 0u64;
    let mut buf = bytes::BytesMut::with_capacity(size);
    tokio::pin!(body);
    loop {
        let next = body.next().await;
        let end = match next {
            Some(Ok(b)) => {
                buf.extend_from_slice(&b);
                false
            }
            Some(Err(e)) => {
                return Err(RegistryError::Protocol {
                    op: "chunked upload".into(),
                    detail: e.to_string(),
                });
            }
            None => true,
        };
        while buf.len() >= size || (end && !buf.is_empty()) {
            let n = buf.len().min(size);
            let chunk = buf.split_to(n).freeze();
            session = registry.patch_chunk(&session, chunk, offset).await?;
            offset += n as u64;
        }
        if end {
            return Ok(session);
        }
    }
}

/// Runs the PATCH, giving up when the registry stops taking bytes for `idle`.
async fn watch<F>(
    patch: F,
    progress: &Progress,
    idle: std::time::Duration,
    repo: &str,
) -> Result<crate::registry::Upload, RegistryError>
where
    F: std::future::Future<Output = Result<crate::registry::Upload, RegistryError>>,
{
    tokio::pin!(patch);
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
    loop {
        tokio::select! {
            r = &mut patch => return r,
            _ = tick.tick() => {
                if progress.stalled(idle) {
                    return Err(RegistryError::Timeout {
                        op: format!("PATCH blob upload in {repo}"),
                        secs: idle.as_secs(),
                    });
                }
            }
        }
    }
}
