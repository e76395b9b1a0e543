//! `LayerCodec`: one blob's bytes in, in order; what to send out, in order; and at the end
//! the digests of both sides (and of the uncompressed tar, where known).

use bytes::Bytes;

use super::LayerTransform;
use super::deflate::{Encoder, Inflater};
use crate::oci::{Digest, LayerEncoding, Sha256};

/// Inflating a layer past this many bytes brings the ratio check in.
const BOMB_FLOOR: u64 = 64 << 20;

/// Why a blob's bytes could not be processed.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The compressed data does not decode.
    #[error("layer data is corrupt: {0}")]
    Corrupt(#[from] std::io::Error),
    /// A layer inflated (to hash its diffID) past `max_ratio`: a likely bomb.
    #[error("layer inflates at more than {ratio}:1")]
    Bomb { ratio: u64 },
}

/// The digests of a processed blob.
#[derive(Debug, Clone)]
pub struct Digests {
    /// What the archive holds.
    pub input: Digest,
    pub input_size: u64,
    /// The uncompressed tar's digest, where known: always for a tar, for a compressed layer
    /// only when it was inflated to check it.
    pub diff_id: Option<Digest>,
    /// What was sent (the input itself when nothing was transformed).
    pub output: Digest,
    pub output_size: u64,
}

/// Processes one blob: a synchronous state machine, driven by the caller's thread.
pub struct LayerCodec {
    encoding: Option<LayerEncoding>,
    input: Sha256,
    inflater: Option<Inflater>,
    encoder: Option<Encoder>,
    output: Option<Sha256>,
    max_ratio: u64,
}

impl LayerCodec {
    /// `encoding` is what the blob is (`None`: not a layer); `transform` applies to a tar;
    /// `find_diff_id` inflates a compressed layer to hash it, stopped past `max_ratio`.
    pub fn new(
        encoding: Option<LayerEncoding>,
        transform: LayerTransform,
        find_diff_id: bool,
        max_ratio: u64,
    ) -> Result<LayerCodec, CodecError> {
        let transform = match encoding {
            Some(LayerEncoding::Tar) => transform,
            _ => LayerTransform::Keep,
        };
        let inflater = match encoding {
            Some(e) if find_diff_id => Inflater::new(e)?,
            _ => None,
        };
        Ok(LayerCodec {
            encoding,
            input: Sha256::new(),
            inflater,
            encoder: Encoder::new(transform)?,
            output: (transform != LayerTransform::Keep).then(Sha256::new),
            max_ratio,
        })
    }

    /// Takes the next input bytes; returns the output that is ready, in order.
    pub fn push(&mut self, chunk: Bytes) -> Result<Vec<Bytes>, CodecError> {
        self.input.update(&chunk);
        if let Some(inflater) = self.inflater.as_mut() {
            inflater.write(&chunk)?;
            // A layer is inflated only to hash it, but a bomb would still burn CPU for hours.
            let inflated = inflater.inflated();
            if inflated > BOMB_FLOOR && inflated / self.input.len().max(1) > self.max_ratio {
                return Err(CodecError::Bomb {
                    ratio: self.max_ratio,
                });
            }
        }
        let Some(encoder) = self.encoder.as_mut() else {
            return Ok(vec![chunk]);
        };
        let produced = encoder.push(&chunk)?;
        Ok(self.hash_output(produced))
    }

    /// Ends the input; returns the last output and every digest.
    pub fn finish(mut self) -> Result<(Vec<Bytes>, Digests), CodecError> {
        let last = match self.encoder.take() {
            Some(encoder) => {
                let produced = encoder.finish()?;
                self.hash_output(produced)
            }
            None => Vec::new(),
        };
        let diff_id = match (self.encoding, self.inflater) {
            (Some(LayerEncoding::Tar), _) => Some(self.input.clone().finish()),
            (_, Some(inflater)) => Some(inflater.finish()?),
            _ => None,
        };
        let input_size = self.input.len();
        let input = self.input.finish();
        let (output, output_size) = match self.output {
            Some(h) => (h.clone().finish(), h.len()),
            None => (input.clone(), input_size),
        };
        let digests = Digests {
            input,
            input_size,
            diff_id,
            output,
            output_size,
        };
        Ok((last, digests))
    }

