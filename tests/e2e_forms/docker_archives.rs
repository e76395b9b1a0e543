//! Docker archives: `docker save` (legacy with symlinked or hardlinked duplicate layers, 25+
//! with an OCI layout inside, several images in one), and podman's, pushed and read back.

use crate::support;
use crate::support::archives::{self, DupLink};

use super::readback::*;

#[test]
fn legacy_symlink_dup_pushes_to_url_name() {
    let env = env();
    let b = archives::legacy(DupLink::Symlink);
    let report = push_ok(&env, "/push/e2e/legacy:t1?tag=t2", &b.bytes);
    let r = report_image(&report, "e2e/legacy");
    let mut tags = tags_of(r);
    tags.sort();
    assert_eq!(tags, ["t1", "t2"]);
    assert_eq!(r["manifest_rewritten"], true);
    let (digest, man) = verify_image(&env.registry, "e2e/legacy", "t1", &b.images[0]);
    assert_eq!(r["digest"], digest);
    assert_docker_gzip(&man);
    assert_eq!(
        man["layers"][0]["digest"], man["layers"][2]["digest"],
        "duplicate layer compresses the same"
    );
    assert_tagged(&env, "e2e/legacy", &["t1", "t2"]);
    assert!(
        env.registry.tags("fixture/legacy").is_empty(),
        "archive name used despite URL name"
    );
    skopeo_copy(&env, "e2e/legacy:t2");
}

#[test]
fn legacy_symlink_dup_gzip_pushes_to_archive_name() {
    let env = env();
    let b = archives::legacy(DupLink::Symlink);
    let report = push_ok(&env, "/push", &b.gzipped());
    let r = report_image(&report, "fixture/legacy");
    assert_eq!(tags_of(r), ["v1"]);
    let (digest, _) = verify_image(&env.registry, "fixture/legacy", "v1", &b.images[0]);
    assert_eq!(r["digest"], digest);
    assert_tagged(&env, "fixture/legacy", &["v1"]);
    skopeo_copy(&env, "fixture/legacy:v1");
}

#[test]
fn legacy_hardlink_dup_pushes() {
    let env = env();
    let b = archives::legacy(DupLink::Hardlink);
    push_ok(&env, "/push/e2e/hardlink:v2", &b.bytes);
    verify_image(&env.registry, "e2e/hardlink", "v2", &b.images[0]);
    push_ok(&env, "/push", &b.bytes);
    verify_image(&env.registry, "fixture/legacy", "v1", &b.images[0]);
}

#[test]
fn podman_archive_pushes_to_url_name() {
    let env = env();
    let b = archives::podman("localhost/fixture/podman:v1");
    let report = push_ok(&env, "/push/e2e/podman:p1", &b.bytes);
    let (digest, man) = verify_image(&env.registry, "e2e/podman", "p1", &b.images[0]);
    assert_eq!(report_image(&report, "e2e/podman")["digest"], digest);
    assert_docker_gzip(&man);
    skopeo_copy(&env, "e2e/podman:p1");
}

#[test]
fn podman_archive_zstd_pushes_to_archive_name_without_localhost() {
    let env = env();
    let b = archives::podman("localhost/fixture/podman:v1");
    let report = push_ok(&env, "/push", &b.zstded());
    report_image(&report, "fixture/podman");
    verify_image(&env.registry, "fixture/podman", "v1", &b.images[0]);
    assert_tagged(&env, "fixture/podman", &["v1"]);
}

#[test]
fn podman_archive_multipart_with_tag_field() {
    let env = env();
    let b = archives::podman("localhost/fixture/podman:v1");
    let dir = support::scratch();
    let file = support::p(&dir, "podman.tar");
    std::fs::write(&file, &b.bytes).unwrap();
    let answer =
        support::push_multipart(&env.hoist, "/push/e2e/multipart", &file, &[("tag", "mp")])
            .unwrap();
    assert_eq!(answer.status, 201, "{:#}", answer.body);
    verify_image(&env.registry, "e2e/multipart", "mp", &b.images[0]);
    assert_tagged(&env, "e2e/multipart", &["mp", "v1"]);
}

#[test]
fn docker25_pushes_to_url_name() {
    let env = env();
    let b = archives::docker25();
    let report = push_ok(&env, "/push/e2e/d25:x", &b.bytes);
    let r = report_image(&report, "e2e/d25");
    assert_eq!(r["manifest_rewritten"], true);
    let (digest, man) = verify_image(&env.registry, "e2e/d25", "x", &b.images[0]);
    assert_eq!(r["digest"], digest);
    assert_docker_gzip(&man);
    skopeo_copy(&env, "e2e/d25:x");
}

#[test]
fn docker25_gzip_pushes_to_archive_name() {
    let env = env();
    let b = archives::docker25();
    let report = push_ok(&env, "/push", &b.gzipped());
    let r = report_image(&report, "fixture/d25");
    assert_eq!(tags_of(r), ["v1"]);
    verify_image(&env.registry, "fixture/d25", "v1", &b.images[0]);
}

#[test]
fn docker25_keep_keeps_the_archive_manifest_digest() {
    let env = env();
    let b = archives::docker25();
    let img = &b.images[0];
    let want = img.manifest_digest.clone().unwrap();
    let report = push_ok(&env, "/push/e2e/d25keep:k?layer_compression=keep", &b.bytes);
    let r = report_image(&report, "e2e/d25keep");
    assert_eq!(r["digest"], want);
    assert_eq!(r["manifest_rewritten"], false);
    let (digest, man) = verify_image(&env.registry, "e2e/d25keep", "k", img);
    assert_eq!(digest, want);
    assert_eq!(man["mediaType"], archives::OCI_MANIFEST);
    for (i, l) in man["layers"].as_array().unwrap().iter().enumerate() {
        assert_eq!(l["mediaType"], archives::OCI_LAYER_TAR);
        assert_eq!(l["digest"], img.diff_ids[i]);
    }
    skopeo_copy(&env, "e2e/d25keep:k");
}

#[test]
fn multi_image_archive_tags_both_repositories() {
    let env = env();
    let b = archives::legacy_multi();
    let report = push_ok(&env, "/push", &b.bytes);
    for img in &b.images {
        let r = report_image(&report, &img.repository);
        assert_eq!(tags_of(r), ["v1"]);
        let (digest, _) = verify_image(&env.registry, &img.repository, "v1", img);
        assert_eq!(r["digest"], digest);
        assert_tagged(&env, &img.repository, &["v1"]);
    }
    assert_eq!(
        b.images[0].diff_ids[0], b.images[1].diff_ids[0],
        "shared base"
    );
    skopeo_copy(&env, "fixture/two:v1");
}

#[test]
fn multi_image_archive_with_one_url_tag_is_ambiguous() {
    let env = env();
    let b = archives::legacy_multi();
    let answer = support::push_bytes(&env.hoist, "/push/e2e/both:t", &b.bytes).unwrap();
    assert_eq!(answer.status, 400, "{:#}", answer.body);
    assert_eq!(answer.code(), "REFERENCE_AMBIGUOUS", "{:#}", answer.body);
    assert!(env.registry.tags("e2e/both").is_empty());
}
