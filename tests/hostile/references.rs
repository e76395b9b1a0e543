//! References: invalid names and tags in the URL, the query or the archive, missing names
//! and tags, and one URL tag for several images.

use serde_json::{Value, json};

use super::env::*;
use crate::support::archives::*;

#[test]
fn uppercase_repository_in_url_is_rejected() {
    let mut env = Env::new();
    let body = Oci::valid("upper").archive();
    env.reject_at(
        "/push/UPPER/case:t",
        "UPPER/case",
        "url-upper",
        &body,
        400,
        REFERENCE_INVALID,
        &[],
    );
}

#[test]
fn invalid_tag_in_url_is_rejected() {
    let mut env = Env::new();
    let body = Oci::valid("bad-tag").archive();
    env.reject_at(
        "/push/hostile/bad-tag:-bad",
        "hostile/bad-tag",
        "url-bad-tag",
        &body,
        400,
        REFERENCE_INVALID,
        &["-bad"],
    );
}

#[test]
fn invalid_tag_in_query_is_rejected() {
    let mut env = Env::new();
    let body = Oci::valid("bad-query-tag").archive();
    env.reject_at(
        "/push/hostile/bad-query:t?tag=-bad",
        "hostile/bad-query",
        "query-bad-tag",
        &body,
        400,
        REFERENCE_INVALID,
        &["-bad"],
    );
}

#[test]
fn invalid_repo_tag_in_archive_is_rejected() {
    let mut env = Env::new();
    let body = Docker::valid("bad-repo-tag", json!(["hostile/BAD:1"])).archive();
    env.reject_at(
        "/push",
        "hostile/BAD",
        "repo-tags-invalid",
        &body,
        400,
        REFERENCE_INVALID,
        &["hostile/BAD"],
    );
}

#[test]
fn unnamed_image_without_url_reference_is_rejected() {
    let mut env = Env::new();
    let body = Docker::valid("no-name", Value::Null).archive();
    env.reject_at(
        "/push",
        "hostile/no-name",
        "no-name",
        &body,
        400,
        REFERENCE_MISSING,
        &[],
    );
}

#[test]
fn untagged_image_without_url_tag_is_rejected() {
    let mut env = Env::new();
    let mut oci = Oci::valid("no-tag");
    oci.index["manifests"][0]
        .as_object_mut()
        .unwrap()
        .remove("annotations");
    env.reject_at(
        "/push/hostile/no-tag",
        "hostile/no-tag",
        "no-tag",
        &oci.archive(),
        400,
        REFERENCE_MISSING,
        &[],
    );
}

#[test]
fn url_tag_with_several_images_is_ambiguous() {
    let mut env = Env::new();
    let a = Docker::valid("first", json!(["hostile/first:1"]));
    let b = Docker::valid("second", json!(["hostile/second:1"]));
    let mut files = a.layers.clone();
    files.extend(b.layers.clone());
    files.push((a.config_name(), a.config_bytes()));
    files.push((b.config_name(), b.config_bytes()));
    let both = json!([a.manifest[0], b.manifest[0]]);
    files.push(("manifest.json".into(), serde_json::to_vec(&both).unwrap()));
    env.reject("ambiguous", &tar_of(&files), 400, REFERENCE_AMBIGUOUS, &[]);
}
