//! Completeness: a layer, manifest or nested index child that the archive lists but lacks
//! (and the registry does not have) is BLOB_MISSING.

use serde_json::Value;

use super::bodies::nested_index;
use super::env::*;
use crate::support::archives::*;

#[test]
fn layer_absent_from_archive_and_registry_is_rejected() {
    let mut env = Env::new();
    let oci = Oci::valid("missing-layer");
    let path = blob_path(&oci.layer_digest(0));
    let files: Vec<_> = oci
        .files()
        .into_iter()
        .filter(|(n, _)| *n != path)
        .collect();
    env.reject(
        "missing-layer",
        &tar_of(&files),
        400,
        BLOB_MISSING,
        &[&short(&oci.layer_digest(0))],
    );
}

#[test]
fn docker_layer_absent_from_archive_is_rejected() {
    let mut env = Env::new();
    let d = Docker::valid("missing-docker-layer", Value::Null);
    let name = d.layers[0].0.clone();
    env.reject(
        "missing-docker-layer",
        &tar_of(&d.metadata_files()),
        400,
        BLOB_MISSING,
        &[&name[..12]],
    );
}

#[test]
fn manifest_listed_in_index_but_absent_is_rejected() {
    let mut env = Env::new();
    let oci = Oci::valid("missing-manifest");
    let path = blob_path(&oci.manifest_digest());
    let files: Vec<_> = oci
        .files()
        .into_iter()
        .filter(|(n, _)| *n != path)
        .collect();
    env.reject(
        "missing-manifest",
        &tar_of(&files),
        400,
        BLOB_MISSING,
        &[&short(&oci.manifest_digest())],
    );
}

#[test]
fn index_child_manifest_absent_is_rejected() {
    let mut env = Env::new();
    let (oci, absent) = nested_index(true);
    let absent = short(&absent.unwrap());
    env.reject(
        "missing-child-manifest",
        &oci.archive(),
        400,
        BLOB_MISSING,
        &[&absent],
    );
}
