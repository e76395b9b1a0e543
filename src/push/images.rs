//! The end of the pass: read the archive's metadata, resolve every image it holds into a tree
//! of manifests and blobs, and verify all of it (digests, sizes, diffIDs, completeness) before
//! anything is published. Manifests are kept byte-exact unless a layer changed.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Value, json};

use super::PushError;
use super::ingest::{FileRec, Ingested};
use crate::archive::layout::{self, Descriptor, DockerImage, Document, ImageConfig};
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
#[expect(clippy::large_enum_variant, reason = "a handful per image, built once")]
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

    async fn docker_plans(
        &self,
        view: &View<'_>,
        path: &str,
        index: Option<&str>,
    ) -> Result<Vec<Plan>, PushError> {
        let bytes = self.metadata(view, path)?;
        let images: Vec<DockerImage> =
            layout::strict_json(bytes).map_err(|e| PushError::manifest("manifest.json", e))?;
        if images.is_empty() {
            return Err(PushError::manifest("manifest.json", "lists no image"));
        }
        let originals = match index {
            Some(i) => self.oci_originals(view, i),
            None => Vec::new(),
        };
        let mut plans = Vec::new();
        for (n, img) in images.iter().enumerate() {
            let label = format!("manifest.json image {n}");
            let names = img.repo_tags.clone().unwrap_or_default();
            let root = self.docker_image(view, img, &label, &originals)?;
            plans.push(Plan {
                label,
                names,
                ref_names: Vec::new(),
                root,
            });
        }
        Ok(plans)
    }

    /// Docker 25+ keeps an OCI manifest per image beside manifest.json: (config digest, descriptor, bytes).
    fn oci_originals(&self, view: &View<'_>, index: &str) -> Vec<(Digest, Descriptor, Bytes)> {
        let Some(bytes) = view.memory(index) else {
            return Vec::new();
        };
        let Ok(Document::Index { manifests, .. }) = Document::parse(bytes, None) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for d in manifests {
            let Ok(Some((_, FileRec::Memory { bytes, digest }))) = view.blob(&d.digest) else {
                continue;
            };
            if digest != &d.digest {
                continue;
            }
            if let Ok(Document::Manifest { config, .. }) =
                Document::parse(bytes, d.media_type.as_deref())
            {
                out.push((config.digest.clone(), d.clone(), bytes.clone()));
            }
        }
        out
    }

    fn docker_image(
        &self,
        view: &View<'_>,
        img: &DockerImage,
        label: &str,
        originals: &[(Digest, Descriptor, Bytes)],
    ) -> Result<Node, PushError> {
        let config_path = view
            .join(&img.config)
            .map_err(|e| PushError::manifest("manifest.json", e))?;
        let config_bytes = self.metadata(view, &config_path)?.clone();
        let config_digest = Digest::sha256_of(&config_bytes);
        if let Some(named) = named_by(&config_path)
            && named != config_digest
        {
            return Err(PushError::DigestMismatch {
                what: format!("config {config_path}"),
                expected: named.to_string(),
                actual: config_digest.to_string(),
            });
        }
        let config: ImageConfig =
            layout::strict_json(&config_bytes).map_err(|e| PushError::manifest(&config_path, e))?;
        let diff_ids = &config.rootfs.diff_ids;
        if diff_ids.len() != img.layers.len() {
            return Err(PushError::manifest(
                &config_path,
                format!(
                    "lists {} diff_ids but manifest.json gives {} layers for {label}",
                    diff_ids.len(),
                    img.layers.len()
                ),
            ));
        }
        let mut layers = Vec::new();
        let mut changed = false;
        for (i, (layer, diff_id)) in img.layers.iter().zip(diff_ids).enumerate() {
            let p = view
                .join(layer)
                .map_err(|e| PushError::manifest("manifest.json", e))?;
            let (real, rec) = view.get(&p)?.ok_or_else(|| PushError::BlobMissing {
                digest: diff_id.to_string(),
                by: format!("manifest.json layer {i} ({layer})"),
            })?;
            let FileRec::Streamed(done) = rec else {
                return Err(PushError::manifest(
                    &real,
                    "is listed as a layer but is not a tar, gzip or zstd stream",
                ));
            };
            let found = done.diff_id.as_ref().ok_or_else(|| {
                PushError::manifest(
                    &real,
                    "is listed as a layer but is not a tar, gzip or zstd stream",
                )
            })?;
            if found != diff_id {
                return Err(PushError::DigestMismatch {
                    what: format!("layer {real} (diffID, rootfs.diff_ids[{i}])"),
                    expected: diff_id.to_string(),
                    actual: found.to_string(),
                });
            }
            changed |= done.recompressed.is_some();
            layers.push((done.clone(), layer_compression(done)));
        }
        if !changed
            && let Some((_, desc, bytes)) = originals.iter().find(|(c, _, _)| *c == config_digest)
        {
            let mut node = leaf(
                desc.digest.clone(),
                desc.media_type
                    .clone()
                    .unwrap_or(layout::OCI_MANIFEST.into()),
                bytes.clone(),
                false,
            );
            node.blobs.push(BlobUse {
                digest: config_digest.clone(),
                size: config_bytes.len() as u64,
                media_type: layout::OCI_CONFIG.into(),
                source: Source::Archive(FileRec::Memory {
                    bytes: config_bytes,
                    digest: config_digest.clone(),
                }),
            });
            for (d, c) in &layers {
                node.blobs.push(layer_use(d, layer_media_type(*c, false)));
            }
            return Ok(node);
        }
        let docker = layers.iter().all(|(_, c)| *c == Comp::Gzip);
        let (mt, config_mt) = if docker {
            (layout::DOCKER_MANIFEST, layout::DOCKER_CONFIG)
        } else {
            (layout::OCI_MANIFEST, layout::OCI_CONFIG)
        };
        let layer_uses: Vec<BlobUse> = layers
            .iter()
            .map(|(d, c)| layer_use(d, layer_media_type(*c, docker)))
            .collect();
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": mt,
            "config": {"mediaType": config_mt, "size": config_bytes.len(), "digest": config_digest},
            "layers": layer_uses.iter().map(|l| json!({"mediaType": l.media_type, "size": l.size, "digest": l.digest})).collect::<Vec<_>>(),
        });
        let bytes = Bytes::from(serde_json::to_vec_pretty(&manifest).expect("json"));
        let mut node = leaf(Digest::sha256_of(&bytes), mt.into(), bytes, true);
        node.blobs.push(BlobUse {
            digest: config_digest.clone(),
            size: config_bytes.len() as u64,
            media_type: config_mt.into(),
            source: Source::Archive(FileRec::Memory {
                bytes: config_bytes,
                digest: config_digest,
            }),
        });
        node.blobs.extend(layer_uses);
        Ok(node)
    }

    async fn oci_plans(&self, view: &View<'_>, path: &str) -> Result<Vec<Plan>, PushError> {
        let bytes = self.metadata(view, path)?;
        let manifests = match Document::parse(bytes, None) {
            Ok(Document::Index { manifests, .. }) => manifests,
            Ok(_) => {
                return Err(PushError::manifest(
                    "index.json",
                    "is a manifest, not an index",
                ));
            }
            Err(e) => return Err(PushError::manifest("index.json", e)),
        };
        if manifests.is_empty() {
            return Err(PushError::manifest("index.json", "lists no image"));
        }
        let mut plans = Vec::new();
        for (n, desc) in manifests.iter().enumerate() {
            let ann = desc.annotations.clone().unwrap_or_default();
            let names: Vec<String> = ann
                .get("io.containerd.image.name")
                .cloned()
                .into_iter()
                .collect();
            let ref_names: Vec<String> = ann
                .get("org.opencontainers.image.ref.name")
                .cloned()
                .into_iter()
                .collect();
            let label = format!("index.json manifest {n} ({})", desc.digest);
            let root = Box::pin(self.node(view, desc, &label, 0)).await?;
            plans.push(Plan {
                label,
                names,
                ref_names,
                root,
            });
        }
        Ok(plans)
    }

    async fn node(
        &self,
        view: &View<'_>,
        desc: &Descriptor,
        by: &str,
        depth: u32,
    ) -> Result<Node, PushError> {
        if depth > 4 {
            return Err(PushError::manifest(by, "indexes are nested too deeply"));
        }
        let (path, bytes) = match view.blob(&desc.digest)? {
            Some((p, FileRec::Memory { bytes, .. })) => (p, bytes.clone()),
            Some((p, FileRec::Streamed(_))) => {
                return Err(ArchiveError::MetadataTooLarge {
                    path: p,
                    limit: self.metadata_limit,
                }
                .into());
            }
            _ => {
                return Err(PushError::BlobMissing {
                    digest: desc.digest.to_string(),
                    by: by.to_string(),
                });
            }
        };
        verify_bytes(&path, &bytes, desc)?;
        let doc = Document::parse(&bytes, desc.media_type.as_deref())
            .map_err(|e| PushError::manifest(&path, e))?;
        let platform = desc.platform.as_ref().map(|p| p.render());
        match doc {
            Document::Index {
                media_type,
                manifests,
            } => {
                let mut children = Vec::new();
                for child in &manifests {
                    children.push(Box::pin(self.node(view, child, &path, depth + 1)).await?);
                }
                let changed: Vec<(usize, &Node)> = children
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| c.rewritten)
                    .collect();
                let (bytes, rewritten) = if changed.is_empty() {
                    (bytes, false)
                } else {
                    let mut v: Value = serde_json::from_slice(&bytes)
                        .map_err(|e| PushError::manifest(&path, e))?;
                    for (i, c) in changed {
                        v["manifests"][i]["digest"] = json!(c.digest);
                        v["manifests"][i]["size"] = json!(c.bytes.len());
                        v["manifests"][i]["mediaType"] = json!(c.media_type);
                    }
                    (Bytes::from(serde_json::to_vec(&v).expect("json")), true)
                };
                let digest = if rewritten {
                    Digest::sha256_of(&bytes)
                } else {
                    desc.digest.clone()
                };
                Ok(Node {
                    digest,
                    media_type,
                    bytes,
                    rewritten,
                    platform,
                    children,
                    blobs: Vec::new(),
                })
            }
            Document::Manifest {
                media_type,
                config,
                layers,
            } => {
                let mut node = leaf(
                    desc.digest.clone(),
                    media_type.clone(),
                    bytes.clone(),
                    false,
                );
                node.platform = platform;
                let config_use = self.reference(view, &config, &path, true).await?;
                node.blobs.push(config_use);
                let mut changes = Vec::new();
                for (i, l) in layers.iter().enumerate() {
                    let u = self.reference(view, l, &path, false).await?;
                    if u.digest != l.digest {
                        changes.push((i, u.clone()));
                    }
                    node.blobs.push(u);
                }
                check_image_config(&node.blobs, &path)?;
                if !changes.is_empty() {
                    let mut v: Value = serde_json::from_slice(&bytes)
                        .map_err(|e| PushError::manifest(&path, e))?;
                    let docker = media_type == layout::DOCKER_MANIFEST;
                    let to_oci = docker
                        && changes
                            .iter()
                            .any(|(_, u)| u.media_type != layout::DOCKER_LAYER_GZIP);
                    for (i, u) in &changes {
                        v["layers"][*i]["digest"] = json!(u.digest);
                        v["layers"][*i]["size"] = json!(u.size);
                        v["layers"][*i]["mediaType"] = json!(u.media_type);
                    }
                    if to_oci {
                        v["mediaType"] = json!(layout::OCI_MANIFEST);
                        v["config"]["mediaType"] = json!(layout::OCI_CONFIG);
                        node.media_type = layout::OCI_MANIFEST.into();
                    }
                    node.bytes = Bytes::from(serde_json::to_vec(&v).expect("json"));
                    node.digest = Digest::sha256_of(&node.bytes);
                    node.rewritten = true;
                }
                Ok(node)
            }
        }
    }

    /// A config or layer descriptor of an OCI manifest, checked against the archive (or the
    /// registry, when the archive does not carry it).
    async fn reference(
        &self,
        view: &View<'_>,
        d: &Descriptor,
        by: &str,
        is_config: bool,
    ) -> Result<BlobUse, PushError> {
        let mt = d.media_type.clone().unwrap_or_default();
        match view.blob(&d.digest)? {
            Some((p, FileRec::Memory { bytes, .. })) => {
                verify_bytes(&p, bytes, d)?;
                Ok(BlobUse {
                    digest: d.digest.clone(),
                    size: d.size,
                    media_type: mt,
                    source: Source::Archive(FileRec::Memory {
                        bytes: bytes.clone(),
                        digest: d.digest.clone(),
                    }),
                })
            }
            Some((p, FileRec::Streamed(done))) => {
                if done.raw_digest != d.digest || done.raw_size != d.size {
                    return Err(PushError::DigestMismatch {
                        what: format!("blob {p} as described in {by}"),
                        expected: format!("{} ({} bytes)", d.digest, d.size),
                        actual: format!("{} ({} bytes)", done.raw_digest, done.raw_size),
                    });
                }
                let media_type = match done.recompressed {
                    Some(c) if !is_config => {
                        let docker = mt.starts_with("application/vnd.docker.");
                        layer_media_type(
                            if c == LayerCompression::Zstd {
                                Comp::Zstd
                            } else {
                                Comp::Gzip
                            },
                            docker && c == LayerCompression::Gzip,
                        )
                    }
                    _ => mt,
                };
                Ok(BlobUse {
                    digest: done.pushed_digest.clone(),
                    size: done.pushed_size,
                    media_type,
                    source: Source::Archive(FileRec::Streamed(done.clone())),
                })
            }
            Some((p, FileRec::Skipped)) => Err(PushError::manifest(&p, "is referenced as a blob")),
            None if d.urls.as_ref().is_some_and(|u| !u.is_empty()) => Ok(BlobUse {
                digest: d.digest.clone(),
                size: d.size,
                media_type: mt,
                source: Source::Foreign,
            }),
            None => {
                if self
                    .registry
                    .blob_exists(self.upload_repo, &d.digest)
                    .await?
                {
                    Ok(BlobUse {
                        digest: d.digest.clone(),
                        size: d.size,
                        media_type: mt,
                        source: Source::Registry,
                    })
                } else {
                    Err(PushError::BlobMissing {
                        digest: d.digest.to_string(),
                        by: by.to_string(),
                    })
                }
            }
        }
    }
}

