//! OCI layouts: plain, `./`-prefixed, in a folder, and a multi-platform index (also as
//! skopeo writes it back), pushed byte-exact and read back.

use serde_json::Value;

use crate::support;
use crate::support::archives::{self, Built, OciShape};

use super::readback::*;

#[test]
fn oci_layout_pushes_byte_exact_to_archive_name() {
    let env = env();
    let b = archives::oci_layout(OciShape::Plain, "docker.io/fixture/oci:v1");
    let img = &b.images[0];
    let report = push_ok(&env, "/push", &b.bytes);
    let r = report_image(&report, "fixture/oci");
    assert_eq!(r["manifest_rewritten"], false);
    let (digest, man) = verify_image(&env.registry, "fixture/oci", "v1", img);
    assert_eq!(
        Some(digest.clone()),
        img.manifest_digest,
        "gzip layers: manifest must pass byte-exact"
    );
    assert_eq!(r["digest"], digest);
    let layer_digests: Vec<&str> = man["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap())
        .collect();
    assert_eq!(
        layer_digests,
        img.layer_digests
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
    );
    skopeo_copy(&env, "fixture/oci:v1");
}

#[test]
fn oci_layout_dot_slash_gzip_pushes_to_url_name() {
    let env = env();
    let b = archives::oci_layout(OciShape::DotSlash, "docker.io/fixture/oci-dot:v1");
    let img = &b.images[0];
    push_ok(&env, "/push/e2e/oci-dot:d", &b.gzipped());
    let (digest, _) = verify_image(&env.registry, "e2e/oci-dot", "d", img);
    assert_eq!(Some(digest), img.manifest_digest);
    // by the names it carries, too
    push_ok(&env, "/push", &b.gzipped());
    verify_image(&env.registry, "fixture/oci-dot", "v1", img);
}

#[test]
fn oci_layout_in_a_folder_pushes() {
    let env = env();
    let b = archives::oci_layout(OciShape::Folder, "docker.io/fixture/oci-folder:v1");
    let img = &b.images[0];
    push_ok(&env, "/push", &b.bytes);
    let (digest, _) = verify_image(&env.registry, "fixture/oci-folder", "v1", img);
    assert_eq!(Some(digest), img.manifest_digest);
    push_ok(&env, "/push/e2e/oci-folder:f", &b.bytes);
    verify_image(&env.registry, "e2e/oci-folder", "f", img);
    skopeo_copy(&env, "e2e/oci-folder:f");
}

fn verify_multi_platform(env: &Env, repository: &str, tag: &str, b: &Built, report: &Value) {
    let idx = b.index.as_ref().unwrap();
    let r = report_image(report, repository);
    assert_eq!(r["digest"], idx.digest);
    assert_eq!(r["media_type"], archives::OCI_INDEX);
    let children = r["manifests"].as_array().expect("manifests in report");
    assert_eq!(children.len(), 2, "{r:#}");
    let (bytes, content_type) = env.registry.manifest(repository, tag).unwrap();
    assert_eq!(content_type, archives::OCI_INDEX);
    assert_eq!(bytes, idx.bytes, "index must be pushed byte-exact");
    assert_eq!(support::sha256(&bytes), idx.digest);
    for img in &b.images {
        let d = img.manifest_digest.clone().unwrap();
        assert!(
            children
                .iter()
                .any(|c| c["digest"] == d && c["platform"] == img.platform.clone().unwrap()),
            "{r:#}"
        );
        let (digest, _) = verify_image(&env.registry, repository, &d, img);
        assert_eq!(digest, d);
    }
    let raw =
        support::skopeo_inspect(&env.registry, &format!("{repository}:{tag}"), &["--raw"]).unwrap();
    assert_eq!(raw["manifests"].as_array().unwrap().len(), 2);
    skopeo_copy(env, &format!("{repository}:{tag}"));
}

#[test]
fn multi_platform_index_pushes_byte_exact_to_archive_name() {
    let env = env();
    let b = archives::oci_multi_platform();
    let report = push_ok(&env, "/push", &b.bytes);
    verify_multi_platform(&env, "fixture/multi", "v1", &b, &report);
    assert_tagged(&env, "fixture/multi", &["v1"]);
}

#[test]
fn multi_platform_index_gzip_pushes_to_url_name() {
    let env = env();
    let b = archives::oci_multi_platform();
    let report = push_ok(&env, "/push/e2e/multi:mp", &b.gzipped());
    verify_multi_platform(&env, "e2e/multi", "mp", &b, &report);
}

/// A multi-platform oci-archive written by a real tool: skopeo copies the index hoist pushed
/// (`--all`) into an oci-archive; pushing that archive back through hoist, gzipped, to another
/// repository must give the same index digest, with every child manifest present.
#[test]
fn multi_platform_oci_archive_written_by_skopeo_round_trips() {
    let env = env();
    let b = archives::oci_multi_platform();
    let first = push_ok(&env, "/push/e2e/mp-src:v1", &b.bytes);
    let index = first["images"][0]["digest"].as_str().unwrap().to_string();
    let dir = support::scratch();
    let archive = support::p(&dir, "multi.tar");
    support::run(std::process::Command::new("skopeo").args([
        "copy",
        "--all",
        "--src-tls-verify=false",
        &format!("docker://{}/e2e/mp-src:v1", env.registry.host()),
        &format!("oci-archive:{}:v1", archive.display()),
    ]))
    .unwrap();
    let gz = archives::gzip(&std::fs::read(&archive).unwrap());
    let second = push_ok(&env, "/push/e2e/mp-dst:v2", &gz);
    assert_eq!(second["images"][0]["digest"], index.as_str(), "{second:#}");
    let children = second["images"][0]["manifests"].as_array().unwrap();
    assert!(!children.is_empty());
    for c in children {
        let d = c["digest"].as_str().unwrap();
        env.registry.manifest("e2e/mp-dst", d).unwrap();
    }
    assert_tagged(&env, "e2e/mp-dst", &["v2"]);
}
