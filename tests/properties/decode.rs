//! The decode stage (sniffing and whole-archive decompression): any body, however chunked,
//! decodes to exactly what was compressed or ends in a typed error; damaged streams never
//! panic, and a checksummed format never hands on damaged bytes as good.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use async_compression::tokio::bufread::{BzEncoder, GzipEncoder, XzEncoder, ZstdEncoder};
use bytes::Bytes;
use hoist::archive::ArchiveError;
use hoist::archive::decode::{Compression, spawn};
use hoist::archive::input::{Counters, Feed};
use hoist::limits::Limits;
use proptest::prelude::*;
use tokio::io::AsyncReadExt;
use tokio::sync::mpsc;

use super::memory::budget;

const FORMATS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Zstd,
    Compression::Xz,
    Compression::Bzip2,
];

/// Codes the decode stage may answer with.
const CODES: [&str; 4] = [
    "ARCHIVE_INVALID",
    "UNSUPPORTED_FORMAT",
    "DECOMPRESSED_TOO_LARGE",
    "BODY_INCOMPLETE",
];

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Compressible data: random runs repeated, as tar streams are.
fn data() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        (prop::collection::vec(any::<u8>(), 1..64), 1usize..200),
        1..40,
    )
    .prop_map(|runs| runs.iter().flat_map(|(run, n)| run.repeat(*n)).collect())
}

async fn compress(data: &[u8], format: Compression) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = match format {
        Compression::None => return data.to_vec(),
        Compression::Gzip => GzipEncoder::new(data).read_to_end(&mut out).await,
        Compression::Zstd => ZstdEncoder::new(data).read_to_end(&mut out).await,
        Compression::Xz => XzEncoder::new(data).read_to_end(&mut out).await,
        Compression::Bzip2 => BzEncoder::new(data).read_to_end(&mut out).await,
    }
    .unwrap();
    out
}

/// Feeds `body` in chunks of the given sizes (cycled) and reads the stage to its end.
async fn decode(
    body: &[u8],
    chunks: &[usize],
    limits: Limits,
) -> (Result<Compression, ArchiveError>, Vec<u8>) {
    let (tx, rx) = mpsc::channel(4);
    let counters = Arc::new(Counters::default());
    let pieces: Vec<Bytes> = split(body, chunks);
    let fed = counters.clone();
    tokio::spawn(async move {
        for piece in pieces {
            fed.received
                .fetch_add(piece.len() as u64, Ordering::Relaxed);
            if tx.send(Feed::Chunk(piece)).await.is_err() {
                return;
            }
        }
        let _ = tx.send(Feed::End).await;
    });
    let (mut reader, task) = spawn(rx, limits, counters);
    let mut out = Vec::new();
    let _ = reader.read_to_end(&mut out).await;
    (task.await.expect("the decode stage does not panic"), out)
}

fn split(body: &[u8], sizes: &[usize]) -> Vec<Bytes> {
    let mut pieces = Vec::new();
    let mut at = 0;
    for size in sizes.iter().cycle() {
        if at >= body.len() {
            break;
        }
        let end = (at + size).min(body.len());
        pieces.push(Bytes::copy_from_slice(&body[at..end]));
        at = end;
    }
    pieces
}

fn sizes() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..70_000, 1..8)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: ProptestConfig::default().cases / 4, ..ProptestConfig::default() })]

    #[test]
    fn any_format_in_any_chunking_decodes_to_what_was_compressed(
        data in data(), format in prop::sample::select(FORMATS.to_vec()), chunks in sizes()
    ) {
        prop_assume!(format != Compression::None || Compression::sniff(&data) == Compression::None);
        let _b = budget(64 << 20);
        let rt = runtime();
        let (found, out) = rt.block_on(async {
            let body = compress(&data, format).await;
            decode(&body, &chunks, Limits::default()).await
        });
        prop_assert_eq!(found.map_err(|e| e.code()), Ok(format));
        prop_assert!(out == data, "decoded {} bytes, compressed {}", out.len(), data.len());
    }

    #[test]
    fn damaged_streams_end_in_a_typed_error_or_the_true_bytes(
        data in data(),
        format in prop::sample::select(FORMATS[1..].to_vec()),
        flips in prop::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 0..4),
        keep in any::<prop::sample::Index>(),
        chunks in sizes(),
    ) {
        let _b = budget(64 << 20);
        let rt = runtime();
        let (body, found, out) = rt.block_on(async {
            let mut body = compress(&data, format).await;
            for (at, x) in &flips {
                let i = at.index(body.len());
                body[i] ^= x;
            }
            let cut = if flips.is_empty() { keep.index(body.len()) } else { body.len() };
            body.truncate(cut.max(1));
            let (found, out) = decode(&body, &chunks, Limits::default()).await;
            (body, found, out)
        });
        match found {
            Err(e) => prop_assert!(CODES.contains(&e.code()), "{}: {e}", e.code()),
            // Damage hit the magic bytes: the body is read as what it now looks like.
            Ok(other) if other != format => prop_assert_eq!(other, Compression::sniff(&body)),
            // zstd frames carry no checksum unless asked; the others do.
            Ok(_) if format == Compression::Zstd => {}
            Ok(_) => prop_assert!(out == data, "damaged {format:?} passed as good"),
        }
    }

    #[test]
    fn bombs_stop_at_the_decompressed_limit(
        format in prop::sample::select(FORMATS[1..].to_vec()), n in 200_000usize..2_000_000
    ) {
        let _b = budget(64 << 20);
        let limits = Limits { decompressed_bytes: 100_000, ..Limits::default() };
        let rt = runtime();
        let (found, out) = rt.block_on(async {
            let body = compress(&vec![0u8; n], format).await;
            decode(&body, &[65_536], limits.clone()).await
        });
        let code = found.map(|_| "none").unwrap_or_else(|e| e.code());
        prop_assert_eq!(code, "DECOMPRESSED_TOO_LARGE");
        prop_assert!(out.len() as u64 <= limits.decompressed_bytes + (256 << 10));
    }
}
