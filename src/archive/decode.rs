//! Stage 1: the request body as it arrives → whole-archive decompression → plain tar bytes.
//! The compression is sniffed from the first bytes (never from a name or a header). It runs on
//! its own blocking thread so inflate never stalls the reactor, joined to its neighbours by
//! bounded channels, so a slow consumer slows the client down instead of filling memory.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};

use async_compression::tokio::bufread::{BzDecoder, GzipDecoder, XzDecoder, ZstdDecoder};
use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::sync::mpsc;
use tokio_util::io::StreamReader;

use super::ArchiveError;
use super::input::{CHUNK, Counters, Feed};
use crate::codec::{GZIP_MAGIC, ZSTD_MAGIC};
use crate::limits::Limits;

/// Whole-archive compression, detected by magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Gzip,
    Zstd,
    Xz,
    Bzip2,
}

impl Compression {
    /// Detects from the first bytes; `None` means "not compressed (or not recognised)".
    pub fn sniff(head: &[u8]) -> Compression {
        if head.starts_with(&GZIP_MAGIC) {
            Compression::Gzip
        } else if head.starts_with(&ZSTD_MAGIC) {
            Compression::Zstd
        } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0x00]) {
            Compression::Xz
        } else if head.starts_with(b"BZh") {
            Compression::Bzip2
        } else {
            Compression::None
        }
    }
}

/// Starts the decode stage. Returns the plain tar stream and the stage's handle, which yields
/// the compression found, or the typed error that stopped it.
pub fn spawn(
    input: mpsc::Receiver<Feed>,
    limits: Limits,
    counters: Arc<Counters>,
) -> (
    StreamReader<DecodedStream, Bytes>,
    tokio::task::JoinHandle<Result<Compression, ArchiveError>>,
) {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(4);
    let handle = tokio::runtime::Handle::current();
    let task =
        tokio::task::spawn_blocking(move || handle.block_on(run(input, tx, limits, counters)));
    (StreamReader::new(DecodedStream(rx)), task)
}

/// The decoded bytes, as a stream for `StreamReader`.
pub struct DecodedStream(mpsc::Receiver<io::Result<Bytes>>);

impl Stream for DecodedStream {
    type Item = io::Result<Bytes>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx)
    }
}

async fn run(
    input: mpsc::Receiver<Feed>,
    tx: mpsc::Sender<io::Result<Bytes>>,
    limits: Limits,
    counters: Arc<Counters>,
) -> Result<Compression, ArchiveError> {
    let fault = Arc::new(std::sync::Mutex::new(None));
    let take_fault = || fault.lock().expect("fault lock").take();
    let body = StreamReader::new(Input {
        rx: input,
        fault: fault.clone(),
        counters: counters.clone(),
        done: false,
    });
    let mut buffered = BufReader::with_capacity(CHUNK, body);
    let head = match sniff_head(&mut buffered).await {
        Ok(h) => h,
        Err(e) => return Err(take_fault().unwrap_or_else(|| malformed("at the start", e))),
    };
    if head.is_empty() {
        return Err(ArchiveError::NotAnArchive {
            detail: "the request body is empty".into(),
        });
    }
    let compression = Compression::sniff(&head);
    let reader = decoder(std::io::Cursor::new(head).chain(buffered), compression);
    let result = pump(reader, &tx, &limits, &counters, compression).await;
    match result {
        Ok(()) => Ok(compression),
        Err(e) => {
            let _ = tx.send(Err(io::Error::other("decode stage failed"))).await;
            Err(take_fault().unwrap_or(e))
        }
    }
}

/// Bytes the longest magic number (xz's) needs.
const SNIFF_BYTES: usize = 6;

/// The body's first bytes, enough to sniff (fewer only when the body is shorter). However the
/// client's bytes were cut into chunks: a first chunk of one byte must not hide a gzip magic.
async fn sniff_head<R: tokio::io::AsyncBufRead + Unpin>(body: &mut R) -> io::Result<Vec<u8>> {
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    while head.len() < SNIFF_BYTES {
        let buf = body.fill_buf().await?;
        if buf.is_empty() {
            break;
        }
        let n = buf.len().min(SNIFF_BYTES - head.len());
        head.extend_from_slice(&buf[..n]);
        body.consume(n);
    }
    Ok(head)
}

