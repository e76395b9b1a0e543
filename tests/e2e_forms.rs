//! Every archive form, pushed through a real `hoist serve` into a real registry and read back
//! with the registry API and skopeo. The first group only checks that the fixtures in
//! `archives/` are shaped like the tools' output; it needs neither hoist nor a registry.

mod support;

use std::io::Read;
use std::process::Command;

use serde_json::Value;
use support::archives::{self, Built, DupLink, ImageFacts, OciShape};

// ---------------------------------------------------------------------------------------------
// Fixture shape checks.

fn json_entry(b: &Built, name: &str) -> Value {
    serde_json::from_slice(
        &archives::entry_bytes(&b.bytes, name).unwrap_or_else(|| panic!("no {name}")),
    )
    .unwrap()
}

/// Every regular `blobs/sha256/<hex>` entry (under `prefix`) hashes to its name.
fn assert_blobs_named_by_digest(b: &Built, prefix: &str) -> usize {
    let mut n = 0;
    for (name, kind, _) in b.entries() {
        if let Some(hex) = name.strip_prefix(&format!("{prefix}blobs/sha256/"))
            && kind == '0'
            && !hex.is_empty()
        {
            let data = archives::entry_bytes(&b.bytes, &name).unwrap();
            assert_eq!(support::sha256(&data), format!("sha256:{hex}"), "{name}");
            n += 1;
        }
    }
    n
}

