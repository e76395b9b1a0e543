//! Layer codecs, pure CPU: what a blob's bytes are (sniffed from its first bytes), what an
//! uncompressed layer becomes on the way (`LayerTransform`), and `LayerCodec`, which hashes
//! what the archive holds, inflates a compressed layer to find its diffID where asked, and
//! compresses and hashes the output. Knows nothing of archives, registries or threads.

mod deflate;
#[cfg(feature = "isal")]
mod isal;
mod layer;
mod pgzip;

use serde::{Deserialize, Serialize};

pub use layer::{CodecError, Digests, LayerCodec};
pub use pgzip::ParallelGzip;

use crate::oci::LayerEncoding;

/// What a push does with uncompressed layers (legacy `docker save`, Docker 25+, podman): the
/// user's choice, per push or in the config.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LayerCompression {
    /// gzip them on the way (what `docker push` does); docker schema 2 manifests.
    #[default]
    Gzip,
    /// zstd them on the way; OCI manifests.
    Zstd,
    /// push them as they are, with OCI media types (Quay refuses the docker tar type).
    Keep,
}

impl std::str::FromStr for LayerCompression {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "gzip" => Ok(Self::Gzip),
            "zstd" => Ok(Self::Zstd),
            "keep" => Ok(Self::Keep),
            other => Err(format!(
                "layer_compression must be gzip, zstd or keep, not {other:?}"
            )),
        }
    }
}

impl LayerCompression {
    /// The transform for an uncompressed layer at the configured levels.
    pub fn transform(self, gzip_level: u32, zstd_level: i32) -> LayerTransform {
        match self {
            LayerCompression::Gzip => LayerTransform::Gzip(gzip_level),
            LayerCompression::Zstd => LayerTransform::Zstd(zstd_level),
            LayerCompression::Keep => LayerTransform::Keep,
        }
    }
}

/// What is done to one blob's bytes on the way, with the level: part of the identity of the
/// output (same input + same transform = same bytes, so the same digest).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LayerTransform {
    /// Sent byte-exact.
    Keep,
    Gzip(u32),
    Zstd(i32),
}

impl LayerTransform {
    /// The encoding of what comes out, for a blob that went in as `input`.
    pub fn output(self, input: LayerEncoding) -> LayerEncoding {
        match self {
            LayerTransform::Keep => input,
            LayerTransform::Gzip(_) => LayerEncoding::Gzip,
            LayerTransform::Zstd(_) => LayerEncoding::Zstd,
        }
    }
}

/// What a blob's first bytes say it is: a layer in one of its encodings, or `None` for
/// anything else (passed through as it is).
pub fn sniff(head: &[u8]) -> Option<LayerEncoding> {
    if head.starts_with(&GZIP_MAGIC) {
        Some(LayerEncoding::Gzip)
    } else if head.starts_with(&ZSTD_MAGIC) {
        Some(LayerEncoding::Zstd)
    } else if looks_like_tar(head) {
        Some(LayerEncoding::Tar)
    } else {
        None
    }
}

pub const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
pub const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// The start of a tar stream: the ustar magic, or a zero block as an empty layer starts.
fn looks_like_tar(head: &[u8]) -> bool {
    (head.len() >= 263 && &head[257..262] == b"ustar")
        || (head.len() >= 512 && head[..512].iter().all(|&b| b == 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffing() {
        let mut tar = vec![0u8; 512];
        assert_eq!(sniff(&tar), Some(LayerEncoding::Tar));
        tar[0] = b'a';
        assert_eq!(sniff(&tar), None);
        tar[257..262].copy_from_slice(b"ustar");
        assert_eq!(sniff(&tar), Some(LayerEncoding::Tar));
        assert_eq!(sniff(&[0x1f, 0x8b, 8]), Some(LayerEncoding::Gzip));
        assert_eq!(sniff(&ZSTD_MAGIC), Some(LayerEncoding::Zstd));
        assert_eq!(sniff(b"{}"), None);
    }

    #[test]
    fn transforms_name_their_output() {
        assert_eq!(
            LayerTransform::Keep.output(LayerEncoding::Zstd),
            LayerEncoding::Zstd
        );
        assert_eq!(
            LayerTransform::Gzip(1).output(LayerEncoding::Tar),
            LayerEncoding::Gzip
        );
        assert_eq!(
            LayerCompression::Zstd.transform(1, 3),
            LayerTransform::Zstd(3)
        );
    }
}
