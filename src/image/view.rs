//! The archive as a file system: paths under the layout's root, links followed, metadata
//! read from memory.

use std::collections::HashSet;

use bytes::Bytes;

use super::{ArchiveFiles, File, ImageError};
use crate::archive::{ArchiveError, paths};
use crate::oci::{Descriptor, Digest};

/// Links followed in a row before giving up.
const MAX_HOPS: usize = 16;

pub(super) struct View<'a> {
    archive: &'a ArchiveFiles,
    /// The folder holding the layout ("" for the top).
    root: String,
    metadata_limit: u64,
    /// References resolution may still follow.
    references: std::cell::Cell<usize>,
    max_references: usize,
}

impl<'a> View<'a> {
    pub(super) fn new(
        archive: &'a ArchiveFiles,
        metadata_limit: u64,
        max_references: usize,
    ) -> Result<View<'a>, ImageError> {
        Ok(View {
            archive,
            root: find_root(archive)?,
            metadata_limit,
            references: std::cell::Cell::new(max_references),
            max_references,
        })
    }

    /// Counts one reference followed against the budget.
    pub(super) fn spend(&self, at: &str) -> Result<(), ImageError> {
        let left = self.references.get();
        if left == 0 {
            return Err(ImageError::TooManyReferences {
                limit: self.max_references,
                at: at.chars().take(300).collect(),
            });
        }
        self.references.set(left - 1);
        Ok(())
    }

    /// A path relative to the layout root, normalised.
    pub(super) fn join(&self, rel: &str) -> Result<String, String> {
        let rel = paths::normalize(rel.as_bytes(), usize::MAX)
            .map_err(|r| format!("path {:?}: {r}", rel.chars().take(300).collect::<String>()))?;
        Ok(if self.root.is_empty() {
            rel
        } else {
            format!("{}/{rel}", self.root)
        })
    }

    /// `name` under the root, when the archive has it.
    pub(super) fn existing(&self, name: &str) -> Option<String> {
        self.join(name)
            .ok()
            .filter(|p| self.archive.files.contains_key(p))
    }

    /// Follows links (a few hops, no cycles) to a file.
    pub(super) fn get(&self, path: &str) -> Result<Option<(String, &'a File)>, ImageError> {
        let mut cur = path.to_string();
        let mut seen = HashSet::new();
        loop {
            if let Some(file) = self.archive.files.get(&cur) {
                return Ok(Some((cur, file)));
            }
            let Some(next) = self.archive.links.get(&cur) else {
                if cur != path {
                    return Err(link_error(path, cur, "it points to nothing"));
                }
                return Ok(None);
            };
            if !seen.insert(cur.clone()) || seen.len() > MAX_HOPS {
                return Err(link_error(path, next.clone(), "links form a cycle"));
            }
            cur = next.clone();
        }
    }

    /// `blobs/<alg>/<hex>` under the root.
    pub(super) fn blob(&self, d: &Digest) -> Result<Option<(String, &'a File)>, ImageError> {
        let path = self
            .join(&format!("blobs/{}/{}", d.algorithm(), d.hex()))
            .expect("digest paths are clean");
        self.get(&path)
    }

    /// A file kept in memory, without following links.
    pub(super) fn memory(&self, path: &str) -> Option<&'a Bytes> {
        match self.archive.files.get(path) {
            Some(File::Memory { bytes, .. }) => Some(bytes),
            _ => None,
        }
    }

    /// A metadata document the layout names: it must be in memory.
    pub(super) fn metadata(&self, path: &str) -> Result<&'a Bytes, ImageError> {
        match self.get(path)? {
            Some((_, File::Memory { bytes, .. })) => Ok(bytes),
            Some((p, File::Streamed(_))) => Err(self.too_large(p)),
            Some((p, File::Skipped)) => Err(ImageError::manifest(&p, "is not a JSON document")),
            None => Err(ImageError::manifest(
                path,
                "is referenced but not in the archive",
            )),
        }
    }

    /// A document that was streamed because it is larger than the metadata limit.
    pub(super) fn too_large(&self, path: String) -> ImageError {
        ArchiveError::MetadataTooLarge {
            path,
            limit: self.metadata_limit,
        }
        .into()
    }
}

fn link_error(path: &str, target: String, reason: &'static str) -> ImageError {
    ArchiveError::Link {
        path: path.into(),
        target,
        reason,
    }
    .into()
}

/// Finds the layout root: the top, or the one folder holding `index.json`/`manifest.json`.
fn find_root(archive: &ArchiveFiles) -> Result<String, ImageError> {
    let is_meta = |p: &str| p == "index.json" || p == "manifest.json";
    if archive.files.keys().any(|p| is_meta(p)) {
        return Ok(String::new());
    }
    let mut roots: Vec<&str> = archive
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
        _ => Err(ImageError::manifest(
            "archive",
            "several folders hold an image layout",
        )),
    }
}

/// In-memory bytes against the descriptor that names them.
pub(super) fn verify_bytes(path: &str, bytes: &[u8], d: &Descriptor) -> Result<(), ImageError> {
    let actual = Digest::sha256_of(bytes);
    if actual != d.digest || bytes.len() as u64 != d.size {
        return Err(ImageError::DigestMismatch {
            what: format!("blob {path}"),
            expected: format!("{} ({} bytes)", d.digest, d.size),
            actual: format!("{actual} ({} bytes)", bytes.len()),
        });
    }
    Ok(())
}
