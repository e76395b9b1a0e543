//! OCI layouts: `index.json` and the manifests and indexes it reaches, verified against the
//! archive, rewritten only where a layer was recompressed.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Value, json};

use super::view::{View, verify_bytes};
use super::{BlobRef, BlobSource, Child, File, Image, ImageError, Node};
use crate::oci::media::{self, DOCKER_LAYER_GZIP, DOCKER_MANIFEST, OCI_CONFIG, OCI_MANIFEST};
use crate::oci::{Descriptor, Digest, Document, ImageConfig, LayerEncoding, strict_json};

/// How deep indexes may nest.
const MAX_DEPTH: u32 = 4;

/// Documents already resolved, by the digest that named them: each is parsed and verified
/// once however often it is listed, and published once.
type Seen = HashMap<Digest, Resolved>;

struct Resolved {
    node: Arc<Node>,
    size: u64,
    media_type: Option<String>,
}

/// Every image `index.json` lists.
pub(super) fn images(view: &View, path: &str) -> Result<Vec<Image>, ImageError> {
    let bytes = view.metadata(path)?;
    let manifests = match Document::parse(bytes, None) {
        Ok(Document::Index { manifests, .. }) => manifests,
        Ok(_) => {
            return Err(ImageError::manifest(
                "index.json",
                "is a manifest, not an index",
            ));
        }
        Err(e) => return Err(ImageError::manifest("index.json", e)),
    };
    if manifests.is_empty() {
        return Err(ImageError::manifest("index.json", "lists no image"));
    }
    let mut seen = Seen::new();
    let mut images = Vec::new();
    for (n, desc) in manifests.iter().enumerate() {
        let annotation = |key: &str| -> Vec<String> {
            let found = desc.annotations.as_ref().and_then(|a| a.get(key));
            found.cloned().into_iter().collect()
        };
        let label = format!("index.json manifest {n} ({})", desc.digest);
        let root = node(view, &mut seen, desc, &label, 0)?;
        images.push(Image {
            names: annotation("io.containerd.image.name"),
            ref_names: annotation("org.opencontainers.image.ref.name"),
            label,
            root,
        });
    }
    Ok(images)
}

/// The manifest or index `desc` names, verified, with everything below it.
fn node(
    view: &View,
    seen: &mut Seen,
    desc: &Descriptor,
    by: &str,
    depth: u32,
) -> Result<Arc<Node>, ImageError> {
    view.spend(by)?;
    if depth > MAX_DEPTH {
        return Err(ImageError::manifest(by, "indexes are nested too deeply"));
    }
    if let Some(r) = seen.get(&desc.digest) {
        if r.size != desc.size || r.media_type != desc.media_type {
            return Err(ImageError::manifest(
                by,
                format!(
                    "lists {} twice with different sizes or media types",
                    desc.digest
                ),
            ));
        }
        return Ok(r.node.clone());
    }
    let (path, bytes) = match view.blob(&desc.digest)? {
        Some((p, File::Memory { bytes, .. })) => (p, bytes.clone()),
        Some((p, File::Streamed(_))) => return Err(view.too_large(p)),
        _ => {
            return Err(ImageError::BlobMissing {
                digest: desc.digest.to_string(),
                by: by.to_string(),
            });
        }
    };
    verify_bytes(&path, &bytes, desc)?;
    let doc = Document::parse(&bytes, desc.media_type.as_deref())
        .map_err(|e| ImageError::manifest(&path, e))?;
    let node = match doc {
        Document::Index {
            media_type,
            manifests,
        } => {
            let mut children = Vec::new();
            for child in &manifests {
                children.push(Child {
                    node: node(view, seen, child, &path, depth + 1)?,
                    platform: child.platform.as_ref().map(|p| p.render()),
                });
            }
            index_node(desc, &path, media_type, bytes, children)?
        }
        Document::Manifest {
            media_type,
            config,
            layers,
        } => manifest_node(view, desc, &path, media_type, bytes, &config, &layers)?,
    };
    let node = Arc::new(node);
    let resolved = Resolved {
        node: node.clone(),
        size: desc.size,
        media_type: desc.media_type.clone(),
    };
    seen.insert(desc.digest.clone(), resolved);
    Ok(node)
}

/// An index, its descriptors rewritten where a child manifest was.
fn index_node(
    desc: &Descriptor,
    path: &str,
    media_type: String,
    bytes: Bytes,
    children: Vec<Child>,
) -> Result<Node, ImageError> {
    let changed: Vec<(usize, &Node)> = children
        .iter()
        .enumerate()
        .filter(|(_, c)| c.node.rewritten)
        .map(|(i, c)| (i, c.node.as_ref()))
        .collect();
    let mut node = Node::leaf(desc.digest.clone(), media_type, bytes, false);
    if !changed.is_empty() {
        let mut v: Value =
            serde_json::from_slice(&node.bytes).map_err(|e| ImageError::manifest(path, e))?;
        for (i, c) in changed {
            v["manifests"][i]["digest"] = json!(c.digest);
            v["manifests"][i]["size"] = json!(c.bytes.len());
            v["manifests"][i]["mediaType"] = json!(c.media_type);
        }
        node.set_bytes(Bytes::from(serde_json::to_vec(&v).expect("json")));
    }
    node.children = children;
    Ok(node)
}

