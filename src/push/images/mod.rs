//! The end of the pass: read the archive's metadata, resolve every image it holds into a tree
//! of manifests and blobs, and verify all of it (digests, sizes, diffIDs, completeness) before
//! anything is published. Manifests are kept byte-exact unless a layer changed.

mod docker;
mod oci;

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;

use super::PushError;
use super::ingest::{FileRec, Ingested};
use crate::archive::layout::{self, Descriptor};
use crate::archive::{ArchiveError, paths};
use crate::config::LayerCompression;
use crate::digest::Digest;
use crate::registry::Registry;

/// One image (or index) to publish, with the names the archive gives it.
#[derive(Debug)]
pub struct Plan {
    pub label: String,
    pub names: Vec<String>,
    /// Names from OCI `org.opencontainers.image.ref.name` (may be bare tags).
    pub ref_names: Vec<String>,
    pub root: Node,
}

/// A manifest or index and what it needs in the registry first.
#[derive(Debug)]
pub struct Node {
    pub digest: Digest,
    pub media_type: String,
    pub bytes: Bytes,
    pub rewritten: bool,
    pub platform: Option<String>,
    pub children: Vec<Node>,
    pub blobs: Vec<BlobUse>,
}

/// A blob a manifest references, as it will be in the registry.
#[derive(Debug, Clone)]
pub struct BlobUse {
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
    pub source: Source,
}

#[derive(Debug, Clone)]
pub enum Source {
    /// From the archive.
    Archive(FileRec),
    /// Not in the archive; the registry already has it in the upload repository.
    Registry,
    /// A foreign layer (`urls`) that is neither in the archive nor expected in the registry.
    Foreign,
}

/// The archive as a file system: paths under the layout's root, links followed.
struct View<'a> {
    ing: &'a Ingested,
    root: String,
}

impl View<'_> {
    fn join(&self, rel: &str) -> Result<String, String> {
        let rel =
            paths::normalize(rel.as_bytes(), 4096).map_err(|r| format!("path {rel:?}: {r}"))?;
        Ok(if self.root.is_empty() {
            rel
        } else {
            format!("{}/{rel}", self.root)
        })
    }

    /// Follows links (at most 16 hops, no cycles) to a file.
    fn get(&self, path: &str) -> Result<Option<(String, &FileRec)>, PushError> {
        let mut cur = path.to_string();
        let mut seen = HashSet::new();
        loop {
            if let Some(rec) = self.ing.files.get(&cur) {
                return Ok(Some((cur, rec)));
            }
            let Some(next) = self.ing.links.get(&cur) else {
                if cur != path {
                    return Err(ArchiveError::Link {
                        path: path.into(),
                        target: cur,
                        reason: "it points to nothing",
                    }
                    .into());
                }
                return Ok(None);
            };
            if !seen.insert(cur.clone()) || seen.len() > 16 {
                return Err(ArchiveError::Link {
                    path: path.into(),
                    target: next.clone(),
                    reason: "links form a cycle",
                }
                .into());
            }
            cur = next.clone();
        }
    }

    fn blob(&self, d: &Digest) -> Result<Option<(String, &FileRec)>, PushError> {
        let path = self
            .join(&format!("blobs/{}/{}", d.algorithm(), d.hex()))
            .expect("digest paths are clean");
        self.get(&path)
    }

    fn memory(&self, path: &str) -> Option<&Bytes> {
        match self.ing.files.get(path) {
            Some(FileRec::Memory { bytes, .. }) => Some(bytes),
            _ => None,
        }
    }
}

/// Finds the layout root: the top, or the one folder holding `index.json`/`manifest.json`.
fn find_root(ing: &Ingested) -> Result<String, PushError> {
    let is_meta = |p: &str| p == "index.json" || p == "manifest.json";
    if ing.files.keys().any(|p| is_meta(p)) {
        return Ok(String::new());
    }
    let mut roots: Vec<&str> = ing
        .files
        .keys()
        .filter_map(|p| {
            p.split_once('/')
                .filter(|(_, rest)| is_meta(rest))
                .map(|(dir, _)| dir)
        })
        .collect();
    roots.sort();
    roots.dedup();
    match roots.as_slice() {
        [one] => Ok(one.to_string()),
        [] => Err(ArchiveError::NoImages.into()),
        _ => Err(PushError::manifest(
            "archive",
            "several folders hold an image layout",
        )),
    }
}