/// For an image (not an artifact): the config must be an image config whose diff_ids match
/// the layers in number, and in value wherever hoist knows a layer's uncompressed digest
/// (uncompressed layers, recompressed ones, and all of them with `verify_layer_diff_ids`).
fn check_image_config(blobs: &[BlobUse], manifest: &str) -> Result<(), PushError> {
    let Some((config, layers)) = blobs.split_first() else {
        return Ok(());
    };
    if config.media_type != layout::OCI_CONFIG && config.media_type != layout::DOCKER_CONFIG {
        return Ok(());
    }
    let Source::Archive(FileRec::Memory { bytes, .. }) = &config.source else {
        return Ok(());
    };
    let what = format!("config {} of {manifest}", config.digest);
    let parsed: ImageConfig =
        layout::strict_json(bytes).map_err(|e| PushError::manifest(&what, e))?;
    let diff_ids = &parsed.rootfs.diff_ids;
    if diff_ids.len() != layers.len() {
        return Err(PushError::manifest(
            &what,
            format!(
                "lists {} diff_ids for {} layers",
                diff_ids.len(),
                layers.len()
            ),
        ));
    }
    for (i, (layer, want)) in layers.iter().zip(diff_ids).enumerate() {
        if let Source::Archive(FileRec::Streamed(done)) = &layer.source
            && let Some(found) = &done.diff_id
            && found != want
        {
            return Err(PushError::DigestMismatch {
                what: format!(
                    "layer {} (diffID, rootfs.diff_ids[{i}] of {what})",
                    done.path
                ),
                expected: want.to_string(),
                actual: found.to_string(),
            });
        }
    }
    Ok(())
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
