//! The JSON documents the shaped archives share: image configs, OCI manifests and descriptors
//! as containerd/docker marshal them, and `docker save`'s `manifest.json` entries and
//! `repositories` file.
use serde_json::json;

use super::Layer;
use crate::support::archives::{OCI_CONFIG, OCI_MANIFEST};

/// An image config with `rootfs.diff_ids` of `layers`.
pub(super) fn config_json(arch: &str, label: &str, layers: &[&Layer]) -> Vec<u8> {
    let diff_ids: Vec<&str> = layers.iter().map(|l| l.diff_id.as_str()).collect();
    let history: Vec<_> = (0..layers.len())
        .map(|i| json!({"created": "2024-01-01T00:00:00Z", "created_by": format!("fixture {label} layer {i}")}))
        .collect();
    let v = json!({
        "architecture": arch,
        "config": {
            "Cmd": ["/bin/sh"],
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Labels": {"fixture": label},
        },
        "created": "2024-01-01T00:00:00Z",
        "history": history,
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    serde_json::to_vec(&v).unwrap()
}

/// A descriptor, fields in Go struct order as containerd/docker marshal them.
fn desc(media_type: &str, digest: &str, size: usize) -> String {
    format!(r#"{{"mediaType":"{media_type}","digest":"{digest}","size":{size}}}"#)
}

/// An OCI manifest of the config and `layers` (digest, size), each layer typed `media`.
pub(super) fn oci_manifest(
    config_digest: &str,
    config_len: usize,
    layers: &[(String, usize)],
    media: &str,
) -> Vec<u8> {
    let layers: Vec<String> = layers.iter().map(|(d, n)| desc(media, d, *n)).collect();
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{},"layers":[{}]}}"#,
        desc(OCI_CONFIG, config_digest, config_len),
        layers.join(",")
    )
    .into_bytes()
}

pub(super) const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// One image's entry in a `docker save` `manifest.json`: its config file, its name and its
/// layer files in manifest order.
pub(super) fn manifest_entry(config: String, name: &str, layers: Vec<String>) -> serde_json::Value {
    json!({
        "Config": config,
        "RepoTags": [name],
        "Layers": layers,
    })
}

/// Records `name` (`repo:tag`) in a `repositories` file as the image `id`.
pub(super) fn add_repository(
    repositories: &mut serde_json::Map<String, serde_json::Value>,
    name: &str,
    id: &str,
) {
    let (repo, tag) = name.rsplit_once(':').unwrap();
    repositories
        .entry(repo.to_string())
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .unwrap()
        .insert(tag.to_string(), json!(id));
}
