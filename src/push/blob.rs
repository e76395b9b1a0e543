//! A blob job, one per streamed entry: a worker thread runs the entry's bytes through a
//! `LayerCodec` (hash, inflate to check, compress) while the job's session relays the output
//! to the registry in one PATCH. The digest of what was sent exists only once the entry is
//! consumed; the session is committed with it, or cancelled (on every failure path, by the
//! session's own guard).

use std::io;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::cache::Locations;
use super::error::PushError;
use super::placement::{self, Dest, Placed};
use crate::archive::ArchiveError;
use crate::codec::{CodecError, Digests, LayerCodec, LayerTransform};
use crate::image::{ImageError, StreamedBlob};
use crate::oci::{Digest, LayerEncoding};
use crate::registry::{Progress, Registry, Session};
use crate::report::Outcome;

/// What a job is asked to do.
pub(super) struct BlobJob {
    pub path: String,
    /// The digest the entry's name promises (`blobs/sha256/<hex>`), checked at the end.
    pub named: Option<Digest>,
    /// The diffID the entry's name promises for an uncompressed layer (podman `<diffid>.tar`).
    pub diff_id: Option<Digest>,
    pub size: u64,
    /// What the bytes are (`None`: not a layer).
    pub encoding: Option<LayerEncoding>,
    /// What to do to an uncompressed layer.
    pub transform: LayerTransform,
    /// Inflate a compressed layer to find its diffID (docker layers named by path only).
    pub find_diff_id: bool,
    pub dest: Dest,
    /// limits.max_ratio: a layer inflated to hash it may not grow more than this.
    pub max_ratio: u64,
    /// The push's count of bytes sent, for progress reports.
    pub sent: Arc<std::sync::atomic::AtomicU64>,
}

/// What a job found and did.
#[derive(Debug, Clone)]
pub(super) struct Finished {
    pub blob: StreamedBlob,
    pub placed: Placed,
    /// How it was compressed, for the layer cache (`Keep` when it was not).
    pub transform: LayerTransform,
    pub bytes_sent: u64,
}

/// Starts a job; returns the channel to feed the entry's bytes into and the job's handle.
pub(super) fn start(
    registry: Arc<Registry>,
    locations: Arc<Locations>,
    job: BlobJob,
    cancel: CancellationToken,
    permit: tokio::sync::OwnedSemaphorePermit,
) -> (
    mpsc::Sender<Bytes>,
    tokio::task::JoinHandle<Result<Finished, PushError>>,
) {
    let (raw_tx, raw_rx) = mpsc::channel::<Bytes>(4);
    let handle = tokio::spawn(crate::telemetry::scoped(async move {
        let _permit = permit;
        run(&registry, &locations, job, raw_rx, cancel).await
    }));
    (raw_tx, handle)
}

async fn run(
    registry: &Arc<Registry>,
    locations: &Locations,
    job: BlobJob,
    raw_rx: mpsc::Receiver<Bytes>,
    cancel: CancellationToken,
) -> Result<Finished, PushError> {
    let transform = match job.encoding {
        Some(LayerEncoding::Tar) => job.transform,
        _ => LayerTransform::Keep,
    };
    let codec = LayerCodec::new(job.encoding, transform, job.find_diff_id, job.max_ratio)
        .map_err(|e| codec_error(&job.path, e))?;
    let sized = registry.send_content_length() && transform == LayerTransform::Keep;
    let worker = Worker {
        progress: Arc::new(Progress::counting(job.sent.clone())),
        cancel,
        sized,
        out: None,
        gone: CancellationToken::new(),
        runtime: tokio::runtime::Handle::current(),
    };
    let repo = match &job.dest {
        Dest::Upload { repo } => repo.clone(),
        Dest::Hash { .. } | Dest::Mount { .. } => {
            let digests = tokio::task::spawn_blocking(move || worker.run(codec, raw_rx))
                .await
                .map_err(internal)?
                .map_err(|stop| stop.into_error(&job.path))?;
            return finish_unsent(registry, locations, job, digests).await;
        }
    };
    let mut session = Session::open(registry, &repo).await?;
    let (bytes_sent, digests) = match upload(&mut session, &job, worker, codec, raw_rx).await {
        Ok(v) => v,
        Err(e) => {
            session.cancel().await;
            return Err(e);
        }
    };
    session.commit(&digests.output).await?;
    Ok(Finished {
        blob: streamed(&job, &digests, transform),
        placed: Placed {
            repo,
            outcome: Outcome::Uploaded,
        },
        transform,
        bytes_sent,
    })
}