/// Largest zstd window accepted: 2^27 = 128 MiB, libzstd's own default cap, stated here so
/// that no frame can make a decoder allocate more (`zstd --long=31` archives are refused).
const ZSTD_WINDOW_LOG_MAX: u32 = 27;

/// Memory an xz decoder may use: 128 MiB, about twice what `xz -9e` archives need.
const XZ_MEMORY_LIMIT: u64 = 128 << 20;

/// The decompressor for what was sniffed; every one reads concatenated members.
fn decoder<R: tokio::io::AsyncBufRead + Send + 'static>(
    input: R,
    compression: Compression,
) -> Pin<Box<dyn AsyncRead + Send>> {
    match compression {
        Compression::None => Box::pin(input),
        Compression::Gzip => {
            let mut d = GzipDecoder::new(input);
            d.multiple_members(true);
            Box::pin(d)
        }
        Compression::Zstd => {
            let window = async_compression::zstd::DParameter::window_log_max(ZSTD_WINDOW_LOG_MAX);
            let mut d = ZstdDecoder::with_params(input, &[window]);
            d.multiple_members(true);
            Box::pin(d)
        }
        Compression::Xz => {
            let mut d = XzDecoder::with_mem_limit(input, XZ_MEMORY_LIMIT);
            d.multiple_members(true);
            Box::pin(d)
        }
        Compression::Bzip2 => {
            let mut d = BzDecoder::new(input);
            d.multiple_members(true);
            Box::pin(d)
        }
    }
}

/// Moves decompressed chunks to the tar stage, checking the size limits as they grow.
async fn pump(
    mut reader: Pin<Box<dyn AsyncRead + Send>>,
    tx: &mpsc::Sender<io::Result<Bytes>>,
    limits: &Limits,
    counters: &Counters,
    compression: Compression,
) -> Result<(), ArchiveError> {
    let mut total = 0u64;
    loop {
        let mut buf = BytesMut::with_capacity(CHUNK);
        let n = reader.read_buf(&mut buf).await.map_err(|e| {
            let at = format!("in the {compression:?} stream after {total} decompressed bytes");
            malformed(&at, e)
        })?;
        if n == 0 {
            return Ok(());
        }
        total += n as u64;
        counters.decompressed.store(total, Ordering::Relaxed);
        if let Some(err) = check_size(total, counters, limits, compression) {
            return Err(err);
        }
        if tx.send(Ok(buf.freeze())).await.is_err() {
            // The tar stage stopped reading (it finished or failed); it reports why.
            return Ok(());
        }
    }
}

fn check_size(
    total: u64,
    counters: &Counters,
    limits: &Limits,
    c: Compression,
) -> Option<ArchiveError> {
    if total > limits.decompressed_bytes {
        return Some(ArchiveError::DecompressedTooLarge {
            limit: limits.decompressed_bytes,
        });
    }
    if c != Compression::None && total > (64 << 20) {
        let received = counters.received.load(Ordering::Relaxed).max(1);
        if total / received > limits.max_ratio {
            return Some(ArchiveError::RatioTooHigh {
                ratio: limits.max_ratio,
            });
        }
    }
    None
}

fn malformed(at: &str, e: io::Error) -> ArchiveError {
    ArchiveError::Malformed {
        at: at.to_string(),
        detail: e.to_string(),
    }
}

/// The forwarder's feed as a byte stream; a failure is parked in `fault` so the typed error
/// survives the decoders, which only speak `io::Error`.
struct Input {
    rx: mpsc::Receiver<Feed>,
    fault: Arc<std::sync::Mutex<Option<ArchiveError>>>,
    counters: Arc<Counters>,
    done: bool,
}

