//! Settings of config/hoist.toml that no other suite sets, each provoked end to end: the
//! staging repository, the default layer compression and the compression levels, and the
//! plain-http opt-in. Real registry, real hoist process, loopback only.

mod support;

use std::io::Read;
use std::process::Command;

use serde_json::Value;

use support::archives::{self, Built};
use support::*;

const OCI_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
const DOCKER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// The pushed manifest of `repo:tag` and, per layer, (media type, blob bytes).
fn pushed_layers(reg: &Registry, repo: &str, tag: &str) -> Vec<(String, Vec<u8>)> {
    let (bytes, _) = reg.manifest(repo, tag).expect("manifest");
    let man: Value = serde_json::from_slice(&bytes).unwrap();
    man["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let d = l["digest"].as_str().unwrap();
            (
                l["mediaType"].as_str().unwrap().to_string(),
                reg.blob(repo, d).expect("layer blob"),
            )
        })
        .collect()
}

fn diff_ids_of(layers: &[(String, Vec<u8>)]) -> Vec<String> {
    layers
        .iter()
        .map(|(media, blob)| {
            let plain = if media.ends_with("zstd") {
                zstd::decode_all(&blob[..]).unwrap()
            } else {
                let mut out = Vec::new();
                flate2::read::MultiGzDecoder::new(&blob[..])
                    .read_to_end(&mut out)
                    .unwrap();
                out
            };
            sha256(&plain)
        })
        .collect()
}

/// A docker archive whose layers are uncompressed text, so compression levels show in sizes.
fn compressible() -> Built {
    archives::podman("localhost/fixture/levels:v1")
}

#[test]
fn staging_repository_receives_the_blobs_of_an_unnamed_push() {
    let reg = Registry::start().unwrap();
    let hoist =
        Hoist::with_env(&reg.url(), &[("HOIST_STAGING_REPOSITORY", "team/staging")]).unwrap();
    let built = archives::oci_layout(archives::OciShape::Plain, "docker.io/fixture/staged:v1");
    let a = push_bytes(&hoist, "/push", &built.bytes).unwrap();
    assert_eq!(a.status, 201, "{}", a.body);
    assert_eq!(reg.tags("fixture/staged"), vec!["v1"]);
    for layer in &built.images[0].layer_digests {
        assert!(reg.has_blob("team/staging", layer), "{layer} not staged");
        assert!(
            !reg.has_blob("hoist-staging", layer),
            "{layer} went to the default staging repository"
        );
        assert!(reg.has_blob("fixture/staged", layer));
    }
}

#[test]
fn staging_repository_must_be_a_valid_name() {
    let out = Command::new(env!("CARGO_BIN_EXE_hoist"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("HOIST_STAGING_REPOSITORY", "Not/Valid")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("staging_repository"), "{err}");
}

/// `layer_compression = "zstd"` in the config applies to every push; `?layer_compression=`
/// still overrides it per request.
#[test]
fn layer_compression_setting_is_the_default_a_query_overrides() {
    let reg = Registry::start().unwrap();
    let hoist = Hoist::with_env(&reg.url(), &[("HOIST_LAYER_COMPRESSION", "zstd")]).unwrap();
    let built = compressible();
    let a = push_bytes(&hoist, "/push/levels/default:1", &built.bytes).unwrap();
    assert_eq!(a.status, 201, "{}", a.body);
    let layers = pushed_layers(&reg, "levels/default", "1");
    assert!(layers.iter().all(|(m, _)| m == OCI_ZSTD), "{layers:?}");
    assert_eq!(diff_ids_of(&layers), built.images[0].diff_ids);
    let b = push_bytes(
        &hoist,
        "/push/levels/query:1?layer_compression=gzip",
        &built.bytes,
    )
    .unwrap();
    assert_eq!(b.status, 201, "{}", b.body);
    let layers = pushed_layers(&reg, "levels/query", "1");
    assert!(layers.iter().all(|(m, _)| m == DOCKER_GZIP), "{layers:?}");
}

/// The sizes of the layers hoist compresses with `level` (a fresh registry and hoist each).
fn sizes_at(key: &str, level: &str, compression: &str) -> Vec<usize> {
    let reg = Registry::start().unwrap();
    let hoist = Hoist::with_env(&reg.url(), &[(key, level)]).unwrap();
    let built = compressible();
    let a = push_bytes(
        &hoist,
        &format!("/push/levels/app:1?layer_compression={compression}"),
        &built.bytes,
    )
    .unwrap();
    assert_eq!(a.status, 201, "{}", a.body);
    let layers = pushed_layers(&reg, "levels/app", "1");
    assert_eq!(
        diff_ids_of(&layers),
        built.images[0].diff_ids,
        "{key}={level}"
    );
    layers.iter().map(|(_, b)| b.len()).collect()
}

#[test]
fn zstd_level_is_applied() {
    let fast = sizes_at("HOIST_ZSTD_LEVEL", "1", "zstd");
    let best = sizes_at("HOIST_ZSTD_LEVEL", "19", "zstd");
    assert!(
        best.iter().sum::<usize>() < fast.iter().sum::<usize>(),
        "zstd level 19 {best:?} is not smaller than level 1 {fast:?}"
    );
}

#[test]
fn gzip_level_is_applied() {
    let fast = sizes_at("HOIST_GZIP_LEVEL", "1", "gzip");
    let best = sizes_at("HOIST_GZIP_LEVEL", "9", "gzip");
    assert!(
        best.iter().sum::<usize>() < fast.iter().sum::<usize>(),
        "gzip level 9 {best:?} is not smaller than level 1 {fast:?}"
    );
}

#[test]
fn compression_levels_out_of_range_stop_the_server() {
    for (key, value, name) in [
        ("HOIST_ZSTD_LEVEL", "0", "zstd_level"),
        ("HOIST_ZSTD_LEVEL", "20", "zstd_level"),
        ("HOIST_GZIP_LEVEL", "10", "gzip_level"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_hoist"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env(key, value)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{key}={value} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(name), "{key}={value}: {err}");
    }
}

/// Plain http to a registry off loopback is refused at start unless `registry_allow_http`
/// says so. hoist does not contact the registry at start, so no traffic leaves loopback.
#[test]
fn plain_http_off_loopback_needs_registry_allow_http() {
    let off_loopback = "http://registry.example:5000";
    let out = Command::new(env!("CARGO_BIN_EXE_hoist"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--registry",
            off_loopback,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("registry_allow_http"), "{err}");
    let hoist = Hoist::with_env(off_loopback, &[("HOIST_REGISTRY_ALLOW_HTTP", "true")]).unwrap();
    let health = get_text(&format!("{}/healthz", hoist.url)).unwrap();
    assert_eq!(health.trim(), "ok");
}