/// Everything resolution needs besides the archive.
pub struct Resolver<'a> {
    pub registry: &'a Arc<Registry>,
    pub upload_repo: &'a str,
    pub metadata_limit: u64,
}

impl Resolver<'_> {
    /// Resolves and verifies every image in the archive.
    pub async fn plans(&self, ing: &Ingested) -> Result<Vec<Plan>, PushError> {
        let root = find_root(ing)?;
        let view = View { ing, root };
        let manifest_json = view
            .join("manifest.json")
            .ok()
            .filter(|p| ing.files.contains_key(p));
        let index_json = view
            .join("index.json")
            .ok()
            .filter(|p| ing.files.contains_key(p));
        match (manifest_json, index_json) {
            (Some(m), idx) => self.docker_plans(&view, &m, idx.as_deref()).await,
            (None, Some(i)) => self.oci_plans(&view, &i).await,
            (None, None) => Err(ArchiveError::NoImages.into()),
        }
    }

    fn metadata<'v>(&self, view: &'v View, path: &str) -> Result<&'v Bytes, PushError> {
        match view.get(path)? {
            Some((_, FileRec::Memory { bytes, .. })) => Ok(bytes),
            Some((p, FileRec::Streamed(_))) => Err(ArchiveError::MetadataTooLarge {
                path: p,
                limit: self.metadata_limit,
            }
            .into()),
            Some((p, FileRec::Skipped)) => Err(PushError::manifest(&p, "is not a JSON document")),
            None => Err(PushError::manifest(
                path,
                "is referenced but not in the archive",
            )),
        }
    }
}

fn verify_bytes(path: &str, bytes: &[u8], d: &Descriptor) -> Result<(), PushError> {
    let actual = Digest::sha256_of(bytes);
    if actual != d.digest || bytes.len() as u64 != d.size {
        return Err(PushError::DigestMismatch {
            what: format!("blob {path}"),
            expected: format!("{} ({} bytes)", d.digest, d.size),
            actual: format!("{actual} ({} bytes)", bytes.len()),
        });
    }
    Ok(())
}

fn leaf(digest: Digest, media_type: String, bytes: Bytes, rewritten: bool) -> Node {
    Node {
        digest,
        media_type,
        bytes,
        rewritten,
        platform: None,
        children: Vec::new(),
        blobs: Vec::new(),
    }
}

/// `<hex>.json` (legacy config names) or `blobs/sha256/<hex>`: the digest a name promises.
fn named_by(path: &str) -> Option<Digest> {
    if let Some(d) = super::ingest::digest_from_path(path) {
        return Some(d);
    }
    let base = path.rsplit('/').next()?;
    let hex = base.strip_suffix(".json")?;
    Digest::from_parts("sha256", hex).ok()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comp {
    None,
    Gzip,
    Zstd,
}

fn layer_compression(done: &super::blob::Done) -> Comp {
    match (done.recompressed, done.kind) {
        (Some(LayerCompression::Zstd), _) => Comp::Zstd,
        (Some(_), _) => Comp::Gzip,
        (None, super::blob::Kind::Gzip) => Comp::Gzip,
        (None, super::blob::Kind::Zstd) => Comp::Zstd,
        (None, _) => Comp::None,
    }
}

fn layer_media_type(c: Comp, docker: bool) -> String {
    match (c, docker) {
        (Comp::Gzip, true) => layout::DOCKER_LAYER_GZIP,
        (Comp::Gzip, false) => layout::OCI_LAYER_GZIP,
        (Comp::Zstd, _) => layout::OCI_LAYER_ZSTD,
        // Quay refuses the docker tar type; the OCI one is accepted everywhere.
        (Comp::None, _) => layout::OCI_LAYER,
    }
    .to_string()
}

fn layer_use(done: &super::blob::Done, media_type: String) -> BlobUse {
    BlobUse {
        digest: done.pushed_digest.clone(),
        size: done.pushed_size,
        media_type,
        source: Source::Archive(FileRec::Streamed(done.clone())),
    }
}
