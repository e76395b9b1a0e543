//! `hoist push`: a gzipped file with an extra tag and a JSON report (read back with skopeo),
//! an archive from stdin, and a bad one failing with exit code 2 and the error as JSON.

use std::io::Write;
use std::process::Command;

use crate::common::oci_bytes;
use crate::support::archives;
use crate::support::*;

#[test]
fn push_command_pushes_a_file_and_reports_json() {
    let reg = Registry::start().unwrap();
    let dir = scratch();
    let built = archives::podman("localhost/fixture/cli:v1");
    let file = p(&dir, "img.tar.gz");
    std::fs::write(&file, built.gzipped()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hoist"))
        .args([
            "push",
            file.to_str().unwrap(),
            "cli/app:1",
            "--registry",
            &reg.url(),
            "--tag",
            "extra",
            "--json",
            "--no-cache",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["images"][0]["repository"], "cli/app");
    let mut tags = reg.tags("cli/app");
    tags.sort();
    assert_eq!(tags, vec!["1", "extra"]);
    let inspect = skopeo_inspect(&reg, "cli/app:1", &["--config"]).unwrap();
    assert_eq!(
        inspect["rootfs"]["diff_ids"].as_array().unwrap().len(),
        built.images[0].diff_ids.len()
    );
}

#[test]
fn push_command_reads_stdin_and_fails_with_error_json() {
    let reg = Registry::start().unwrap();
    let built = oci_bytes("docker.io/fixture/stdin:v1");
    let mut child = Command::new(env!("CARGO_BIN_EXE_hoist"))
        .args(["push", "-", "--registry", &reg.url(), "--no-cache"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&built.gzipped())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(reg.tags("fixture/stdin"), vec!["v1"]);

    let out = Command::new(env!("CARGO_BIN_EXE_hoist"))
        .args(["push", "-", "bad/x:1", "--registry", &reg.url()])
        .args(["--json", "--no-cache"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    // 2: the archive is bad; with --json the error body is on stdout.
    assert_eq!(out.status.code(), Some(2));
    let err: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(err["error"]["code"], "UNSUPPORTED_FORMAT");
    assert!(reg.tags("bad/x").is_empty());
}
