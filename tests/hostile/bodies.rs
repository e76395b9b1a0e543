//! Archive builders several groups share: hostile entries before a valid OCI layout, a
//! docker image whose layer is reached through chosen entries, a nested index.

use serde_json::{Value, json};

use crate::support::archives::*;
use crate::support::sha256;

/// One mebibyte.
pub const MIB: u64 = 1024 * 1024;

/// A tar whose first entries come from `hostile`, followed by a valid OCI layout.
pub fn before_valid_oci(hostile: impl FnOnce(&mut Tar), seed: &str) -> Vec<u8> {
    let mut t = Tar::new();
    hostile(&mut t);
    t.files(&Oci::valid(seed).files());
    t.finish()
}

/// A docker image (no RepoTags) whose only layer is listed in manifest.json as `layer_entry`;
/// `entries` writes the layer entries (files and links), then config and manifest.json follow.
pub fn docker_layer_via(layer_entry: &str, entries: impl FnOnce(&mut Tar, &[u8])) -> Vec<u8> {
    let mut d = Docker::valid("linked", Value::Null);
    d.manifest[0]["Layers"] = json!([layer_entry]);
    let layer = d.layers[0].1.clone();
    let mut t = Tar::new();
    entries(&mut t, &layer);
    t.files(&d.metadata_files());
    t.finish()
}

/// An OCI layout whose index.json names a nested index of one amd64 manifest; with
/// `absent_platform`, the nested index also lists an arm64 manifest the archive lacks, whose
/// digest is returned.
pub fn nested_index(absent_platform: bool) -> (Oci, Option<String>) {
    let mut oci = Oci::valid("nested");
    let manifest = oci.manifest_bytes();
    let mut children = vec![json!({
        "mediaType": OCI_MANIFEST, "digest": sha256(&manifest), "size": manifest.len(),
        "platform": {"architecture": "amd64", "os": "linux"},
    })];
    let mut absent = None;
    if absent_platform {
        let other = Oci::valid("nested-arm64").manifest_bytes();
        absent = Some(sha256(&other));
        children.push(json!({
            "mediaType": OCI_MANIFEST, "digest": sha256(&other), "size": other.len(),
            "platform": {"architecture": "arm64", "os": "linux"},
        }));
    }
    let inner = serde_json::to_vec(
        &json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": children}),
    )
    .unwrap();
    oci.index["manifests"][0] = json!({
        "mediaType": OCI_INDEX, "digest": sha256(&inner), "size": inner.len(),
        "annotations": {REF_NAME: "1.0"},
    });
    oci.extra_blobs.push(inner);
    (oci, absent)
}
