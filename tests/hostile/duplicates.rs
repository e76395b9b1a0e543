//! Duplicates: the same metadata file, layer path or blob path twice with different bytes is
//! DUPLICATE_ENTRY.

use serde_json::{Value, json};

use super::bodies::docker_layer_via;
use super::env::*;
use crate::support::archives::*;

#[test]
fn manifest_json_twice_is_rejected() {
    let mut env = Env::new();
    let mut d = Docker::valid("dup-manifest", json!(["hostile/first:1"]));
    let mut files = d.files();
    d.manifest[0]["RepoTags"] = json!(["hostile/second:1"]);
    files.push(("manifest.json".into(), d.manifest_bytes()));
    env.reject(
        "dup-manifest-json",
        &tar_of(&files),
        400,
        DUPLICATE_ENTRY,
        &["manifest.json"],
    );
    assert!(env.reg.tags("hostile/first").is_empty() && env.reg.tags("hostile/second").is_empty());
}

#[test]
fn dot_slash_manifest_json_beside_manifest_json_is_rejected() {
    let mut env = Env::new();
    let d = Docker::valid("dup-dot-manifest", Value::Null);
    let mut files = d.files();
    let (_, manifest) = files.last().unwrap().clone();
    files.insert(files.len() - 1, ("./manifest.json".into(), manifest));
    env.reject(
        "dup-dot-manifest-json",
        &tar_of(&files),
        400,
        DUPLICATE_ENTRY,
        &["manifest.json"],
    );
}

#[test]
fn layer_path_twice_with_different_bytes_is_rejected() {
    let mut env = Env::new();
    let body = docker_layer_via("layer1/layer.tar", |t, layer| {
        t.file("layer1/layer.tar", layer)
            .file("layer1/layer.tar", &layer_tar("impostor"));
    });
    env.reject(
        "dup-layer",
        &body,
        400,
        DUPLICATE_ENTRY,
        &["layer1/layer.tar"],
    );
}

#[test]
fn blob_path_twice_with_different_bytes_is_rejected() {
    let mut env = Env::new();
    let oci = Oci::valid("dup-blob");
    let mut files = oci.files();
    let path = blob_path(&oci.layer_digest(0));
    let at = files.iter().position(|(n, _)| *n == path).unwrap();
    files.insert(at + 1, (path, gzip(&layer_tar("impostor"))));
    env.reject(
        "dup-blob",
        &tar_of(&files),
        400,
        DUPLICATE_ENTRY,
        &[&short(&oci.layer_digest(0))],
    );
}
