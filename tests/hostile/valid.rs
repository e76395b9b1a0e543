//! Valid images: what the hostile variants are built from, and the legitimate shapes hostile
//! cases imitate (symlinked and hardlinked layers, forward links, `./` prefixes, multi-member
//! gzip, a PAX header before a GNU long name, a nested index).

use serde_json::json;

use super::bodies::{docker_layer_via, nested_index};
use super::env::Env;
use crate::support::archives::*;

#[test]
fn valid_oci_layout_is_accepted() {
    let env = Env::new();
    let oci = Oci::valid("valid");
    let ans = env.accept("/push/hostile/valid-oci:t", &oci.archive());
    assert_eq!(env.reg.tags("hostile/valid-oci"), ["t"]);
    assert_eq!(
        ans.body["images"][0]["digest"],
        json!(oci.manifest_digest()),
        "{ans:?}"
    );
    assert!(env.reg.has_blob("hostile/valid-oci", &oci.layer_digest(0)));
}

#[test]
fn valid_gzip_oci_layout_is_accepted() {
    let env = Env::new();
    env.accept(
        "/push/hostile/valid-gz:t",
        &gzip(&Oci::valid("valid").archive()),
    );
    assert_eq!(env.reg.tags("hostile/valid-gz"), ["t"]);
}

#[test]
fn valid_docker_archive_is_accepted() {
    let env = Env::new();
    let docker = Docker::valid("valid", json!(["hostile/named:1"]));
    env.accept("/push/hostile/valid-docker:t", &docker.archive());
    assert_eq!(env.reg.tags("hostile/valid-docker"), ["t"]);
}

#[test]
fn valid_docker_archive_is_accepted_under_its_own_name() {
    let env = Env::new();
    let docker = Docker::valid("valid", json!(["hostile/named:1"]));
    env.accept("/push", &docker.archive());
    assert_eq!(env.reg.tags("hostile/named"), ["1"]);
}

#[test]
fn layer_reached_by_symlink_to_earlier_entry_is_accepted() {
    let env = Env::new();
    let body = docker_layer_via("layer2/layer.tar", |t, layer| {
        t.file("layer1/layer.tar", layer)
            .symlink("layer2/layer.tar", "../layer1/layer.tar");
    });
    env.accept("/push/hostile/symlink-ok:t", &body);
    assert_eq!(env.reg.tags("hostile/symlink-ok"), ["t"]);
}

#[test]
fn layer_reached_by_forward_symlink_is_accepted() {
    let env = Env::new();
    let body = docker_layer_via("layer2/layer.tar", |t, layer| {
        t.symlink("layer2/layer.tar", "../layer1/layer.tar")
            .file("layer1/layer.tar", layer);
    });
    env.accept("/push/hostile/forward-symlink-ok:t", &body);
    assert_eq!(env.reg.tags("hostile/forward-symlink-ok"), ["t"]);
}

#[test]
fn layer_reached_by_hardlink_to_earlier_entry_is_accepted() {
    let env = Env::new();
    let body = docker_layer_via("layer2/layer.tar", |t, layer| {
        t.file("layer1/layer.tar", layer)
            .hardlink("layer2/layer.tar", "layer1/layer.tar");
    });
    env.accept("/push/hostile/hardlink-ok:t", &body);
    assert_eq!(env.reg.tags("hostile/hardlink-ok"), ["t"]);
}

#[test]
fn dot_slash_prefixed_layout_is_accepted() {
    let env = Env::new();
    let files: Vec<_> = Oci::valid("dot")
        .files()
        .into_iter()
        .map(|(n, d)| (format!("./{n}"), d))
        .collect();
    env.accept("/push/hostile/dot-slash-ok:t", &tar_of(&files));
    assert_eq!(env.reg.tags("hostile/dot-slash-ok"), ["t"]);
}

#[test]
fn multi_member_gzip_archive_is_accepted() {
    let env = Env::new();
    let archive = Oci::valid("multi").archive();
    let (a, b) = archive.split_at(archive.len() / 2);
    let mut body = gzip(a);
    body.extend(gzip(b));
    env.accept("/push/hostile/multi-member-ok:t", &body);
    assert_eq!(env.reg.tags("hostile/multi-member-ok"), ["t"]);
}

/// GHSA-3pv8-6f4r-ffg2 / RUSTSEC-2026-0145: a PAX `x` header followed by a GNU `L` long name.
/// The PAX size belongs to the file, not to the `L` entry; a parser that applies it to `L`
/// desyncs and reads the smuggled header (a bogus `index.json`) hidden in the file's data.
#[test]
fn pax_then_gnu_long_name_stays_in_sync() {
    let env = Env::new();
    let oci = Oci::valid("in-sync");
    let long = format!("extra/{}.txt", "l".repeat(150));
    let mut data = header(b"index.json", b'0', 512, b"").to_vec();
    data.extend_from_slice(&[b'{'; 512]);
    let mut t = Tar::new();
    t.pax(b'x', &[("size", b"1024")])
        .long_name(long.as_bytes())
        .entry(&long.as_bytes()[..100], b'0', 1024, b"", &data)
        .files(&oci.files());
    let ans = env.accept("/push/hostile/pax-long-name-ok:t", &t.finish());
    assert_eq!(env.reg.tags("hostile/pax-long-name-ok"), ["t"]);
    assert_eq!(
        ans.body["images"][0]["digest"],
        json!(oci.manifest_digest()),
        "{ans:?}"
    );
}

#[test]
fn nested_index_with_every_child_present_is_accepted() {
    let env = Env::new();
    let (oci, _) = nested_index(false);
    env.accept("/push/hostile/nested-ok:t", &oci.archive());
    assert_eq!(env.reg.tags("hostile/nested-ok"), ["t"]);
}