    fn hash_output(&mut self, produced: Vec<Bytes>) -> Vec<Bytes> {
        let hasher = self.output.as_mut().expect("an encoder hashes its output");
        produced
            .into_iter()
            .filter(|b| !b.is_empty())
            .inspect(|b| hasher.update(b))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn run(data: &[u8], enc: LayerEncoding, t: LayerTransform, diff: bool) -> (Digests, Vec<u8>) {
        let mut codec = LayerCodec::new(Some(enc), t, diff, 200).unwrap();
        let mut out = Vec::new();
        for c in data.chunks(10_000) {
            for b in codec.push(Bytes::copy_from_slice(c)).unwrap() {
                out.extend_from_slice(&b);
            }
        }
        let (last, digests) = codec.finish().unwrap();
        for b in last {
            out.extend_from_slice(&b);
        }
        (digests, out)
    }

    #[test]
    fn gzip_transform_hashes_input_and_output() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 13) as u8).collect();
        let (d, out) = run(&data, LayerEncoding::Tar, LayerTransform::Gzip(1), false);
        assert_eq!(d.input, Digest::sha256_of(&data));
        assert_eq!(d.diff_id, Some(Digest::sha256_of(&data)));
        assert_eq!(d.output, Digest::sha256_of(&out));
        assert_eq!(d.output_size, out.len() as u64);
        let mut back = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&out[..]), &mut back).unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn keep_is_byte_exact_and_finds_diff_id() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 31) as u8).collect();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&data).unwrap();
        let gz = gz.finish().unwrap();
        let (d, out) = run(&gz, LayerEncoding::Gzip, LayerTransform::Keep, true);
        assert_eq!(out, gz);
        assert_eq!(d.input, Digest::sha256_of(&gz));
        assert_eq!(d.output, d.input);
        assert_eq!(d.diff_id, Some(Digest::sha256_of(&data)));
        let z = zstd::encode_all(&data[..], 3).unwrap();
        let (d, _) = run(&z, LayerEncoding::Zstd, LayerTransform::Keep, true);
        assert_eq!(d.diff_id, Some(Digest::sha256_of(&data)));
    }

    #[test]
    fn a_compressed_layer_is_never_recompressed() {
        let z = zstd::encode_all(&b"abc"[..], 3).unwrap();
        let (d, out) = run(&z, LayerEncoding::Zstd, LayerTransform::Gzip(1), false);
        assert_eq!(out, z);
        assert_eq!(d.diff_id, None);
    }

    #[test]
    fn zstd_transform_round_trips() {
        let data: Vec<u8> = (0..150_000u32).map(|i| (i % 7) as u8).collect();
        let (d, out) = run(&data, LayerEncoding::Tar, LayerTransform::Zstd(3), false);
        assert_eq!(zstd::decode_all(&out[..]).unwrap(), data);
        assert_eq!(d.output, Digest::sha256_of(&out));
    }

    #[test]
    fn corrupt_and_bomb_layers_are_refused() {
        let mut codec =
            LayerCodec::new(Some(LayerEncoding::Gzip), LayerTransform::Keep, true, 200).unwrap();
        let bad = Bytes::from_static(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0xff]);
        assert!(matches!(codec.push(bad), Err(CodecError::Corrupt(_))));
        let zeros = vec![0u8; 80 << 20];
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&zeros).unwrap();
        let gz = gz.finish().unwrap();
        let mut codec =
            LayerCodec::new(Some(LayerEncoding::Gzip), LayerTransform::Keep, true, 10).unwrap();
        let r = gz
            .chunks(4096)
            .try_for_each(|c| codec.push(Bytes::copy_from_slice(c)).map(drop));
        assert!(matches!(r, Err(CodecError::Bomb { ratio: 10 })), "{r:?}");
    }
}
