//! Digests: blobs, sizes and diffIDs that do not match what names them, layer counts that do
//! not match the diffIDs, and a malformed digest string.

use serde_json::{Value, json};

use super::env::*;
use crate::support::archives::*;
use crate::support::sha256;

#[test]
fn blob_not_matching_its_name_is_rejected() {
    let mut env = Env::new();
    let oci = Oci::valid("mismatch");
    let named = oci.layer_digest(0);
    let mut files = oci.files();
    let path = blob_path(&named);
    files.iter_mut().find(|(n, _)| *n == path).unwrap().1 = gzip(&layer_tar("impostor"));
    env.reject(
        "blob-digest-mismatch",
        &tar_of(&files),
        400,
        DIGEST_MISMATCH,
        &[&short(&named)],
    );
}

#[test]
fn descriptor_size_not_matching_blob_is_rejected() {
    let mut env = Env::new();
    let mut oci = Oci::valid("size-mismatch");
    let size = oci.manifest["layers"][0]["size"].as_u64().unwrap();
    oci.manifest["layers"][0]["size"] = json!(size + 7);
    oci.relink_index();
    env.reject(
        "descriptor-size",
        &oci.archive(),
        400,
        DIGEST_MISMATCH,
        &[&short(&oci.layer_digest(0))],
    );
}

#[test]
fn docker_layer_not_matching_diff_id_is_rejected() {
    let mut env = Env::new();
    let mut d = Docker::valid("diffid", Value::Null);
    let expected = sha256(&d.layers[0].1);
    d.layers[0].1 = layer_tar("impostor");
    let actual = sha256(&d.layers[0].1);
    env.reject(
        "docker-diff-id",
        &d.archive(),
        400,
        DIGEST_MISMATCH,
        &[&short(&expected), &short(&actual)],
    );
}

#[test]
fn oci_layer_not_matching_diff_id_is_rejected() {
    // Compressed OCI layers are checked against their digest always, against the config's
    // diff_ids when asked to (it costs an inflate of every layer).
    let mut env = Env::with(&[("HOIST_VERIFY_LAYER_DIFF_IDS", "true")]);
    let mut oci = Oci::valid("oci-diffid");
    let wrong = sha256(&layer_tar("impostor"));
    oci.config["rootfs"]["diff_ids"] = json!([wrong]);
    oci.relink();
    let names = [short(&wrong), short(&oci.layer_digest(0))];
    env.reject(
        "oci-diff-id",
        &oci.archive(),
        400,
        DIGEST_MISMATCH,
        &[&names[0], &names[1]],
    );
}

#[test]
fn docker_layer_count_not_matching_diff_ids_is_rejected() {
    let mut env = Env::new();
    let mut d = Docker::valid("count", Value::Null);
    d.config["rootfs"]["diff_ids"]
        .as_array_mut()
        .unwrap()
        .push(json!(sha256(b"another layer")));
    d.relink_config();
    env.reject(
        "docker-layer-count",
        &d.archive(),
        400,
        MANIFEST_INVALID,
        &[],
    );
}

#[test]
fn oci_layer_count_not_matching_diff_ids_is_rejected() {
    let mut env = Env::new();
    let mut oci = Oci::valid("oci-count");
    oci.config["rootfs"]["diff_ids"]
        .as_array_mut()
        .unwrap()
        .push(json!(sha256(b"another layer")));
    oci.relink();
    env.reject(
        "oci-layer-count",
        &oci.archive(),
        400,
        MANIFEST_INVALID,
        &[],
    );
}

/// CVE-2024-3727: a digest string used as a path or URL must be validated first.
#[test]
fn descriptor_with_malformed_digest_is_rejected() {
    let mut env = Env::new();
    let mut oci = Oci::valid("bad-digest");
    oci.manifest["layers"][0]["digest"] = json!("sha256:../../../etc/passwd");
    oci.relink_index();
    let names = [short(&oci.manifest_digest()), "etc/passwd".to_string()];
    env.reject(
        "malformed-digest",
        &oci.archive(),
        400,
        MANIFEST_INVALID,
        &[&names[0], &names[1]],
    );
}