fn assert_config_diff_ids(config: &[u8], img: &ImageFacts) {
    let v: Value = serde_json::from_slice(config).unwrap();
    let ids: Vec<String> = v["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, img.diff_ids);
}

#[test]
fn fixture_legacy_symlink_is_shaped_like_docker_save() {
    let b = archives::legacy(DupLink::Symlink);
    let entries = b.entries();
    let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
    let n = names.len();
    assert_eq!(&names[n - 2..], &["manifest.json", "repositories"]);
    // walk order: per directory, lexical
    let mut sorted = names[..n - 2].to_vec();
    sorted.sort_by_key(|s| {
        s.trim_end_matches('/')
            .split('/')
            .map(String::from)
            .collect::<Vec<_>>()
    });
    assert_eq!(sorted, names[..n - 2].to_vec());
    let img = &b.images[0];
    assert_eq!(img.archive_name, "fixture/legacy:v1");
    assert_eq!(img.diff_ids.len(), 3);
    assert_eq!(img.diff_ids[0], img.diff_ids[2]);
    let m = json_entry(&b, "manifest.json");
    assert_eq!(
        m[0]["Config"],
        format!("{}.json", archives::hex_of(&img.config_digest))
    );
    assert_eq!(m[0]["RepoTags"][0], "fixture/legacy:v1");
    let layers: Vec<&str> = m[0]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(layers.len(), 3);
    let config = archives::entry_bytes(&b.bytes, m[0]["Config"].as_str().unwrap()).unwrap();
    assert_eq!(support::sha256(&config), img.config_digest);
    assert_config_diff_ids(&config, img);
    for (i, l) in layers.iter().take(2).enumerate() {
        let data = archives::entry_bytes(&b.bytes, l).unwrap();
        assert_eq!(support::sha256(&data), img.diff_ids[i]);
    }
    // the duplicate is a symlink to the first, which comes earlier in the stream
    let dup = entries.iter().find(|e| e.0 == layers[2]).unwrap();
    assert_eq!(dup.1, '2');
    assert_eq!(dup.2, format!("../{}", layers[0]));
    let pos = |name: &str| names.iter().position(|n| *n == name).unwrap();
    assert!(pos(layers[0]) < pos(layers[2]));
    assert!(names.contains(&format!("{}/", layers[0].trim_end_matches("/layer.tar")).as_str()));
    assert!(
        names.iter().any(|n| n.ends_with("/VERSION")) && names.iter().any(|n| n.ends_with("/json"))
    );
    let big = archives::entry_bytes(&b.bytes, layers[1]).unwrap();
    assert!(
        big.len() > 1_000_000 && archives::gzip(&big).len() > 1_000_000,
        "big layer is incompressible"
    );
    let repos = json_entry(&b, "repositories");
    assert_eq!(
        repos["fixture/legacy"]["v1"],
        layers[2].trim_end_matches("/layer.tar")
    );
    // deterministic
    assert_eq!(archives::legacy(DupLink::Symlink).bytes, b.bytes);
}

#[test]
fn fixture_legacy_hardlink_links_to_first_layer() {
    let b = archives::legacy(DupLink::Hardlink);
    let m = json_entry(&b, "manifest.json");
    let layers: Vec<&str> = m[0]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    let entries = b.entries();
    let dup = entries.iter().find(|e| e.0 == layers[2]).unwrap();
    assert_eq!(dup.1, '1');
    assert_eq!(dup.2, layers[0]);
}

#[test]
fn fixture_podman_is_shaped_like_containers_image() {
    let b = archives::podman("localhost/fixture/podman:v1");
    let img = &b.images[0];
    assert_eq!(
        (img.repository.as_str(), img.tag.as_str()),
        ("fixture/podman", "v1")
    );
    let entries = b.entries();
    let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
    for (i, d) in img.diff_ids.iter().enumerate() {
        assert_eq!(names[i], format!("{}.tar", archives::hex_of(d)));
        assert_eq!(
            support::sha256(&archives::entry_bytes(&b.bytes, names[i]).unwrap()),
            *d
        );
    }
    assert_eq!(
        names[3],
        format!("{}.json", archives::hex_of(&img.config_digest))
    );
    assert_config_diff_ids(&archives::entry_bytes(&b.bytes, names[3]).unwrap(), img);
    assert_eq!(
        &names[names.len() - 2..],
        &["manifest.json", "repositories"]
    );
    let links: Vec<_> = entries.iter().filter(|e| e.1 == '2').collect();
    assert_eq!(links.len(), 3);
    for (l, d) in links.iter().zip(&img.diff_ids) {
        assert!(l.0.ends_with("/layer.tar"));
        assert_eq!(l.2, format!("../{}.tar", archives::hex_of(d)));
    }
    assert!(
        entries.iter().all(|e| e.1 != '5'),
        "containers/image writes no directory entries"
    );
    let m = json_entry(&b, "manifest.json");
    assert_eq!(m[0]["RepoTags"][0], "localhost/fixture/podman:v1");
    assert_eq!(m[0]["Layers"][0], names[0]);
}

#[test]
fn fixture_docker25_is_shaped_like_docker_save_25() {
    let b = archives::docker25();
    let img = &b.images[0];
    let names: Vec<String> = b.entries().into_iter().map(|e| e.0).collect();
    assert_eq!(&names[..2], &["blobs/", "blobs/sha256/"]);
    assert_eq!(
        &names[names.len() - 4..],
        &["index.json", "manifest.json", "oci-layout", "repositories"]
    );
    let blobs = &names[2..names.len() - 4];
    assert_eq!(blobs.len(), 4);
    assert!(blobs.windows(2).all(|w| w[0] < w[1]));
    assert_eq!(assert_blobs_named_by_digest(&b, ""), 4);
    let index = json_entry(&b, "index.json");
    let d = &index["manifests"][0];
    assert_eq!(d["digest"], img.manifest_digest.clone().unwrap());
    assert_eq!(
        d["annotations"]["io.containerd.image.name"],
        "docker.io/fixture/d25:v1"
    );
    assert_eq!(d["annotations"]["org.opencontainers.image.ref.name"], "v1");
    let man = json_entry(
        &b,
        &format!(
            "blobs/sha256/{}",
            archives::hex_of(d["digest"].as_str().unwrap())
        ),
    );
    assert_eq!(man["mediaType"], archives::OCI_MANIFEST);
    assert_eq!(man["config"]["digest"], img.config_digest);
    for (i, l) in man["layers"].as_array().unwrap().iter().enumerate() {
        assert_eq!(l["mediaType"], archives::OCI_LAYER_TAR);
        assert_eq!(l["digest"], img.diff_ids[i]);
    }
    let m = json_entry(&b, "manifest.json");
    assert_eq!(
        m[0]["Config"],
        format!("blobs/sha256/{}", archives::hex_of(&img.config_digest))
    );
    assert_eq!(
        m[0]["Layers"][1],
        format!("blobs/sha256/{}", archives::hex_of(&img.diff_ids[1]))
    );
    assert_eq!(m[0]["RepoTags"][0], "fixture/d25:v1");
}

#[test]
fn fixture_oci_layouts_have_their_prefixes() {
    for (shape, prefix) in [
        (OciShape::Plain, ""),
        (OciShape::DotSlash, "./"),
        (OciShape::Folder, "myimage/"),
    ] {
        let b = archives::oci_layout(shape, "docker.io/fixture/oci:v1");
        let names: Vec<String> = b.entries().into_iter().map(|e| e.0).collect();
        assert!(
            names.iter().all(|n| n.starts_with(prefix)),
            "{shape:?}: {names:?}"
        );
        assert_eq!(assert_blobs_named_by_digest(&b, prefix), 4, "{shape:?}");
        let index = json_entry(&b, &format!("{prefix}index.json"));
        let img = &b.images[0];
        assert_eq!(
            index["manifests"][0]["digest"],
            img.manifest_digest.clone().unwrap()
        );
        let man = json_entry(
            &b,
            &format!(
                "{prefix}blobs/sha256/{}",
                archives::hex_of(img.manifest_digest.as_ref().unwrap())
            ),
        );
        assert_eq!(man["layers"][0]["mediaType"], archives::OCI_LAYER_GZIP);
        assert_eq!(man["layers"][0]["digest"], img.layer_digests[0]);
        assert_eq!(
            (img.repository.as_str(), img.tag.as_str()),
            ("fixture/oci", "v1")
        );
        if shape == OciShape::Folder {
            assert_eq!(
                &names[..3],
                &["myimage/", "myimage/index.json", "myimage/oci-layout"]
            );
        } else {
            assert_eq!(names.last().unwrap(), &format!("{prefix}oci-layout"));
        }
        if shape == OciShape::DotSlash {
            assert_eq!(names[0], "./");
        }
    }
}

#[test]
fn fixture_multi_platform_nests_an_index() {
    let b = archives::oci_multi_platform();
    let idx = b.index.as_ref().unwrap();
    assert_eq!(assert_blobs_named_by_digest(&b, ""), 8); // 3 layers, 2 configs, 2 manifests, 1 index
    let top = json_entry(&b, "index.json");
    assert_eq!(top["manifests"].as_array().unwrap().len(), 1);
    assert_eq!(top["manifests"][0]["mediaType"], archives::OCI_INDEX);
    assert_eq!(top["manifests"][0]["digest"], idx.digest);
    assert_eq!(
        top["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"],
        "v1"
    );
    let nested: Value = serde_json::from_slice(&idx.bytes).unwrap();
    let platforms: Vec<String> = nested["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            format!(
                "{}/{}",
                m["platform"]["os"].as_str().unwrap(),
                m["platform"]["architecture"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
    assert_eq!(b.images[0].layer_digests[0], b.images[1].layer_digests[0]);
    assert_ne!(b.images[0].config_digest, b.images[1].config_digest);
}

#[test]
fn fixture_multi_image_shares_a_layer_directory() {
    let b = archives::legacy_multi();
    let m = json_entry(&b, "manifest.json");
    assert_eq!(m.as_array().unwrap().len(), 2);
    assert_eq!(m[0]["RepoTags"][0], "fixture/one:v1");
    assert_eq!(m[1]["RepoTags"][0], "fixture/two:v1");
    assert_eq!(m[0]["Layers"][0], m[1]["Layers"][0]);
    assert_ne!(m[0]["Layers"][1], m[1]["Layers"][1]);
    let names: Vec<String> = b.entries().into_iter().map(|e| e.0).collect();
    let shared = m[0]["Layers"][0].as_str().unwrap();
    assert_eq!(names.iter().filter(|n| *n == shared).count(), 1);
}

// ---------------------------------------------------------------------------------------------
// End to end.

struct Env {
    registry: support::Registry,
    hoist: support::Hoist,
}

fn env() -> Env {
    let registry = support::Registry::start().expect("registry");
    let hoist = support::Hoist::start(&registry).expect("hoist");
    Env { registry, hoist }
}

/// Pushes `body` and expects 201 with a JSON report; returns the report.
fn push_ok(env: &Env, path: &str, body: &[u8]) -> Value {
    let answer = support::push_bytes(&env.hoist, path, body).expect("curl");
    assert_eq!(answer.status, 201, "push {path}: {:#}", answer.body);
    assert!(
        answer.body["images"].is_array(),
        "report without images: {:#}",
        answer.body
    );
    answer.body
}

/// The report's entry for `repository`.
fn report_image<'a>(report: &'a Value, repository: &str) -> &'a Value {
    report["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["repository"] == repository)
        .unwrap_or_else(|| panic!("no image {repository} in report {report:#}"))
}

fn tags_of(report_img: &Value) -> Vec<String> {
    report_img["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect()
}

/// A layer blob's uncompressed bytes, by its media type (checking the magic agrees).
fn uncompressed(media_type: &str, blob: &[u8]) -> Vec<u8> {
    if media_type.ends_with("gzip") {
        assert_eq!(&blob[..2], &[0x1f, 0x8b], "{media_type} blob is not gzip");
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(blob)
            .read_to_end(&mut out)
            .unwrap();
        out
    } else if media_type.ends_with("zstd") {
        assert_eq!(
            &blob[..4],
            &[0x28, 0xb5, 0x2f, 0xfd],
            "{media_type} blob is not zstd"
        );
        zstd::decode_all(blob).unwrap()
    } else {
        assert!(
            media_type == archives::OCI_LAYER_TAR
                || media_type == "application/vnd.docker.image.rootfs.diff.tar",
            "unexpected layer media type {media_type}"
        );
        blob.to_vec()
    }
}

/// Reads `repository:reference` back from the registry and checks it is `img`: config bytes
/// unchanged, every layer decompresses to its diffID, skopeo agrees. Returns the manifest
/// digest and the manifest.
fn verify_image(
    reg: &support::Registry,
    repository: &str,
    reference: &str,
    img: &ImageFacts,
) -> (String, Value) {
    let (bytes, content_type) = reg.manifest(repository, reference).expect("manifest");
    let digest = support::sha256(&bytes);
    let man: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        man["mediaType"].as_str().unwrap_or(""),
        content_type,
        "{repository}:{reference}"
    );
    assert_eq!(
        man["config"]["digest"], img.config_digest,
        "{repository}:{reference} config digest"
    );
    let config = reg
        .blob(repository, &img.config_digest)
        .expect("config blob");
    assert_eq!(config, img.config, "config bytes changed");
    let layers = man["layers"].as_array().unwrap();
    assert_eq!(layers.len(), img.diff_ids.len());
    for (i, l) in layers.iter().enumerate() {
        let d = l["digest"].as_str().unwrap();
        let blob = reg.blob(repository, d).expect("layer blob");
        assert_eq!(support::sha256(&blob), d);
        assert_eq!(
            l["size"].as_u64().unwrap(),
            blob.len() as u64,
            "layer {i} size"
        );
        let plain = uncompressed(l["mediaType"].as_str().unwrap(), &blob);
        assert_eq!(
            support::sha256(&plain),
            img.diff_ids[i],
            "layer {i} of {repository}:{reference}"
        );
    }
    let sep = if reference.starts_with("sha256:") {
        "@"
    } else {
        ":"
    };
    let full = format!("{repository}{sep}{reference}");
    let inspect = support::skopeo_inspect(reg, &full, &[]).expect("skopeo inspect");
    assert_eq!(inspect["Digest"], digest);
    let cfg = support::skopeo_inspect(reg, &full, &["--config"]).expect("skopeo --config");
    assert_eq!(cfg["rootfs"]["diff_ids"], serde_json::json!(img.diff_ids));
    (digest, man)
}

fn assert_tagged(env: &Env, repository: &str, tags: &[&str]) {
    let have = env.registry.tags(repository);
    for t in tags {
        assert!(
            have.iter().any(|h| h == t),
            "{repository} lacks tag {t}: {have:?}"
        );
    }
}

fn skopeo_copy(env: &Env, reference: &str) {
    let dir = support::scratch();
    support::run(Command::new("skopeo").args([
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{}/{reference}", env.registry.host()),
        &format!("oci:{}:t", dir.path().join("out").display()),
    ]))
    .expect("skopeo copy");
}

/// Layers pushed with the default `layer_compression` are gzip, in a docker schema 2 manifest
/// (DESIGN: "docker schema 2 for docker sources with gzip").
fn assert_docker_gzip(man: &Value) {
    assert_eq!(
        man["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
    for l in man["layers"].as_array().unwrap() {
        assert_eq!(
            l["mediaType"],
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
        );
    }
}

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

/// Writes every fixture to `$HOIST_FIXTURE_DIR` for inspection with other tools
/// (`skopeo inspect docker-archive:…`, `docker load`): `cargo test --test e2e_forms -- --ignored dump`.
#[test]
#[ignore = "a tool, not a test: writes the fixtures to $HOIST_FIXTURE_DIR"]
fn dump_fixtures() {
    let dir =
        std::path::PathBuf::from(std::env::var("HOIST_FIXTURE_DIR").expect("HOIST_FIXTURE_DIR"));
    std::fs::create_dir_all(&dir).unwrap();
    let all = [
        ("legacy-symlink.tar", archives::legacy(DupLink::Symlink)),
        ("legacy-hardlink.tar", archives::legacy(DupLink::Hardlink)),
        ("legacy-multi.tar", archives::legacy_multi()),
        (
            "podman.tar",
            archives::podman("localhost/fixture/podman:v1"),
        ),
        ("docker25.tar", archives::docker25()),
        (
            "oci-plain.tar",
            archives::oci_layout(OciShape::Plain, "docker.io/fixture/oci:v1"),
        ),
        (
            "oci-dot.tar",
            archives::oci_layout(OciShape::DotSlash, "docker.io/fixture/oci-dot:v1"),
        ),
        (
            "oci-folder.tar",
            archives::oci_layout(OciShape::Folder, "docker.io/fixture/oci-folder:v1"),
        ),
        ("oci-multi.tar", archives::oci_multi_platform()),
    ];
    for (name, b) in all {
        std::fs::write(dir.join(name), &b.bytes).unwrap();
    }
}

/// Checks the read-back helpers themselves, with skopeo as the pusher instead of hoist: the
/// one read-back check against a third-party pusher, so `verify_image` cannot be lenient in
/// a way only hoist's output would pass.
#[test]
fn helpers_accept_what_skopeo_pushes() {
    let reg = support::Registry::start().unwrap();
    let dir = support::scratch();
    let cases = [
        ("docker-archive", archives::legacy(DupLink::Symlink)),
        (
            "docker-archive",
            archives::podman("localhost/fixture/podman:v1"),
        ),
        ("docker-archive", archives::docker25()),
        (
            "oci-archive",
            archives::oci_layout(OciShape::Plain, "docker.io/fixture/oci:v1"),
        ),
    ];
    for (i, (transport, b)) in cases.iter().enumerate() {
        let file = support::p(&dir, &format!("{i}.tar"));
        std::fs::write(&file, &b.bytes).unwrap();
        let repo = format!("skopeo/case{i}");
        support::run(Command::new("skopeo").args([
            "copy",
            "--dest-tls-verify=false",
            &format!("{transport}:{}", file.display()),
            &format!("docker://{}/{repo}:v1", reg.host()),
        ]))
        .unwrap();
        let (digest, _) = verify_image(&reg, &repo, "v1", &b.images[0]);
        println!("{repo}: {digest}");
    }
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
