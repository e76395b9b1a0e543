//! What a push reports and writes: `--json` agreeing with the registry, `--dry-run` leaving
//! the registry untouched (its access log holds reads only), `--platform` pushing one
//! platform of a multi-platform archive.

use serde_json::Value;

use crate::common::{Env, registry_digest, text};
use crate::support::Registry;
use crate::support::archives::{self, image, image_corrupt};

/// `--json`: the report on stdout parses, and its digest and tags are the registry's.
#[test]
fn json_prints_the_report_the_registry_agrees_with() {
    let (reg, env) = (Registry::start().unwrap(), Env::new());
    let img = image(64, &[256 << 10, 128 << 10], "v1");
    let file = env.file("img.tar.gz", &archives::gzip(&img.tar));
    let args = [
        file.to_str().unwrap(),
        "cli/json:v1",
        "--registry",
        &reg.url(),
    ];
    let out = env.push(&[&args[..], &["--json", "--tag", "extra"]].concat());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let image = &report["images"][0];
    assert_eq!(image["repository"], "cli/json");
    assert_eq!(
        image["digest"],
        registry_digest(&reg, "cli/json", "v1").as_str()
    );
    assert_eq!(
        image["digest"],
        registry_digest(&reg, "cli/json", "extra").as_str()
    );
    let mut tags = reg.tags("cli/json");
    tags.sort();
    assert_eq!(tags, ["extra", "v1"]);
    for layer in &img.layers {
        assert!(reg.has_blob("cli/json", layer));
    }
}

/// `--dry-run` verifies the archive and writes nothing: the registry saw only reads, holds no
/// tag and no blob, and the summary says what a push would do.
#[test]
fn a_dry_run_leaves_the_registry_untouched() {
    let (reg, env) = (Registry::start().unwrap(), Env::new());
    let img = image(68, &[256 << 10], "v1");
    let file = env.file("img.tar", &img.tar);
    let path = file.to_str().unwrap();
    let out = env.push(&[path, "cli/dry:v1", "--registry", &reg.url(), "--dry-run"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("would push cli/dry:v1@sha256:"),
        "{stdout}"
    );
    assert!(stdout.contains("(2 blobs: 2 to upload)"), "{stdout}");
    let writes = reg.writes();
    assert!(writes.is_empty(), "a dry run wrote: {writes:?}");
    assert!(reg.tags("cli/dry").is_empty());
    assert!(!reg.has_blob("cli/dry", &img.layers[0]));
    let out = env.push(&[
        path,
        "cli/dry:v1",
        "--registry",
        &reg.url(),
        "--dry-run",
        "--json",
    ]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["dry_run"], true);
    let bad = env.file("bad.tar", &image_corrupt(69, &[1024], "v1").tar);
    let bad = [
        bad.to_str().unwrap(),
        "cli/dry:v1",
        "--registry",
        &reg.url(),
        "--dry-run",
    ];
    assert_eq!(
        env.push(&bad).status.code(),
        Some(2),
        "verified like a push"
    );
}

/// `--platform linux/arm64` from a two-platform archive: the registry's index lists arm64
/// alone and amd64's own layer is not there; a platform the archive lacks exits 2.
#[test]
fn platform_selects_what_is_pushed() {
    let (reg, env) = (Registry::start().unwrap(), Env::new());
    let b = archives::oci_multi_platform();
    let file = env.file("multi.tar", &b.bytes);
    let path = file.to_str().unwrap();
    let args = [path, "cli/plat:v1", "--registry", &reg.url()];
    let out = env.push(&[&args[..], &["--platform", "linux/arm64", "--json"]].concat());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (raw, _) = reg.manifest("cli/plat", "v1").unwrap();
    let index: Value = serde_json::from_slice(&raw).unwrap();
    let listed = index["manifests"].as_array().unwrap();
    assert_eq!(listed.len(), 1, "{index:#}");
    assert_eq!(listed[0]["platform"]["architecture"], "arm64");
    let amd64 = b
        .images
        .iter()
        .find(|i| i.platform.as_deref() == Some("linux/amd64"))
        .unwrap();
    assert!(!reg.has_blob("cli/plat", &amd64.layer_digests[1]));
    let out = env.push(&[
        path,
        "cli/plat:v2",
        "--registry",
        &reg.url(),
        "--platform",
        "linux/s390x",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("PLATFORM_MISSING"));
    assert_eq!(reg.tags("cli/plat"), ["v1"]);
}
