//! The location cache file (issue 11): a second process mounts what a first pushed (no blob
//! bytes in the registry's access log), docker-archives too without compressing again, and a
//! corrupt or stale file costs an upload, not a failed push.

use std::process::Output;

use serde_json::Value;

use crate::common::{Env, registry_digest, text};
use crate::support::Registry;
use crate::support::archives::{self, image};

/// The PATCH and PUT requests that sent blob bytes into `repository`.
fn uploads_into(reg: &Registry, repository: &str) -> Vec<(String, String, u16)> {
    let prefix = format!("/v2/{repository}/blobs/uploads/");
    reg.access_log()
        .into_iter()
        .filter(|(m, t, _)| (m == "PATCH" || m == "PUT") && t.starts_with(&prefix))
        .collect()
}

/// Outcomes of a `--json` report's blobs.
fn outcomes(out: &Output) -> Vec<String> {
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", text(&out.stdout), text(&out.stderr)));
    let blobs = report["images"][0]["blobs"].as_array().unwrap();
    blobs
        .iter()
        .map(|b| b["outcome"].as_str().unwrap().to_string())
        .collect()
}

/// Issue 11: a second `hoist push` process mounts what a first pushed to another repository
/// (the cache file told it where), and the registry received no blob bytes for it; with
/// `--no-cache` a third uploads them again.
#[test]
fn a_second_process_mounts_what_the_first_pushed() {
    let (reg, env) = (Registry::start().unwrap(), Env::new());
    let img = image(70, &[1 << 20, 512 << 10], "v1");
    let file = env.file("img.tar", &img.tar);
    let path = file.to_str().unwrap();
    let first = env.push(&[path, "cache/a:v1", "--registry", &reg.url(), "--json"]);
    assert_eq!(outcomes(&first), ["uploaded"; 3]);
    assert!(env.cache_file().is_file());
    let second = env.push(&[path, "cache/b:v1", "--registry", &reg.url(), "--json"]);
    assert_eq!(
        outcomes(&second),
        ["mounted"; 3],
        "{}",
        text(&second.stderr)
    );
    let again = uploads_into(&reg, "cache/b");
    assert!(again.is_empty(), "bytes were sent again: {again:?}");
    for layer in &img.layers {
        assert!(reg.has_blob("cache/b", layer));
    }
    assert_eq!(
        registry_digest(&reg, "cache/b", "v1"),
        registry_digest(&reg, "cache/a", "v1")
    );
    let args = [
        path,
        "cache/c:v1",
        "--registry",
        &reg.url(),
        "--json",
        "--no-cache",
    ];
    assert_eq!(outcomes(&env.push(&args)), ["uploaded"; 3]);
    assert!(!uploads_into(&reg, "cache/c").is_empty());
}

/// The same for docker-archives whose uncompressed layers hoist gzips (podman's, named by
/// diffID, and legacy `docker save`'s `<id>/layer.tar`): the second process knows what each
/// layer became (the layer cache and legacy names, kept in the file too) and where it is, so
/// it only hashes the layers and mounts them.
#[test]
fn a_docker_archive_pushed_again_elsewhere_is_mounted_not_recompressed() {
    let (reg, env) = (Registry::start().unwrap(), Env::new());
    let archives = [
        ("podman", archives::podman("localhost/fixture/cache:v1")),
        ("legacy", archives::legacy(archives::DupLink::Symlink)),
    ];
    for (name, built) in archives {
        let file = env.file(&format!("{name}.tar"), &built.bytes);
        let path = file.to_str().unwrap();
        let (a, b) = (format!("cache/{name}-a"), format!("cache/{name}-b"));
        let push = |repo: &str| {
            env.push(&[
                path,
                &format!("{repo}:v1"),
                "--registry",
                &reg.url(),
                "--json",
            ])
        };
        let first = push(&a);
        let uploaded = outcomes(&first);
        assert!(uploaded.len() >= 2, "{name}: {uploaded:?}");
        assert!(
            uploaded.iter().all(|o| o == "uploaded"),
            "{name}: {uploaded:?}"
        );
        let second = push(&b);
        let mounted = outcomes(&second);
        assert_eq!(mounted.len(), uploaded.len(), "{name}");
        assert!(
            mounted.iter().all(|o| o == "mounted"),
            "{name}: {mounted:?} {}",
            text(&second.stderr)
        );
        let again = uploads_into(&reg, &b);
        assert!(again.is_empty(), "{name}: bytes were sent again: {again:?}");
        assert_eq!(
            registry_digest(&reg, &b, "v1"),
            registry_digest(&reg, &a, "v1")
        );
    }
}

/// The cache is only a hint: a corrupt file is ignored with a warning (and replaced), and a
/// location that is no longer true costs an upload, not a failed push.
#[test]
fn a_corrupt_or_stale_cache_costs_an_upload_not_a_failure() {
    let (reg, env) = (Registry::start().unwrap(), Env::new());
    let img = image(71, &[256 << 10], "v1");
    let file = env.file("img.tar", &img.tar);
    let path = file.to_str().unwrap();
    std::fs::create_dir_all(env.cache_file().parent().unwrap()).unwrap();
    std::fs::write(env.cache_file(), "{ not json").unwrap();
    let out = env.push(&[path, "stale/a:v1", "--registry", &reg.url(), "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("warning: ignoring the cache"),
        "{}",
        text(&out.stderr)
    );
    let cache = std::fs::read_to_string(env.cache_file()).unwrap();
    assert!(
        serde_json::from_str::<Value>(&cache).is_ok(),
        "replaced: {cache}"
    );
    assert!(cache.contains("stale/a"), "{cache}");
    std::fs::write(env.cache_file(), cache.replace("stale/a", "stale/gone")).unwrap();
    let out = env.push(&[path, "stale/b:v1", "--registry", &reg.url(), "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(outcomes(&out), ["uploaded"; 2]);
    assert!(reg.has_blob("stale/b", &img.layers[0]));
}
