//! The worker of a blob job, on a blocking thread so hashing and compression never hold the
//! reactor: it hashes what the archive holds, inflates a compressed layer to hash its diffID
//! where asked, compresses an uncompressed one (gzip on the shared pool, zstd here) and hashes
//! what comes out, handing the output to the upload.

use std::io::{self, Write};
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::PushError;
use super::blob::{Kind, Transform};
use crate::archive::ArchiveError;
use crate::digest::{Digest, HashWriter, Sha256};

pub(super) struct Hashes {
    pub raw: Sha256,
    pub diff_id: Option<Digest>,
    pub out: Option<Sha256>,
}

/// How the upload of one blob is moving, to tell a stalled registry from a slow client: the
/// registry is stalled when the worker has output waiting and nobody has pulled for a while.
pub(super) struct Progress {
    start: std::time::Instant,
    last_pull_ms: std::sync::atomic::AtomicU64,
    waiting: std::sync::atomic::AtomicBool,
    finished: std::sync::atomic::AtomicBool,
}

impl Progress {
    pub(super) fn new() -> Progress {
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

    pub(super) fn pulled(&self) {
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

    pub(super) fn set_finished(&self) {
        self.pulled();
        self.finished
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Stalled: hoist has bytes waiting and the registry took none for `idle`; or everything
    /// was handed over and no answer came for 3 × `idle`. The second is longer because the
    /// last bytes may still sit in kernel buffers that a slow but live registry is draining.
    pub(super) fn stalled(&self, idle: std::time::Duration) -> bool {
        let quiet = self
            .now_ms()
            .saturating_sub(self.last_pull_ms.load(std::sync::atomic::Ordering::Relaxed));
        let idle = idle.as_millis() as u64;
        (self.waiting.load(std::sync::atomic::Ordering::Relaxed) && quiet > idle)
            || (self.finished.load(std::sync::atomic::Ordering::Relaxed) && quiet > 3 * idle)
    }
}

/// Why the worker stopped early.
pub(super) enum Stop {
    /// The upload went away (its own error says why).
    UploadGone,
    Failed(PushError),
}

impl Stop {
    pub(super) fn into_error(self) -> PushError {
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
pub(super) struct Work {
    pub transform: Transform,
    pub kind: Kind,
    pub diff_of_compressed: bool,
    pub path: String,
    pub progress: Arc<Progress>,
    pub cancel: CancellationToken,
    /// The PATCH declared a Content-Length: an early end must abort, not end cleanly.
    pub sized: bool,
    /// limits.max_ratio, for layers inflated to hash their diffID.
    pub max_ratio: u64,
}

/// Inflating a layer past this many bytes brings the ratio check in.
const BOMB_FLOOR: u64 = 64 << 20;

pub(super) fn process(
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
        max_ratio,
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
        // A layer is inflated only to hash it, but a bomb would still burn CPU for hours.
        let inflated = diff.inflated();
        if inflated > BOMB_FLOOR && inflated / raw.len().max(1) > max_ratio {
            return Err(fail(
                ArchiveError::LayerRatioTooHigh {
                    path: path.clone(),
                    ratio: max_ratio,
                }
                .into(),
            ));
        }
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
    /// Bytes inflated so far.
    fn inflated(&self) -> u64 {
        match self {
            DiffHasher::None => 0,
            DiffHasher::Gzip(d) => d.get_ref().0.len(),
            DiffHasher::Zstd(d) => d.get_ref().0.len(),
        }
    }

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
            max_ratio: 200,
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
