//! Resolving an archive into images: read its metadata (docker `manifest.json` or OCI
//! `index.json`), build each image's tree of manifests and blobs, and verify all of it
//! (digests, sizes, diffIDs, completeness) before anything is published. Manifests are kept
//! byte-exact unless a layer changed. Pure: no I/O. A blob the archive leaves out is marked
//! `BlobSource::Registry`; the caller checks that the registry has it.

mod docker;
mod error;
mod oci;
mod platforms;
mod view;

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

pub use error::ImageError;
pub use platforms::select as select_platforms;

use crate::archive::ArchiveError;
use crate::oci::{Digest, LayerEncoding};
use view::View;

/// What the single pass over the archive found: every file, and every link.
#[derive(Debug, Default, Clone)]
pub struct ArchiveFiles {
    pub files: HashMap<String, File>,
    /// Link path → target path (already resolved against the link's directory).
    pub links: HashMap<String, String>,
}

/// One file of the archive, as the end of the pass knows it.
#[derive(Debug, Clone)]
pub enum File {
    /// Kept in memory: its bytes and sha256.
    Memory { bytes: Bytes, digest: Digest },
    /// Streamed to the registry as it went by.
    Streamed(StreamedBlob),
    /// Read and dropped (legacy `<id>/json`, `<id>/VERSION`).
    Skipped,
}

/// A blob streamed to the registry, with what hashing it found.
#[derive(Debug, Clone)]
pub struct StreamedBlob {
    pub path: String,
    /// Digest and size of the bytes as the archive holds them.
    pub raw: Digest,
    pub raw_size: u64,
    /// The uncompressed tar's digest, where known.
    pub diff_id: Option<Digest>,
    /// Digest and size of what the registry holds (differ from `raw` when recompressed).
    pub pushed: Digest,
    pub pushed_size: u64,
    /// The layer encoding of what the registry holds; `None`: not a layer.
    pub encoding: Option<LayerEncoding>,
    /// hoist compressed it on the way.
    pub recompressed: bool,
}

/// One image (or index) to publish, with the names the archive gives it.
#[derive(Debug)]
pub struct Image {
    pub label: String,
    /// Names from docker `RepoTags` or `io.containerd.image.name`.
    pub names: Vec<String>,
    /// Names from OCI `org.opencontainers.image.ref.name` (may be bare tags).
    pub ref_names: Vec<String>,
    pub root: Arc<Node>,
}

/// A manifest or index and what it needs in the registry first.
#[derive(Debug)]
pub struct Node {
    pub digest: Digest,
    pub media_type: String,
    pub bytes: Bytes,
    pub rewritten: bool,
    /// An index's manifests. A manifest listed several times is resolved once and shared.
    pub children: Vec<Child>,
    pub blobs: Vec<BlobRef>,
}

/// One entry of an index: the node, and the platform its descriptor names.
#[derive(Debug, Clone)]
pub struct Child {
    pub node: Arc<Node>,
    pub platform: Option<String>,
}

impl Node {
    fn leaf(digest: Digest, media_type: String, bytes: Bytes, rewritten: bool) -> Node {
        Node {
            digest,
            media_type,
            bytes,
            rewritten,
            children: Vec::new(),
            blobs: Vec::new(),
        }
    }
}

/// A blob a manifest references, as it will be in the registry.
#[derive(Debug, Clone)]
pub struct BlobRef {
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
    pub source: BlobSource,
}

/// Where a referenced blob's bytes are.
#[derive(Debug, Clone)]
pub enum BlobSource {
    /// In the archive.
    Archive(File),
    /// Not in the archive: the registry must already have it in the upload repository.
    Registry { by: String },
    /// A foreign layer (`urls`): neither in the archive nor expected in the registry.
    Foreign,
}

impl BlobRef {
    /// A blob held in memory (a config).
    fn memory(bytes: Bytes, digest: Digest, media_type: String) -> BlobRef {
        BlobRef {
            size: bytes.len() as u64,
            digest: digest.clone(),
            media_type,
            source: BlobSource::Archive(File::Memory { bytes, digest }),
        }
    }

    /// A streamed layer as the registry holds it.
    fn layer(blob: &StreamedBlob, media_type: String) -> BlobRef {
        BlobRef {
            digest: blob.pushed.clone(),
            size: blob.pushed_size,
            media_type,
            source: BlobSource::Archive(File::Streamed(blob.clone())),
        }
    }
}

/// Resolves and verifies every image in the archive, following at most `max_references`
/// descriptors (each manifest, index, config and layer reference counts, a shared one each
/// time it is listed, though it is resolved once).
pub fn resolve(
    archive: &ArchiveFiles,
    metadata_limit: u64,
    max_references: usize,
) -> Result<Vec<Image>, ImageError> {
    let view = View::new(archive, metadata_limit, max_references)?;
    let manifest_json = view.existing("manifest.json");
    let index_json = view.existing("index.json");
    match (manifest_json, index_json) {
        (Some(m), index) => docker::images(&view, &m, index.as_deref()),
        (None, Some(i)) => oci::images(&view, &i),
        (None, None) => Err(ArchiveError::NoImages.into()),
    }
}
