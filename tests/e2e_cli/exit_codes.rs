//! Exit codes: 2 for a bad archive, 3 for a registry that is down or failing, 64 for bad
//! usage (before the registry is asked anything) and 66 for a file that cannot be opened.

use std::process::Command;

use serde_json::Value;

use crate::common::{Env, HOIST, text};
use crate::support::archives::{image, image_corrupt};
use crate::support::fault_proxy::{Fault, Proxy, Rule};
use crate::support::{Registry, free_port};

/// A bad archive exits 2: the code and message on stderr (or as JSON on stdout with
/// `--json`), nothing tagged.
#[test]
fn a_corrupt_archive_exits_2() {
    let (reg, env) = (Registry::start().unwrap(), Env::new());
    let bad = image_corrupt(65, &[256 << 10], "v1");
    let file = env.file("bad.tar", &bad.tar);
    let args = [
        file.to_str().unwrap(),
        "cli/bad:v1",
        "--registry",
        &reg.url(),
    ];
    let out = env.push(&args);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("hoist: DIGEST_MISMATCH: "),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(text(&out.stdout), "");
    let out = env.push(&[&args[..], &["--json"]].concat());
    assert_eq!(out.status.code(), Some(2));
    let err: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(err["error"]["code"], "DIGEST_MISMATCH");
    let junk = env.file("junk.tar", b"not an archive at all");
    let out = env.push(&[
        junk.to_str().unwrap(),
        "cli/bad:v1",
        "--registry",
        &reg.url(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("UNSUPPORTED_FORMAT"));
    assert!(reg.tags("cli/bad").is_empty());
}

/// A registry that is down (a closed port) or answers 500 exits 3.
#[test]
fn a_registry_that_is_down_or_failing_exits_3() {
    let (reg, env) = (Registry::start().unwrap(), Env::new());
    let img = image(66, &[128 << 10], "v1");
    let file = env.file("img.tar", &img.tar);
    let path = file.to_str().unwrap();
    let closed = format!("http://127.0.0.1:{}", free_port().unwrap());
    let out = env.push(&[path, "cli/down:v1", "--registry", &closed]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("REGISTRY_UNAVAILABLE"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        !env.cache_file().exists(),
        "nothing learned, nothing written"
    );
    let proxy = Proxy::start(&reg.url()).unwrap();
    proxy.set_rules(vec![Rule::new(
        "PUT",
        "/manifests/",
        Fault::error(500, "UNKNOWN", &[]),
    )]);
    let out = env.push(&[path, "cli/down:v1", "--registry", &proxy.url(), "--json"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let err: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(err["error"]["code"], "REGISTRY_ERROR");
    assert!(reg.tags("cli/down").is_empty());
}

/// Bad usage exits 64 (never clap's 2, which means a bad archive here) before the registry
/// is asked anything; a file that cannot be opened exits 66; `--help` and `--version` 0.
#[test]
fn usage_errors_exit_64_and_a_missing_file_66() {
    let (reg, env) = (Registry::start().unwrap(), Env::new());
    let file = env.file("img.tar", &image(67, &[1024], "v1").tar);
    let path = file.to_str().unwrap();
    let url = reg.url();
    let asked = reg.access_log().len();
    for args in [
        vec![path, "cli/u:v1", "--registry", &url, "--bogus"],
        vec![path, "Cli/U:v1", "--registry", &url],
        vec![path, "cli/u:v1", "--registry", &url, "--tag", "no/slash"],
        vec![path, "cli/u:v1", "--registry", &url, "--platform", "linux"],
        vec![
            path,
            "cli/u:v1",
            "--registry",
            &url,
            "--progress-interval",
            "0",
        ],
        vec![path, "cli/u:v1", "--registry", "ftp://nowhere"],
        vec![],
    ] {
        let out = env.push(&args);
        assert_eq!(
            out.status.code(),
            Some(64),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(!text(&out.stderr).is_empty(), "{args:?} says why");
    }
    let out = env.push(&["/nonexistent/img.tar", "cli/u:v1", "--registry", &url]);
    assert_eq!(out.status.code(), Some(66), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("/nonexistent/img.tar"));
    assert_eq!(env.push(&["--help"]).status.code(), Some(0));
    let version = Command::new(HOIST).arg("--version").output().unwrap();
    assert_eq!(version.status.code(), Some(0));
    assert_eq!(reg.access_log().len(), asked, "{:?}", reg.access_log());
    assert!(!env.cache_file().exists());
}
