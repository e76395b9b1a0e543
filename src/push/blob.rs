//! Stage 3, one per streamed blob: a worker thread hashes what the archive holds (and, for an
//! uncompressed layer, compresses it and hashes what comes out), while an upload task relays
//! the output to the registry in one PATCH. The digest of what was sent exists only once the
//! entry is consumed; the session is closed with it (or cancelled) after that.

use std::io::{self, Write};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::PushError;
use crate::config::LayerCompression;
use crate::digest::{Digest, HashWriter, Sha256};
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
    /// Where the bytes go; `None` when the registry already has them (hash only).
    pub upload_to: Option<String>,
    /// A session already open for it (a declined mount's), used instead of a new POST.
    pub session: Option<crate::registry::Upload>,
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
    /// Repository the bytes went to (`None`: not sent, the registry had them).
    pub uploaded_to: Option<String>,
    /// The repository where the registry already had the blob.
    pub existed_in: Option<String>,
    /// The repository it was mounted into from another one, no bytes sent.
    pub mounted_into: Option<String>,
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

struct Hashes {
    raw: Sha256,
    diff_id: Option<Digest>,
    out: Option<Sha256>,
}

async fn run(
    registry: Arc<Registry>,
    spec: Spec,
    raw_rx: mpsc::Receiver<Bytes>,
    cancel: CancellationToken,
) -> Result<Done, PushError> {
    let (out_tx, out_rx) = mpsc::channel::<io::Result<Bytes>>(4);
    let uploading = spec.upload_to.is_some();
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
    };
    let worker =
        tokio::task::spawn_blocking(move || process(raw_rx, uploading.then_some(out_tx), &work));
    let Some(repo) = spec.upload_to.clone() else {
        let hashes = worker.await.map_err(internal)?.map_err(Stop::into_error)?;
        return finish_unsent(spec, hashes, &registry).await;
    };
    let session = match spec.session.clone() {
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
        uploaded_to: Some(repo),
        existed_in: None,
        mounted_into: None,
        bytes_sent: sent.load(std::sync::atomic::Ordering::Relaxed),
    })
}