/// The worker thread and the PATCH side by side; then the bytes must be what the entry
/// claimed, and the push still on. Returns the bytes sent and the digests.
async fn upload(
    session: &mut Session,
    job: &BlobJob,
    mut worker: Worker,
    codec: LayerCodec,
    raw_rx: mpsc::Receiver<Bytes>,
) -> Result<(u64, Digests), PushError> {
    let (out_tx, out_rx) = mpsc::channel::<io::Result<Bytes>>(4);
    worker.out = Some(out_tx);
    let (progress, gone, cancel) = (
        worker.progress.clone(),
        worker.gone.clone(),
        worker.cancel.clone(),
    );
    let len = worker.sized.then_some(job.size);
    let thread = tokio::task::spawn_blocking(move || worker.run(codec, raw_rx));
    let body = futures_util::stream::unfold(out_rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let send = async {
        let sent = session.send(body, len, progress).await;
        if sent.is_err() {
            // The PATCH may still hold the body (a stalled registry keeps its connection):
            // tell the worker to stop handing bytes over.
            gone.cancel();
        }
        sent
    };
    let (sent, digests) = tokio::join!(send, thread);
    let (sent, digests) = settle(&job.path, sent, digests.map_err(internal)?)?;
    check_named(job, &digests.input)?;
    if cancel.is_cancelled() {
        // Another blob failed meanwhile: commit nothing more.
        return Err(PushError::Internal {
            detail: "push cancelled".into(),
        });
    }
    Ok((sent, digests))
}

/// The worker's result beside the upload's: when the worker only stopped because the upload
/// went away, the upload's error is the one to report.
fn settle(
    path: &str,
    upload: Result<u64, crate::registry::RegistryError>,
    worker: Result<Digests, Stop>,
) -> Result<(u64, Digests), PushError> {
    match (worker, upload) {
        (Ok(d), Ok(sent)) => Ok((sent, d)),
        (Ok(_), Err(e)) | (Err(Stop::UploadGone), Err(e)) => Err(stream_failed(path, e)),
        // The registry answered the PATCH before its body ended: its fault, not hoist's.
        (Err(Stop::UploadGone), Ok(_)) => Err(crate::registry::RegistryError::Protocol {
            op: format!("PATCH of archive entry {path:?}"),
            detail: "the registry answered before the blob's body ended".into(),
        }
        .into()),
        (Err(stop), _) => Err(stop.into_error(path)),
    }
}

/// A blob the registry already had, or can mount: verified by its hash, nothing sent; a
/// mount only once the bytes proved to be what the entry claims.
async fn finish_unsent(
    registry: &Registry,
    locations: &Locations,
    job: BlobJob,
    digests: Digests,
) -> Result<Finished, PushError> {
    check_named(&job, &digests.input)?;
    let (repo, reused, outcome) = match &job.dest {
        Dest::Hash {
            repo,
            reused,
            outcome,
        } => (repo, reused, *outcome),
        Dest::Mount { repo, reused, .. } => (repo, reused, Outcome::Mounted),
        Dest::Upload { .. } => unreachable!("only called for blobs not sent"),
    };
    let mut blob = streamed(&job, &digests, LayerTransform::Keep);
    let mut transform = LayerTransform::Keep;
    if let Some(r) = reused {
        blob.pushed = r.blob.clone();
        blob.pushed_size = r.size;
        blob.encoding = job.encoding.map(|e| r.transform.output(e));
        blob.recompressed = true;
        transform = r.transform;
    }
    if let Dest::Mount { from, .. } = &job.dest {
        placement::mount_verified(registry, locations, repo, &blob.pushed, from).await?;
    }
    Ok(Finished {
        placed: Placed {
            repo: repo.clone(),
            outcome,
        },
        blob,
        transform,
        bytes_sent: 0,
    })
}

fn streamed(job: &BlobJob, d: &Digests, transform: LayerTransform) -> StreamedBlob {
    StreamedBlob {
        path: job.path.clone(),
        raw: d.input.clone(),
        raw_size: d.input_size,
        diff_id: d.diff_id.clone(),
        pushed: d.output.clone(),
        pushed_size: d.output_size,
        encoding: job.encoding.map(|e| transform.output(e)),
        recompressed: transform != LayerTransform::Keep,
    }
}

/// The entry's name promised a digest: its bytes must hash to it.
fn check_named(job: &BlobJob, actual: &Digest) -> Result<(), PushError> {
    match &job.named {
        Some(named) if named.algorithm() == "sha256" && named != actual => {
            Err(ImageError::DigestMismatch {
                what: format!("blob {}", job.path),
                expected: named.to_string(),
                actual: actual.to_string(),
            }
            .into())
        }
        _ => Ok(()),
    }
}

/// The worker thread's side: bytes in from the walk, through the codec, out to the upload.
struct Worker {
    progress: Arc<Progress>,
    cancel: CancellationToken,
    /// The PATCH declared a Content-Length: an early end must abort, not end cleanly.
    sized: bool,
    /// Where output goes; `None` when the registry has the blob and it is only hashed.
    out: Option<mpsc::Sender<io::Result<Bytes>>>,
    /// Cancelled when the upload failed: a hand-over waiting on it gives up.
    gone: CancellationToken,
    runtime: tokio::runtime::Handle,
}

/// Why the worker stopped early.
enum Stop {
    /// The upload went away (its own error says why).
    UploadGone,
    Codec(CodecError),
    /// The push was cancelled while the entry was being read: its input is not a blob.
    Cancelled,
}

impl Stop {
    fn into_error(self, path: &str) -> PushError {
        match self {
            Stop::UploadGone => PushError::Internal {
                detail: format!("upload of {path} ended early"),
            },
            Stop::Codec(e) => codec_error(path, e),
            Stop::Cancelled => PushError::Internal {
                detail: format!("push cancelled while reading {path}"),
            },
        }
    }
}

impl Worker {
    fn run(self, codec: LayerCodec, mut raw_rx: mpsc::Receiver<Bytes>) -> Result<Digests, Stop> {
        let result = self.pump(codec, &mut raw_rx);
        if result.is_err() {
            self.abort();
        }
        result
    }

    fn pump(
        &self,
        mut codec: LayerCodec,
        raw_rx: &mut mpsc::Receiver<Bytes>,
    ) -> Result<Digests, Stop> {
        while let Some(chunk) = raw_rx.blocking_recv() {
            let produced = codec.push(chunk).map_err(Stop::Codec)?;
            self.send(produced)?;
        }
        // Input that ended because the push failed is not a blob: never let it be committed.
        if self.cancel.is_cancelled() {
            return Err(Stop::Cancelled);
        }
        let (last, digests) = codec.finish().map_err(Stop::Codec)?;
        self.send(last)?;
        Ok(digests)
    }

    fn send(&self, produced: Vec<Bytes>) -> Result<(), Stop> {
        let Some(tx) = &self.out else {
            return Ok(());
        };
        for bytes in produced {
            self.progress.set_waiting(true);
            let sent = self.hand_over(tx, Ok(bytes));
            self.progress.set_waiting(false);
            sent?;
        }
        Ok(())
    }

    /// Blocks until the upload takes `item`, or the upload is gone.
    fn hand_over(
        &self,
        tx: &mpsc::Sender<io::Result<Bytes>>,
        item: io::Result<Bytes>,
    ) -> Result<(), Stop> {
        self.runtime.block_on(async {
            tokio::select! {
                sent = tx.send(item) => sent.map_err(|_| Stop::UploadGone),
                () = self.gone.cancelled() => Err(Stop::UploadGone),
            }
        })
    }

    /// A failure ends the upload body early. Without a Content-Length that is a clean end
    /// the registry acknowledges (so the session can be cancelled at its fresh Location);
    /// with one, the body is poisoned and the request aborts. Either way nothing is
    /// committed: that takes a PUT with a digest.
    fn abort(&self) {
        if let (Some(tx), true) = (&self.out, self.sized) {
            let _ = self.hand_over(tx, Err(io::Error::other("aborted")));
        }
    }
}

fn codec_error(path: &str, e: CodecError) -> PushError {
    match e {
        CodecError::Corrupt(e) => ArchiveError::Malformed {
            at: format!("in layer {path:?}"),
            detail: format!("the layer data is corrupt: {e}"),
        }
        .into(),
        CodecError::Bomb { ratio } => ArchiveError::LayerRatioTooHigh {
            path: path.to_string(),
            ratio,
        }
        .into(),
    }
}

/// A PATCH that failed after its bytes were sent: the push can be retried.
fn stream_failed(path: &str, e: crate::registry::RegistryError) -> PushError {
    use crate::registry::RegistryError;
    match e {
        RegistryError::Status { .. } | RegistryError::Protocol { .. } => {
            PushError::Registry(RegistryError::StreamFailed {
                entry: path.to_string(),
                detail: e.to_string(),
            })
        }
        other => other.into(),
    }
}

fn internal(e: tokio::task::JoinError) -> PushError {
    PushError::Internal {
        detail: format!("blob worker failed: {e}"),
    }
}
