//! The end-to-end harness: a registry and hoist per test, pushes expecting a report, and the
//! read-back that checks an image byte for byte in the registry and with skopeo.

use std::io::Read;
use std::process::Command;

use serde_json::Value;

use crate::support;
use crate::support::archives::{self, DupLink, ImageFacts, OciShape};

/// One registry and one hoist, per test.
pub struct Env {
    pub registry: support::Registry,
    pub hoist: support::Hoist,
}

/// Starts a registry and a hoist pushing to it.
pub fn env() -> Env {
    let registry = support::Registry::start().expect("registry");
    let hoist = support::Hoist::start(&registry).expect("hoist");
    Env { registry, hoist }
}

/// Pushes `body` and expects 201 with a JSON report; returns the report.
pub fn push_ok(env: &Env, path: &str, body: &[u8]) -> Value {
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
pub fn report_image<'a>(report: &'a Value, repository: &str) -> &'a Value {
    report["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["repository"] == repository)
        .unwrap_or_else(|| panic!("no image {repository} in report {report:#}"))
}

/// The tags a report's image entry lists.
pub fn tags_of(report_img: &Value) -> Vec<String> {
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
pub fn verify_image(
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

/// `repository` carries every one of `tags` in the registry.
pub fn assert_tagged(env: &Env, repository: &str, tags: &[&str]) {
    let have = env.registry.tags(repository);
    for t in tags {
        assert!(
            have.iter().any(|h| h == t),
            "{repository} lacks tag {t}: {have:?}"
        );
    }
}

/// skopeo copies `reference` out of the registry into an OCI layout.
pub fn skopeo_copy(env: &Env, reference: &str) {
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
pub fn assert_docker_gzip(man: &Value) {
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