/// An image manifest: its config and layers checked, rewritten where a layer was recompressed.
fn manifest_node(
    view: &View,
    desc: &Descriptor,
    path: &str,
    media_type: String,
    bytes: Bytes,
    config: &Descriptor,
    layers: &[Descriptor],
) -> Result<Node, ImageError> {
    let mut node = Node::leaf(desc.digest.clone(), media_type, bytes, false);
    node.blobs.push(blob_ref(view, config, path, true)?);
    let mut changes = Vec::new();
    for (i, l) in layers.iter().enumerate() {
        let r = blob_ref(view, l, path, false)?;
        if r.digest != l.digest {
            changes.push((i, r.clone()));
        }
        node.blobs.push(r);
    }
    check_image_config(&node.blobs, path)?;
    if !changes.is_empty() {
        rewrite_layers(&mut node, path, &changes)?;
    }
    Ok(node)
}

/// Points a manifest at recompressed layers; a docker manifest whose new layers have no
/// docker media type becomes an OCI one.
fn rewrite_layers(
    node: &mut Node,
    path: &str,
    changes: &[(usize, BlobRef)],
) -> Result<(), ImageError> {
    let mut v: Value =
        serde_json::from_slice(&node.bytes).map_err(|e| ImageError::manifest(path, e))?;
    for (i, r) in changes {
        v["layers"][*i]["digest"] = json!(r.digest);
        v["layers"][*i]["size"] = json!(r.size);
        v["layers"][*i]["mediaType"] = json!(r.media_type);
    }
    let to_oci = node.media_type == DOCKER_MANIFEST
        && changes
            .iter()
            .any(|(_, r)| r.media_type != DOCKER_LAYER_GZIP);
    if to_oci {
        v["mediaType"] = json!(OCI_MANIFEST);
        v["config"]["mediaType"] = json!(OCI_CONFIG);
        node.media_type = OCI_MANIFEST.into();
    }
    node.set_bytes(Bytes::from(serde_json::to_vec(&v).expect("json")));
    Ok(())
}

/// A config or layer descriptor, checked against the archive; a blob the archive leaves out
/// must be in the registry (the caller checks), unless it is a foreign layer.
fn blob_ref(view: &View, d: &Descriptor, by: &str, is_config: bool) -> Result<BlobRef, ImageError> {
    view.spend(by)?;
    let mt = d.media_type.clone().unwrap_or_default();
    let in_registry = |source| BlobRef {
        digest: d.digest.clone(),
        size: d.size,
        media_type: mt.clone(),
        source,
    };
    match view.blob(&d.digest)? {
        Some((p, File::Memory { bytes, .. })) => {
            verify_bytes(&p, bytes, d)?;
            Ok(BlobRef::memory(bytes.clone(), d.digest.clone(), mt))
        }
        Some((p, File::Streamed(blob))) => {
            if blob.raw != d.digest || blob.raw_size != d.size {
                return Err(ImageError::DigestMismatch {
                    what: format!("blob {p} as described in {by}"),
                    expected: format!("{} ({} bytes)", d.digest, d.size),
                    actual: format!("{} ({} bytes)", blob.raw, blob.raw_size),
                });
            }
            let media_type = match blob.encoding {
                Some(e) if blob.recompressed && !is_config => {
                    let docker = mt.starts_with("application/vnd.docker.");
                    e.media_type(docker && e == LayerEncoding::Gzip).to_string()
                }
                _ => mt,
            };
            Ok(BlobRef::layer(blob, media_type))
        }
        Some((p, File::Skipped)) => Err(ImageError::manifest(&p, "is referenced as a blob")),
        None if d.urls.as_ref().is_some_and(|u| !u.is_empty()) => {
            Ok(in_registry(BlobSource::Foreign))
        }
        None => Ok(in_registry(BlobSource::Registry { by: by.to_string() })),
    }
}

/// For an image (not an artifact): the config must be an image config whose diff_ids match
/// the layers in number, and in value wherever hoist knows a layer's uncompressed digest
/// (uncompressed layers, recompressed ones, and all of them with `verify_layer_diff_ids`).
fn check_image_config(blobs: &[BlobRef], manifest: &str) -> Result<(), ImageError> {
    let Some((config, layers)) = blobs.split_first() else {
        return Ok(());
    };
    if !media::is_image_config(&config.media_type) {
        return Ok(());
    }
    let BlobSource::Archive(File::Memory { bytes, .. }) = &config.source else {
        return Ok(());
    };
    let what = format!("config {} of {manifest}", config.digest);
    let parsed: ImageConfig = strict_json(bytes).map_err(|e| ImageError::manifest(&what, e))?;
    let diff_ids = &parsed.rootfs.diff_ids;
    if diff_ids.len() != layers.len() {
        return Err(ImageError::manifest(
            &what,
            format!(
                "lists {} diff_ids for {} layers",
                diff_ids.len(),
                layers.len()
            ),
        ));
    }
    for (i, (layer, want)) in layers.iter().zip(diff_ids).enumerate() {
        if let BlobSource::Archive(File::Streamed(blob)) = &layer.source
            && let Some(found) = &blob.diff_id
            && found != want
        {
            return Err(ImageError::DigestMismatch {
                what: format!(
                    "layer {} (diffID, rootfs.diff_ids[{i}] of {what})",
                    blob.path
                ),
                expected: want.to_string(),
                actual: found.to_string(),
            });
        }
    }
    Ok(())
}

impl Node {
    /// New bytes for a rewritten document: a new digest.
    pub(super) fn set_bytes(&mut self, bytes: Bytes) {
        self.digest = Digest::sha256_of(&bytes);
        self.bytes = bytes;
        self.rewritten = true;
    }
}
