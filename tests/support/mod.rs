//! The one harness of the end-to-end suite; every test binary says `mod support;`.
//!
//! - [`registry`]: a real `docker-registry` on a loopback port and its read-backs (tags,
//!   manifests, blobs, access log, open upload sessions).
//! - [`hoist`]: a real `hoist serve` process with options (env, args, log level, an empty
//!   environment), its stderr captured and read as lines or JSON, `/readyz`, SIGTERM.
//! - [`client`]: pushes through curl or raw TCP, one raw HTTP/1.1 request, and [`Answer`].
//! - [`archives`]: image archives built in code (tool-shaped, block-level hostile, small).
//! - [`fault_proxy`]: an HTTP proxy between hoist and the registry that injects faults and
//!   records what hoist sent.
//! - [`access`]: API tokens, a hoist that takes them from a tokens file, `Authorization`
//!   values, and what a refused push must leave behind.
//! - [`issuer`]: a local OIDC issuer that signs CI identity tokens (and malformed ones).
#![allow(
    dead_code,
    unused_imports,
    reason = "each test binary uses its own part of the shared harness"
)]

pub mod access;
pub mod archives;
pub mod client;
pub mod fault_proxy;
pub mod hoist;
pub mod issuer;
pub mod registry;

pub use client::*;
pub use hoist::{FAST_PROBES, Hoist, VERBOSE_LOG, run_hoist};
pub use registry::Registry;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// `sha256:<hex>` of bytes, computed independently of hoist (the `sha2` crate).
pub fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// Runs a command, failing with its stderr; returns its stdout.
pub fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).to_string())
}

/// A free loopback port (bind :0, read it, release it).
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// Polls until `ok()`, every 50 ms, for at most `limit`.
pub fn wait_until(limit: Duration, mut ok: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    bail!("not within {limit:?}")
}

/// The repository's root (Dockerfile, deploy/, scripts/, README.md).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Whether a tool is on PATH.
pub fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// The Debian package that provides each tool the tests drive (what scripts/test.sh installs).
const PACKAGES: &[(&str, &str)] = &[
    ("docker-registry", "docker-registry"),
    ("skopeo", "skopeo"),
    ("umoci", "umoci"),
    ("busybox", "busybox-static"),
    ("curl", "curl"),
    ("gzip", "gzip"),
    ("pigz", "pigz"),
    ("zstd", "zstd"),
    ("xz", "xz-utils"),
    ("bzip2", "bzip2"),
    ("openssl", "openssl"),
    ("docker", "docker.io"),
    ("script", "bsdutils"),
];

/// Fails the test (never skips it) when a tool is missing, naming the package to install.
/// A prerequisite that silently turns a test into a pass hides the one thing it checks.
pub fn require_tools(tools: &[&str]) {
    let missing: Vec<String> = tools
        .iter()
        .filter(|t| !have(t))
        .map(|t| {
            let pkg = PACKAGES.iter().find(|(c, _)| c == t).map_or(*t, |(_, p)| p);
            format!("{t} (apt-get install {pkg})")
        })
        .collect();
    assert!(
        missing.is_empty(),
        "missing test prerequisites: {}; scripts/test.sh installs them",
        missing.join(", ")
    );
}

/// Fails the test when no Docker engine answers (not just the client).
pub fn require_docker_engine() {
    require_tools(&["docker"]);
    let out = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .output();
    let ok = out.as_ref().map(|o| o.status.success()).unwrap_or(false);
    assert!(
        ok,
        "no Docker engine answers `docker info` ({}): start dockerd (apt-get install docker.io)",
        out.map(|o| String::from_utf8_lossy(&o.stderr).trim().to_string())
            .unwrap_or_else(|e| e.to_string())
    );
}

/// A scratch directory for fixtures.
pub fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// Path helper.
pub fn p(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

/// The last `lines` lines of a log.
pub fn tail(s: &str, lines: usize) -> String {
    let all: Vec<&str> = s.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The value of an unlabelled or labelled Prometheus sample, matched on the whole series
/// name (`hoist_pushes_total`, `hoist_blobs_total{outcome="uploaded"}`), never a prefix.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (name, value) = l.rsplit_once(' ')?;
        (name.trim() == series).then(|| value.trim().parse().ok())?
    })
}