async fn finish_unsent(
    spec: Spec,
    hashes: Hashes,
    _registry: &Registry,
) -> Result<Done, PushError> {
    let raw_digest = hashes.raw.clone().finish();
    check_named(&spec, &raw_digest)?;
    let raw_size = hashes.raw.len();
    Ok(Done {
        path: spec.path,
        kind: spec.kind,
        raw_digest: raw_digest.clone(),
        raw_size,
        diff_id: hashes.diff_id,
        pushed_digest: raw_digest,
        pushed_size: raw_size,
        recompressed: None,
        transform: Transform::PassThrough,
        uploaded_to: None,
        existed_in: None,
        mounted_into: None,
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

/// How the upload of one blob is moving, to tell a stalled registry from a slow client: the
/// registry is stalled when the worker has output waiting and nobody has pulled for a while.
struct Progress {
    start: std::time::Instant,
    last_pull_ms: std::sync::atomic::AtomicU64,
    waiting: std::sync::atomic::AtomicBool,
    finished: std::sync::atomic::AtomicBool,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            start: std::time::Instant::now(),
            last_pull_ms: std::sync::atomic::AtomicU64::new(0),
            waiting: std::sync::atomic::AtomicBool::new(false),
            finished: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    fn pulled(&self) {
        self.last_pull_ms
            .store(self.now_ms(), std::sync::atomic::Ordering::Relaxed);
    }

    fn set_waiting(&self, w: bool) {
        if w {
            // The wait starts now, not at the last pull.
            self.last_pull_ms
                .fetch_max(self.now_ms(), std::sync::atomic::Ordering::Relaxed);
        }
        self.waiting.store(w, std::sync::atomic::Ordering::Relaxed);
    }

    fn set_finished(&self) {
        self.pulled();
        self.finished
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Stalled: hoist has bytes waiting and the registry took none for `idle`; or everything
    /// was handed over and no answer came for 3 × `idle`. The second is longer because the
    /// last bytes may still sit in kernel buffers that a slow but live registry is draining.
    fn stalled(&self, idle: std::time::Duration) -> bool {
        let quiet = self
            .now_ms()
            .saturating_sub(self.last_pull_ms.load(std::sync::atomic::Ordering::Relaxed));
        let idle = idle.as_millis() as u64;
        (self.waiting.load(std::sync::atomic::Ordering::Relaxed) && quiet > idle)
            || (self.finished.load(std::sync::atomic::Ordering::Relaxed) && quiet > 3 * idle)
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

/// Why the worker stopped early.
enum Stop {
    /// The upload went away (its own error says why).
    UploadGone,
    Failed(PushError),
}

impl Stop {
    fn into_error(self) -> PushError {
        match self {
            Stop::UploadGone => PushError::Internal {
                detail: "upload ended early".into(),
            },
            Stop::Failed(e) => e,
        }
    }
}

/// The worker: runs on a blocking thread, so hashing and compression never hold the reactor.
/// What the worker thread does to one blob.
struct Work {
    transform: Transform,
    kind: Kind,
    diff_of_compressed: bool,
    path: String,
    progress: Arc<Progress>,
    cancel: CancellationToken,
    /// The PATCH declared a Content-Length: an early end must abort, not end cleanly.
    sized: bool,
}

fn process(
    mut raw_rx: mpsc::Receiver<Bytes>,
    out_tx: Option<mpsc::Sender<io::Result<Bytes>>>,
    work: &Work,
) -> Result<Hashes, Stop> {
    let Work {
        transform,
        kind,
        diff_of_compressed,
        ref path,
        ref progress,
        ref cancel,
        sized,
    } = *work;
    let mut raw = Sha256::new();
    let mut out_hash = (!matches!(transform, Transform::PassThrough)).then(Sha256::new);
    let mut encoder = Encoder::new(transform);
    let mut diff = match (diff_of_compressed, kind) {
        (true, Kind::Gzip) => DiffHasher::Gzip(Box::new(flate2::write::MultiGzDecoder::new(
            HashWriter::default(),
        ))),
        (true, Kind::Zstd) => DiffHasher::Zstd(Box::new(
            zstd::stream::write::Decoder::new(HashWriter::default())
                .map_err(|e| Stop::Failed(corrupt(path, e)))?,
        )),
        _ => DiffHasher::None,
    };
    let send = |bytes: Bytes, out_hash: &mut Option<Sha256>| -> Result<(), Stop> {
        if let Some(h) = out_hash.as_mut() {
            h.update(&bytes);
        }
        if let Some(tx) = &out_tx {
            progress.set_waiting(true);
            let sent = tx.blocking_send(Ok(bytes));
            progress.set_waiting(false);
            sent.map_err(|_| Stop::UploadGone)?;
        }
        Ok(())
    };
    // A failure ends the upload body early. Without a Content-Length that is a clean end the
    // registry acknowledges (so the session can be cancelled); with one, the body is poisoned
    // and the request aborts. Either way nothing is committed: that takes a PUT with a digest.
    let fail = |e: PushError| {
        if let (Some(tx), true) = (&out_tx, sized) {
            let _ = tx.blocking_send(Err(io::Error::other("aborted")));
        }
        Stop::Failed(e)
    };
    while let Some(chunk) = raw_rx.blocking_recv() {
        raw.update(&chunk);
        diff.write(&chunk).map_err(|e| fail(corrupt(path, e)))?;
        match encoder.as_mut() {
            None => send(chunk, &mut out_hash)?,
            Some(enc) => {
                for produced in enc.push(&chunk).map_err(|e| fail(corrupt(path, e)))? {
                    if !produced.is_empty() {
                        send(produced, &mut out_hash)?;
                    }
                }
            }
        }
    }
    // Input that ended because the push failed is not a blob: never let it be committed.
    if cancel.is_cancelled() {
        return Err(fail(PushError::Internal {
            detail: format!("push cancelled while reading {path}"),
        }));
    }
    if let Some(enc) = encoder.take() {
        for last in enc.finish().map_err(|e| fail(corrupt(path, e)))? {
            if !last.is_empty() {
                send(last, &mut out_hash)?;
            }
        }
    }
    let diff_id = match (kind, diff.finish().map_err(|e| fail(corrupt(path, e)))?) {
        (Kind::Tar, _) => Some(raw.clone().finish()),
        (_, d) => d,
    };
    Ok(Hashes {
        raw,
        diff_id,
        out: out_hash,
    })
}

fn corrupt(path: &str, e: io::Error) -> PushError {
    PushError::manifest(path, format!("layer data is corrupt: {e}"))
}

/// Incremental compressor; gzip runs on a thread per core (see `pgzip`).
enum Encoder {
    Gzip(super::pgzip::ParallelGzip),
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
}

impl Encoder {
    fn new(t: Transform) -> Option<Encoder> {
        match t {
            Transform::PassThrough => None,
            Transform::Gzip(level) => Some(Encoder::Gzip(super::pgzip::ParallelGzip::new(level))),
            Transform::Zstd(level) => Some(Encoder::Zstd(
                zstd::stream::write::Encoder::new(Vec::new(), level).expect("zstd level validated"),
            )),
        }
    }

    /// Compressed output that is ready, in order (possibly none).
    fn push(&mut self, input: &[u8]) -> io::Result<Vec<Bytes>> {
        match self {
            Encoder::Gzip(e) => e.push(input),
            Encoder::Zstd(e) => {
                e.write_all(input)?;
                Ok(vec![Bytes::from(std::mem::take(e.get_mut()))])
            }
        }
    }

    fn finish(self) -> io::Result<Vec<Bytes>> {
        match self {
            Encoder::Gzip(e) => e.finish(),
            Encoder::Zstd(e) => Ok(vec![Bytes::from(e.finish()?)]),
        }
    }
}

enum DiffHasher {
    None,
    Gzip(Box<flate2::write::MultiGzDecoder<HashWriter>>),
    Zstd(Box<zstd::stream::write::Decoder<'static, HashWriter>>),
}

impl DiffHasher {
    fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        match self {
            DiffHasher::None => Ok(()),
            DiffHasher::Gzip(d) => d.write_all(chunk),
            DiffHasher::Zstd(d) => d.write_all(chunk),
        }
    }

    fn finish(self) -> io::Result<Option<Digest>> {
        match self {
            DiffHasher::None => Ok(None),
            DiffHasher::Gzip(d) => Ok(Some(d.finish()?.0.finish())),
            DiffHasher::Zstd(mut d) => {
                d.flush()?;
                Ok(Some(d.into_inner().0.finish()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_worker(data: &[u8], transform: Transform, kind: Kind, diff: bool) -> (Hashes, Vec<u8>) {
        let (raw_tx, raw_rx) = mpsc::channel(4);
        let (out_tx, mut out_rx) = mpsc::channel::<io::Result<Bytes>>(4);
        let chunks: Vec<Bytes> = data.chunks(10_000).map(Bytes::copy_from_slice).collect();
        let feeder = std::thread::spawn(move || {
            for c in chunks {
                raw_tx.blocking_send(c).unwrap();
            }
        });
        let collector = std::thread::spawn(move || {
            let mut out = Vec::new();
            while let Some(Ok(b)) = out_rx.blocking_recv() {
                out.extend_from_slice(&b);
            }
            out
        });
        let work = Work {
            transform,
            kind,
            diff_of_compressed: diff,
            path: "x".into(),
            progress: Arc::new(Progress::new()),
            cancel: CancellationToken::new(),
            sized: false,
        };
        let hashes = process(raw_rx, Some(out_tx), &work).ok().unwrap();
        feeder.join().unwrap();
        (hashes, collector.join().unwrap())
    }

    #[test]
    fn gzip_transform_hashes_input_and_output() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 13) as u8).collect();
        let (h, out) = run_worker(&data, Transform::Gzip(1), Kind::Tar, false);
        assert_eq!(h.raw.clone().finish(), Digest::sha256_of(&data));
        assert_eq!(h.diff_id, Some(Digest::sha256_of(&data)));
        assert_eq!(h.out.unwrap().finish(), Digest::sha256_of(&out));
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&out[..]), &mut back).unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn pass_through_is_byte_exact_and_finds_diff_id() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 31) as u8).collect();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        let (h, out) = run_worker(&gz, Transform::PassThrough, Kind::Gzip, true);
        assert_eq!(out, gz);
        assert_eq!(h.raw.finish(), Digest::sha256_of(&gz));
        assert_eq!(h.diff_id, Some(Digest::sha256_of(&data)));
        let z = zstd::encode_all(&data[..], 3).unwrap();
        let (h, _) = run_worker(&z, Transform::PassThrough, Kind::Zstd, true);
        assert_eq!(h.diff_id, Some(Digest::sha256_of(&data)));
    }

    #[test]
    fn zstd_transform_round_trips() {
        let data: Vec<u8> = (0..150_000u32).map(|i| (i % 7) as u8).collect();
        let (h, out) = run_worker(&data, Transform::Zstd(3), Kind::Tar, false);
        assert_eq!(zstd::decode_all(&out[..]).unwrap(), data);
        assert_eq!(h.out.unwrap().finish(), Digest::sha256_of(&out));
    }
}
