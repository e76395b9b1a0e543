//! docker-archive images (legacy `docker save`, podman/skopeo, Docker 25+): `manifest.json`
//! names each image's config and layer paths; layers are checked against the config's
//! diff_ids, and a manifest is written unless the archive's own OCI manifest still fits.

use bytes::Bytes;
use serde_json::json;

use super::view::View;
use super::{BlobRef, File, Image, ImageError, Node, StreamedBlob};
use crate::oci::media::{self, DOCKER_CONFIG, DOCKER_MANIFEST, OCI_CONFIG, OCI_MANIFEST};
use crate::oci::{
    Descriptor, Digest, DockerImage, Document, ImageConfig, LayerEncoding, strict_json,
};

/// A Docker 25+ OCI manifest found beside manifest.json, keyed by its config's digest.
struct Original {
    config: Digest,
    descriptor: Descriptor,
    bytes: Bytes,
}

/// Every image `manifest.json` lists; `index` is Docker 25+'s `index.json`, when present.
pub(super) fn images(
    view: &View,
    path: &str,
    index: Option<&str>,
) -> Result<Vec<Image>, ImageError> {
    let bytes = view.metadata(path)?;
    let listed: Vec<DockerImage> =
        strict_json(bytes).map_err(|e| ImageError::manifest("manifest.json", e))?;
    if listed.is_empty() {
        return Err(ImageError::manifest("manifest.json", "lists no image"));
    }
    let originals = index.map(|i| originals(view, i)).unwrap_or_default();
    let mut images = Vec::new();
    for (n, img) in listed.iter().enumerate() {
        view.spend("manifest.json")?;
        let label = format!("manifest.json image {n}");
        let root = image(view, img, &label, &originals)?;
        images.push(Image {
            label,
            names: img.repo_tags.clone().unwrap_or_default(),
            ref_names: Vec::new(),
            root: std::sync::Arc::new(root),
        });
    }
    Ok(images)
}

/// Docker 25+ keeps an OCI manifest per image beside manifest.json.
fn originals(view: &View, index: &str) -> Vec<Original> {
    let Some(bytes) = view.memory(index) else {
        return Vec::new();
    };
    let Ok(Document::Index { manifests, .. }) = Document::parse(bytes, None) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for d in manifests {
        let Ok(Some((_, File::Memory { bytes, digest }))) = view.blob(&d.digest) else {
            continue;
        };
        if digest != &d.digest {
            continue;
        }
        if let Ok(Document::Manifest { config, .. }) =
            Document::parse(bytes, d.media_type.as_deref())
        {
            out.push(Original {
                config: config.digest.clone(),
                descriptor: d.clone(),
                bytes: bytes.clone(),
            });
        }
    }
    out
}

/// One image: its config, its layers checked against the config's diff_ids, its manifest.
fn image(
    view: &View,
    img: &DockerImage,
    label: &str,
    originals: &[Original],
) -> Result<Node, ImageError> {
    let (config_bytes, config_digest, config) = read_config(view, &img.config)?;
    let diff_ids = &config.rootfs.diff_ids;
    if diff_ids.len() != img.layers.len() {
        return Err(ImageError::manifest(
            &img.config,
            format!(
                "lists {} diff_ids but manifest.json gives {} layers for {label}",
                diff_ids.len(),
                img.layers.len()
            ),
        ));
    }
    let mut layers = Vec::new();
    for (i, (layer, diff_id)) in img.layers.iter().zip(diff_ids).enumerate() {
        view.spend(label)?;
        layers.push(verified_layer(view, i, layer, diff_id)?);
    }
    let changed = layers.iter().any(|l| l.recompressed);
    let original = originals.iter().find(|o| o.config == config_digest);
    match original {
        Some(o) if !changed => {
            check_original(o, config_bytes.len() as u64, &layers, label)?;
            Ok(keep_original(o, config_bytes, config_digest, &layers))
        }
        _ => Ok(write_manifest(config_bytes, config_digest, &layers)),
    }
}

/// Docker 25+'s own OCI manifest is pushed byte-exact, so it must say exactly what
/// manifest.json and the config verified: the same config size and the same layers, in
/// order. Otherwise a manifest listing some other layer would be pushed and tagged.
fn check_original(
    o: &Original,
    config_size: u64,
    layers: &[StreamedBlob],
    label: &str,
) -> Result<(), ImageError> {
    let what = format!("the OCI manifest {} of {label}", o.descriptor.digest);
    let Ok(Document::Manifest {
        config,
        layers: listed,
        ..
    }) = Document::parse(&o.bytes, o.descriptor.media_type.as_deref())
    else {
        return Err(ImageError::manifest(&what, "is not an image manifest"));
    };
    if config.size != config_size {
        return Err(ImageError::DigestMismatch {
            what: format!("config size in {what}"),
            expected: config_size.to_string(),
            actual: config.size.to_string(),
        });
    }
    if listed.len() != layers.len() {
        return Err(ImageError::manifest(
            &what,
            format!(
                "lists {} layers where manifest.json gives {}",
                listed.len(),
                layers.len()
            ),
        ));
    }
    for (i, (d, l)) in listed.iter().zip(layers).enumerate() {
        if d.digest != l.raw || d.size != l.raw_size {
            return Err(ImageError::DigestMismatch {
                what: format!("layer {i} of {what}"),
                expected: format!(
                    "{} ({} bytes), as manifest.json's {}",
                    l.raw, l.raw_size, l.path
                ),
                actual: format!("{} ({} bytes)", d.digest, d.size),
            });
        }
    }
    Ok(())
}