impl Stream for Input {
    type Item = io::Result<Bytes>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let item = std::task::ready!(self.rx.poll_recv(cx));
        let fail = |this: &mut Self, e: ArchiveError| {
            this.done = true;
            *this.fault.lock().expect("fault lock") = Some(e);
            Poll::Ready(Some(Err(io::Error::other("request body failed"))))
        };
        match item {
            Some(Feed::Chunk(b)) => Poll::Ready(Some(Ok(b))),
            Some(Feed::End) => {
                self.done = true;
                Poll::Ready(None)
            }
            Some(Feed::Fail(e)) => fail(&mut self, e),
            None => {
                let received = self.counters.received.load(Ordering::Relaxed);
                fail(&mut self, ArchiveError::BodyIncomplete { received })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    async fn decode_all(
        chunks: Vec<Vec<u8>>,
        limits: Limits,
    ) -> (Result<Compression, ArchiveError>, Vec<u8>) {
        let (tx, rx) = mpsc::channel(4);
        let counters = Arc::new(Counters::default());
        let fed = counters.clone();
        tokio::spawn(async move {
            for c in chunks {
                fed.received.fetch_add(c.len() as u64, Ordering::Relaxed);
                tx.send(Feed::Chunk(Bytes::from(c))).await.ok();
            }
            tx.send(Feed::End).await.ok();
        });
        let (mut reader, task) = spawn(rx, limits, counters);
        let mut out = Vec::new();
        let _ = reader.read_to_end(&mut out).await;
        (task.await.unwrap(), out)
    }

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sniffs_and_decodes_every_format() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 97) as u8).collect();
        let cases = vec![
            (Compression::None, data.clone()),
            (Compression::Gzip, gz(&data)),
            (Compression::Zstd, zstd::encode_all(&data[..], 3).unwrap()),
        ];
        for (want, input) in cases {
            let chunks = input.chunks(1000).map(|c| c.to_vec()).collect();
            let (res, out) = decode_all(chunks, Limits::default()).await;
            assert_eq!(res.unwrap(), want);
            assert_eq!(out, data, "{want:?}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_magic_number_cut_over_chunks_is_still_sniffed() {
        let data: Vec<u8> = (0..50_000u32).map(|i| (i % 89) as u8).collect();
        let cases = vec![
            (Compression::Gzip, gz(&data)),
            (Compression::Zstd, zstd::encode_all(&data[..], 3).unwrap()),
        ];
        for (want, input) in cases {
            let mut chunks: Vec<Vec<u8>> = input[..5].iter().map(|&b| vec![b]).collect();
            chunks.push(input[5..].to_vec());
            let (res, out) = decode_all(chunks, Limits::default()).await;
            assert_eq!(res.unwrap(), want);
            assert_eq!(out, data, "{want:?}");
        }
        let (res, out) = decode_all(vec![b"ab".to_vec()], Limits::default()).await;
        assert_eq!(res.unwrap(), Compression::None);
        assert_eq!(out, b"ab");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn multi_member_gzip_is_read_whole() {
        let mut input = gz(b"first member|");
        input.extend(gz(b"second member"));
        let (res, out) = decode_all(vec![input], Limits::default()).await;
        assert_eq!(res.unwrap(), Compression::Gzip);
        assert_eq!(out, b"first member|second member");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bomb_stops_at_the_limit() {
        let zeros = vec![0u8; 8 << 20];
        let limits = Limits {
            decompressed_bytes: 1 << 20,
            ..Limits::default()
        };
        let (res, out) = decode_all(vec![gz(&zeros)], limits).await;
        assert!(
            matches!(res, Err(ArchiveError::DecompressedTooLarge { .. })),
            "{res:?}"
        );
        assert!(out.len() <= (1 << 20) + CHUNK);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn corrupt_gzip_is_malformed() {
        let mut input = gz(&vec![7u8; 100_000]);
        let n = input.len();
        input[n / 2] ^= 0xff;
        input[n / 2 + 1] ^= 0xff;
        let (res, _) = decode_all(vec![input], Limits::default()).await;
        assert!(
            matches!(res, Err(ArchiveError::Malformed { .. })),
            "{res:?}"
        );
    }
}
