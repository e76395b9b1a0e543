//! The incremental compressors and inflaters `LayerCodec` drives: gzip on the shared pool
//! (see `pgzip`), zstd in place, and inflaters that only hash what they decompress.

use std::io::{self, Write};

use bytes::Bytes;

use super::LayerTransform;
use super::pgzip::ParallelGzip;
use crate::oci::LayerEncoding;
use crate::oci::digest::{Digest, HashWriter};

/// Incremental compressor.
pub(super) enum Encoder {
    Gzip(ParallelGzip),
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
}

impl Encoder {
    /// The compressor a transform needs; `None` for `Keep`.
    pub(super) fn new(t: LayerTransform) -> io::Result<Option<Encoder>> {
        Ok(match t {
            LayerTransform::Keep => None,
            LayerTransform::Gzip(level) => Some(Encoder::Gzip(ParallelGzip::new(level))),
            LayerTransform::Zstd(level) => {
                Some(Encoder::Zstd(zstd_encoder(level, zstd_workers())?))
            }
        })
    }

    /// Compressed output that is ready, in order (possibly none).
    pub(super) fn push(&mut self, input: &[u8]) -> io::Result<Vec<Bytes>> {
        match self {
            Encoder::Gzip(e) => e.push(input),
            Encoder::Zstd(e) => {
                e.write_all(input)?;
                Ok(vec![Bytes::from(std::mem::take(e.get_mut()))])
            }
        }
    }

    pub(super) fn finish(self) -> io::Result<Vec<Bytes>> {
        match self {
            Encoder::Gzip(e) => e.finish(),
            Encoder::Zstd(e) => Ok(vec![Bytes::from(e.finish()?)]),
        }
    }
}

/// A zstd compressor on `workers` threads of zstd's own. Its output depends on the level and
/// not on the number of workers (for one or more), so a layer gets the same digest on every
/// machine (`zstd_output_does_not_depend_on_the_workers`).
fn zstd_encoder(
    level: i32,
    workers: u32,
) -> io::Result<zstd::stream::write::Encoder<'static, Vec<u8>>> {
    let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), level)?;
    encoder.multithread(workers)?;
    // zstd's default job (several window sizes, each worker holding its input and output)
    // tripled a push's peak RSS; 512 KiB jobs (zstd's least) keep it near the gzip path's.
    encoder.set_parameter(zstd::stream::raw::CParameter::JobSize(ZSTD_JOB))?;
    Ok(encoder)
}

/// The input one zstd worker compresses at a time.
const ZSTD_JOB: u32 = 512 << 10;

/// One zstd worker per core, as the gzip pool has.
fn zstd_workers() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

/// Inflates a compressed layer only to hash its tar: its diffID.
pub(super) enum Inflater {
    Gzip(Box<flate2::write::MultiGzDecoder<HashWriter>>),
    Zstd(Box<zstd::stream::write::Decoder<'static, HashWriter>>),
}

impl Inflater {
    /// The inflater for a compressed encoding; `None` for a plain tar.
    pub(super) fn new(encoding: LayerEncoding) -> io::Result<Option<Inflater>> {
        Ok(match encoding {
            LayerEncoding::Tar => None,
            LayerEncoding::Gzip => Some(Inflater::Gzip(Box::new(
                flate2::write::MultiGzDecoder::new(HashWriter::default()),
            ))),
            LayerEncoding::Zstd => Some(Inflater::Zstd(Box::new(
                zstd::stream::write::Decoder::new(HashWriter::default())?,
            ))),
        })
    }

    /// Bytes inflated so far.
    pub(super) fn inflated(&self) -> u64 {
        match self {
            Inflater::Gzip(d) => d.get_ref().0.len(),
            Inflater::Zstd(d) => d.get_ref().0.len(),
        }
    }

    pub(super) fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        match self {
            Inflater::Gzip(d) => d.write_all(chunk),
            Inflater::Zstd(d) => d.write_all(chunk),
        }
    }

    /// The digest of everything inflated.
    pub(super) fn finish(self) -> io::Result<Digest> {
        match self {
            Inflater::Gzip(d) => Ok(d.finish()?.0.finish()),
            Inflater::Zstd(mut d) => {
                d.flush()?;
                Ok(d.into_inner().0.finish())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Compresses `data` in uneven pieces, as the walk hands them over.
    fn zstd_of(data: &[u8], workers: u32) -> Vec<u8> {
        let mut e = zstd_encoder(3, workers).unwrap();
        let mut out = Vec::new();
        for piece in data.chunks(100_003) {
            e.write_all(piece).unwrap();
            out.append(e.get_mut());
        }
        out.extend(e.finish().unwrap());
        out
    }

    #[test]
    fn zstd_output_does_not_depend_on_the_workers() {
        // Enough for several zstd jobs (a job is a few MiB at level 3), half repetitive.
        let data: Vec<u8> = (0..24u32 << 20)
            .map(|i| {
                if i % 3 == 0 {
                    (i.wrapping_mul(2654435761) >> 24) as u8
                } else {
                    (i >> 10) as u8
                }
            })
            .collect();
        let one = zstd_of(&data, 1);
        assert_eq!(zstd::decode_all(&one[..]).unwrap(), data);
        for workers in [2, 3, 8] {
            assert!(
                zstd_of(&data, workers) == one,
                "{workers} workers wrote other bytes"
            );
        }
        assert!(zstd_of(&data, 2) == one, "a second run wrote other bytes");
    }
}
