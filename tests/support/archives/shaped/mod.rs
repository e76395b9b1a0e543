//! Image archives built in code, entry for entry as each tool writes them
//! (`reference/peer-tools.md` §5, `reference/registry-protocol.md` §6.1): legacy `docker save`
//! (Docker ≤ 24), podman/skopeo `docker-archive:`, Docker 25+ `docker save` (OCI layout plus
//! `manifest.json`), containerd/buildkit OCI layouts (plain, `./`-prefixed, one leading folder),
//! a nested multi-platform OCI index, and a two-image `docker save`.
//!
//! Everything is deterministic (fixed mtimes, seeded noise), small, and each builder returns the
//! archive bytes with the facts a test checks against: config digests, diffIDs, blob digests,
//! manifest/index digests where the archive has one, and the names the images carry.
//!
//! One module per form: [`legacy`], [`podman`], [`docker25`], [`oci`] (the three layout
//! shapes), [`multi`] (multi-platform); [`documents`] holds the JSON they share and [`tree`]
//! the byte-exact tar writing. Here: the layers, the facts and the entry readers every form and
//! test uses.
mod docker25;
mod documents;
mod legacy;
mod multi;
mod oci;
mod podman;
mod tree;

pub use docker25::docker25;
pub use legacy::{DupLink, LegacySpec, legacy, legacy_archive, legacy_multi};
pub use multi::oci_multi_platform;
pub use oci::{OciShape, oci_layout};
pub use podman::podman;

use super::{gzip, noise, zstd};
use crate::support::sha256;

/// Fixed mtime for every entry, so the same builder always yields the same bytes.
const MTIME: u64 = 1_700_000_000;

/// A filesystem layer: its uncompressed tar and diffID.
#[derive(Clone, Debug)]
pub struct Layer {
    pub tar: Vec<u8>,
    pub diff_id: String,
}

impl Layer {
    /// A layer holding `files` (paths relative to the root, without leading `/`) under the
    /// directories they need.
    pub fn new(files: &[(&str, Vec<u8>)]) -> Layer {
        let mut b = tar::Builder::new(Vec::new());
        let mut dirs_done: Vec<String> = Vec::new();
        for (path, data) in files {
            let parts: Vec<&str> = path.split('/').collect();
            for i in 1..parts.len() {
                let dir = format!("{}/", parts[..i].join("/"));
                if !dirs_done.contains(&dir) {
                    let mut h = tar::Header::new_ustar();
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_mode(0o755);
                    h.set_mtime(MTIME);
                    h.set_size(0);
                    b.append_data(&mut h, &dir, std::io::empty()).unwrap();
                    dirs_done.push(dir);
                }
            }
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
            h.set_mtime(MTIME);
            h.set_size(data.len() as u64);
            b.append_data(&mut h, path, data.as_slice()).unwrap();
        }
        let tar = b.into_inner().unwrap();
        let diff_id = sha256(&tar);
        Layer { tar, diff_id }
    }

    /// A few small text files (some KB) named after `label`.
    pub fn small(label: &str) -> Layer {
        let text: String = (0..120).map(|i| format!("{label} line {i}\n")).collect();
        Layer::new(&[
            (
                &format!("hoist/{label}/README"),
                format!("layer {label}\n").into_bytes(),
            ),
            (&format!("hoist/{label}/lines.txt"), text.into_bytes()),
            (
                &format!("hoist/{label}/data.bin"),
                noise(label.len() as u64 * 31 + 7, 3000),
            ),
        ])
    }

    /// One layer with an incompressible file of `bytes` bytes.
    pub fn big(label: &str, bytes: usize) -> Layer {
        Layer::new(&[
            (
                &format!("hoist/{label}/big.bin"),
                noise(0xB16 + bytes as u64, bytes),
            ),
            (&format!("hoist/{label}/note"), b"big layer\n".to_vec()),
        ])
    }
}

/// What a test needs to know about one image of an archive.
#[derive(Clone, Debug)]
pub struct ImageFacts {
    /// Repository the image lands in when pushed to `/push` (registry host dropped).
    pub repository: String,
    /// Tag it carries in the archive.
    pub tag: String,
    /// The name exactly as written in the archive (`RepoTags`, annotation).
    pub archive_name: String,
    pub config: Vec<u8>,
    pub config_digest: String,
    pub diff_ids: Vec<String>,
    /// Digests of the layer blobs as stored in the archive (== diffIDs when uncompressed).
    pub layer_digests: Vec<String>,
    /// Digest of the image manifest in the archive, for forms that have one.
    pub manifest_digest: Option<String>,
    /// `os/arch` for children of a multi-platform index.
    pub platform: Option<String>,
}

/// The index of a multi-platform archive.
#[derive(Clone, Debug)]
pub struct IndexFacts {
    pub repository: String,
    pub tag: String,
    pub digest: String,
    pub bytes: Vec<u8>,
}

/// An archive and its facts.
#[derive(Clone, Debug)]
pub struct Built {
    pub bytes: Vec<u8>,
    pub images: Vec<ImageFacts>,
    pub index: Option<IndexFacts>,
}

impl Built {
    /// The archive, gzip-compressed as a whole (`docker save | gzip`).
    pub fn gzipped(&self) -> Vec<u8> {
        gzip(&self.bytes)
    }

    /// The archive, zstd-compressed as a whole.
    pub fn zstded(&self) -> Vec<u8> {
        zstd(&self.bytes)
    }

    /// Entry names in archive order with their type flag (for structure checks).
    pub fn entries(&self) -> Vec<(String, char, String)> {
        list_entries(&self.bytes)
    }
}

/// `(name, typeflag, linkname)` of every entry, in order, names exactly as stored.
pub fn list_entries(bytes: &[u8]) -> Vec<(String, char, String)> {
    let mut a = tar::Archive::new(bytes);
    a.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let h = e.header();
            let name = String::from_utf8(e.path_bytes().to_vec()).unwrap();
            let link = h
                .link_name_bytes()
                .map(|l| String::from_utf8(l.to_vec()).unwrap())
                .unwrap_or_default();
            (name, h.entry_type().as_byte() as char, link)
        })
        .collect()
}

/// The bytes of one regular entry.
pub fn entry_bytes(bytes: &[u8], name: &str) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut a = tar::Archive::new(bytes);
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path_bytes().as_ref() == name.as_bytes() {
            let mut v = Vec::new();
            e.read_to_end(&mut v).unwrap();
            return Some(v);
        }
    }
    None
}

/// Splits `host/repo:tag` into the repository hoist lands it in (host dropped the docker way:
/// a first component with `.` or `:` or equal to `localhost`) and the tag.
pub fn landing(name: &str) -> (String, String) {
    let (repo, tag) = name.rsplit_once(':').expect("name with tag");
    let repo = match repo.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            rest
        }
        _ => repo,
    };
    (repo.to_string(), tag.to_string())
}

/// The facts of the image `name` with `config` and `layers`, its blobs stored as
/// `layer_digests`.
fn facts(
    name: &str,
    config: Vec<u8>,
    layers: &[&Layer],
    layer_digests: Vec<String>,
    manifest_digest: Option<String>,
    platform: Option<&str>,
) -> ImageFacts {
    let (repository, tag) = landing(name);
    ImageFacts {
        repository,
        tag,
        archive_name: name.to_string(),
        config_digest: sha256(&config),
        config,
        diff_ids: layers.iter().map(|l| l.diff_id.clone()).collect(),
        layer_digests,
        manifest_digest,
        platform: platform.map(String::from),
    }
}
