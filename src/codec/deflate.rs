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
            LayerTransform::Zstd(level) => Some(Encoder::Zstd(zstd::stream::write::Encoder::new(
                Vec::new(),
                level,
            )?)),
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