/// The config: read from memory, parsed, its digest what its bytes hash to. A legacy name
/// (`<hex>.json`) is only a path, as `docker load` and skopeo treat it; a content-addressed
/// one (`blobs/sha256/<hex>`, Docker 25+) must match.
fn read_config(view: &View, name: &str) -> Result<(Bytes, Digest, ImageConfig), ImageError> {
    let path = view
        .join(name)
        .map_err(|e| ImageError::manifest("manifest.json", e))?;
    let bytes = view.metadata(&path)?.clone();
    let digest = Digest::sha256_of(&bytes);
    if let Some(named) = named_by(&path)
        && named != digest
    {
        return Err(ImageError::DigestMismatch {
            what: format!("config {path}"),
            expected: named.to_string(),
            actual: digest.to_string(),
        });
    }
    let config: ImageConfig = strict_json(&bytes).map_err(|e| ImageError::manifest(&path, e))?;
    Ok((bytes, digest, config))
}

/// Layer `i`, found (links followed), streamed, and its diffID what the config says.
fn verified_layer(
    view: &View,
    i: usize,
    layer: &str,
    diff_id: &Digest,
) -> Result<StreamedBlob, ImageError> {
    let path = view
        .join(layer)
        .map_err(|e| ImageError::manifest("manifest.json", e))?;
    let (real, file) = view.get(&path)?.ok_or_else(|| ImageError::BlobMissing {
        digest: diff_id.to_string(),
        by: format!("manifest.json layer {i} ({layer})"),
    })?;
    let not_a_layer = || {
        ImageError::manifest(
            &real,
            "is listed as a layer but is not a tar, gzip or zstd stream",
        )
    };
    let File::Streamed(blob) = file else {
        return Err(not_a_layer());
    };
    let found = blob.diff_id.as_ref().ok_or_else(not_a_layer)?;
    if found != diff_id {
        return Err(ImageError::DigestMismatch {
            what: format!("layer {real} (diffID, rootfs.diff_ids[{i}])"),
            expected: diff_id.to_string(),
            actual: found.to_string(),
        });
    }
    Ok(blob.clone())
}

fn encoding(blob: &StreamedBlob) -> LayerEncoding {
    blob.encoding.unwrap_or(LayerEncoding::Tar)
}

/// Docker 25+'s own OCI manifest, pushed byte-exact, when no layer changed.
fn keep_original(o: &Original, config: Bytes, digest: Digest, layers: &[StreamedBlob]) -> Node {
    let media_type = o
        .descriptor
        .media_type
        .clone()
        .unwrap_or(OCI_MANIFEST.into());
    let mut node = Node::leaf(
        o.descriptor.digest.clone(),
        media_type,
        o.bytes.clone(),
        false,
    );
    node.blobs
        .push(BlobRef::memory(config, digest, OCI_CONFIG.into()));
    for l in layers {
        node.blobs
            .push(BlobRef::layer(l, encoding(l).media_type(false).into()));
    }
    node
}

/// A new manifest: docker schema 2 when every layer is gzip, OCI otherwise.
fn write_manifest(config: Bytes, digest: Digest, layers: &[StreamedBlob]) -> Node {
    let docker = layers.iter().all(|l| encoding(l) == LayerEncoding::Gzip);
    let (mt, config_mt) = if docker {
        (DOCKER_MANIFEST, DOCKER_CONFIG)
    } else {
        (OCI_MANIFEST, media::OCI_CONFIG)
    };
    let layer_refs: Vec<BlobRef> = layers
        .iter()
        .map(|l| BlobRef::layer(l, encoding(l).media_type(docker).into()))
        .collect();
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": mt,
        "config": {"mediaType": config_mt, "size": config.len(), "digest": digest},
        "layers": layer_refs.iter().map(|l| json!({"mediaType": l.media_type, "size": l.size, "digest": l.digest})).collect::<Vec<_>>(),
    });
    let bytes = Bytes::from(serde_json::to_vec_pretty(&manifest).expect("json"));
    let mut node = Node::leaf(Digest::sha256_of(&bytes), mt.into(), bytes, true);
    node.blobs
        .push(BlobRef::memory(config, digest, config_mt.into()));
    node.blobs.extend(layer_refs);
    node
}

/// `blobs/sha256/<hex>`: the digest a content-addressed name promises.
fn named_by(path: &str) -> Option<Digest> {
    crate::archive::names::blob_digest(path)
}
