//! Metadata JSON: unparsable documents, index/manifest confusion, missing or mismatched media
//! types, unknown schema versions, duplicate keys and deep nesting are MANIFEST_INVALID.

use serde_json::{Value, json};

use super::env::*;
use crate::support::archives::*;

#[test]
fn manifest_json_not_json_is_rejected() {
    let mut env = Env::new();
    let mut files = Docker::valid("not-json", Value::Null).files();
    files.last_mut().unwrap().1 = b"this is not json".to_vec();
    env.reject(
        "manifest-json-not-json",
        &tar_of(&files),
        400,
        BAD_JSON,
        &["manifest.json"],
    );
}

#[test]
fn config_not_json_is_rejected() {
    let mut env = Env::new();
    let mut oci = Oci::valid("config-not-json");
    oci.raw_config = Some(b"{\"architecture\": ".to_vec());
    oci.relink();
    env.reject(
        "config-not-json",
        &oci.archive(),
        400,
        BAD_JSON,
        &[&short(&oci.config_digest())],
    );
}

#[test]
fn null_manifests_in_index_json_is_rejected() {
    let mut env = Env::new();
    let mut oci = Oci::valid("null-manifests");
    let files: Vec<_> = {
        oci.index["manifests"] = Value::Null;
        oci.files()
    };
    env.reject(
        "null-manifests",
        &tar_of(&files),
        400,
        MANIFEST_INVALID,
        &["index.json"],
    );
}

/// CVE-2021-41190: a document that is both an index and a manifest.
#[test]
fn index_json_with_layers_is_rejected() {
    let mut env = Env::new();
    let mut oci = Oci::valid("index-layers");
    oci.index["layers"] = oci.manifest["layers"].clone();
    env.reject(
        "index-with-layers",
        &oci.archive(),
        400,
        MANIFEST_INVALID,
        &["index.json"],
    );
}

/// CVE-2021-41190, the other way round: a manifest that also lists manifests.
#[test]
fn manifest_with_manifests_is_rejected() {
    let mut env = Env::new();
    let mut oci = Oci::valid("manifest-manifests");
    oci.manifest["manifests"] = oci.index["manifests"].clone();
    oci.relink_index();
    env.reject(
        "manifest-with-manifests",
        &oci.archive(),
        400,
        MANIFEST_INVALID,
        &[&short(&oci.manifest_digest())],
    );
}

/// image-spec: a descriptor's `mediaType` is REQUIRED.
#[test]
fn descriptor_without_media_type_is_rejected() {
    let mut env = Env::new();
    let mut oci = Oci::valid("no-media-type");
    oci.index["manifests"][0]
        .as_object_mut()
        .unwrap()
        .remove("mediaType");
    let names = ["index.json".to_string(), short(&oci.manifest_digest())];
    env.reject(
        "descriptor-no-media-type",
        &oci.archive(),
        400,
        MANIFEST_INVALID,
        &[&names[0], &names[1]],
    );
}

#[test]
fn manifest_media_type_not_matching_descriptor_is_rejected() {
    let mut env = Env::new();
    let mut oci = Oci::valid("media-type-mismatch");
    oci.manifest["mediaType"] = json!(DOCKER_MANIFEST);
    oci.relink_index();
    let names = ["index.json".to_string(), short(&oci.manifest_digest())];
    env.reject(
        "media-type-mismatch",
        &oci.archive(),
        400,
        MANIFEST_INVALID,
        &[&names[0], &names[1]],
    );
}

#[test]
fn manifest_with_unknown_schema_version_is_rejected() {
    let mut env = Env::new();
    let mut oci = Oci::valid("schema-version");
    oci.manifest["schemaVersion"] = json!(3);
    oci.relink_index();
    env.reject(
        "schema-version",
        &oci.archive(),
        400,
        MANIFEST_INVALID,
        &[&short(&oci.manifest_digest())],
    );
}

/// Go keeps the last of duplicate keys, some parsers the first: a parser differential.
#[test]
fn manifest_with_duplicate_keys_is_rejected() {
    let mut env = Env::new();
    let mut oci = Oci::valid("dup-keys");
    let text = String::from_utf8(oci.manifest_bytes()).unwrap();
    oci.raw_manifest = Some(text.replacen('{', "{\"layers\":[],", 1).into_bytes());
    oci.relink_index();
    env.reject(
        "manifest-dup-keys",
        &oci.archive(),
        400,
        MANIFEST_INVALID,
        &[&short(&oci.manifest_digest())],
    );
}

#[test]
fn manifest_json_with_duplicate_keys_is_rejected() {
    let mut env = Env::new();
    let mut files = Docker::valid("dup-keys-docker", Value::Null).files();
    let text = String::from_utf8(files.last().unwrap().1.clone()).unwrap();
    files.last_mut().unwrap().1 = text.replacen("[{", "[{\"Layers\":[],", 1).into_bytes();
    env.reject(
        "manifest-json-dup-keys",
        &tar_of(&files),
        400,
        MANIFEST_INVALID,
        &["manifest.json"],
    );
}

#[test]
fn deeply_nested_manifest_json_is_rejected() {
    let mut env = Env::new();
    let mut files = Docker::valid("deep", Value::Null).files();
    let text = String::from_utf8(files.last().unwrap().1.clone()).unwrap();
    let deep = format!("{}{}", "[".repeat(50_000), "]".repeat(50_000));
    files.last_mut().unwrap().1 = text
        .replacen("[{", &format!("[{{\"Deep\":{deep},"), 1)
        .into_bytes();
    env.reject(
        "deep-json",
        &tar_of(&files),
        400,
        BAD_JSON,
        &["manifest.json"],
    );
}
