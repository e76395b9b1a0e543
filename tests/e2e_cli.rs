//! `hoist push` as a user and a CI job run it: progress on a terminal (a pty from `script`)
//! and in a pipe, `--quiet`, `--json`, exit codes, `--dry-run`, `--platform`, and the cache
//! of blob locations that lets a second process mount what a first one pushed. A real
//! registry on loopback; every result is read back from the registry.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;
use support::archives::{self, image, image_corrupt};
use support::fault_proxy::{Fault, Proxy, Rule};
use support::{Registry, free_port, require_tools, scratch, sha256};

const HOIST: &str = env!("CARGO_BIN_EXE_hoist");

/// A test's own files: archives, and the cache directory (`XDG_CACHE_HOME`), so no test
/// reads or writes the user's cache.
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env { dir: scratch() }
    }

    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    fn cache_home(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    fn cache_file(&self) -> PathBuf {
        self.cache_home().join("hoist/locations.json")
    }

    /// `hoist push ARGS...`, bounded in time, with this test's cache.
    fn push(&self, args: &[&str]) -> Output {
        let out = Command::new("timeout")
            .args(["120", HOIST, "push"])
            .args(args)
            .env("XDG_CACHE_HOME", self.cache_home())
            .env("HOIST_RETRIES", "0")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_ne!(out.status.code(), Some(124), "hoist push timed out");
        out
    }

    /// A shell command line: `hoist push FILE ARGS...` with this test's cache.
    fn push_line(&self, file: &Path, args: &[&str]) -> String {
        let mut line = format!(
            "XDG_CACHE_HOME={} {HOIST} push {}",
            self.cache_home().display(),
            file.display()
        );
        for a in args {
            line.push(' ');
            line.push_str(a);
        }
        line
    }
}

/// A registry behind a proxy that reads blob bodies at about 1 MiB/s, so that a push of a
/// few MiB lasts a few seconds and its progress shows.
fn slow_registry(reg: &Registry) -> Proxy {
    let proxy = Proxy::start(&reg.url()).unwrap();
    let throttle = Fault::Throttle {
        chunk: 64 << 10,
        pause: Duration::from_millis(60),
    };
    proxy.set_rules(vec![Rule::new("PATCH", "/blobs/uploads/", throttle)]);
    proxy
}

/// `1.50` `MiB` as a number of bytes.
fn bytes(amount: &str, unit: &str) -> f64 {
    let scale = match unit {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        _ => panic!("unit {unit:?}"),
    };
    amount.parse::<f64>().unwrap() * scale
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The digest of `repository:tag` as the registry serves it.
fn registry_digest(reg: &Registry, repository: &str, tag: &str) -> String {
    let (bytes, _) = reg.manifest(repository, tag).unwrap();
    sha256(&bytes)
}

/// On a terminal: an indicatif bar redrawn in place (carriage returns, escape codes) with
/// its template's words, a line per blob above it, then the one-line summary.
#[test]
fn progress_on_a_terminal_is_a_bar() {
    require_tools(&["script"]);
    let (reg, env) = (Registry::start().unwrap(), Env::new());
    let slow = slow_registry(&reg);
    let img = image(61, &[3 << 20], "v1");
    let file = env.file("img.tar", &img.tar);
    let line = env.push_line(&file, &["cli/tty:v1", "--registry", &slow.url()]);
    let out = Command::new("timeout")
        .args(["120", "script", "-qfec", &line, "/dev/null"])
        .env("TERM", "xterm-256color")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let terminal = text(&out.stdout);
    assert!(out.status.success(), "{terminal}{}", text(&out.stderr));
    // Redrawn in place: back to the line's start, clear it (script turns every \n into \r\n,
    // so a carriage return alone would prove nothing).
    assert!(terminal.contains("\r\x1b[2K"), "no redraw: {terminal:?}");
    assert!(terminal.contains(" read · "), "no bar: {terminal:?}");
    assert!(terminal.contains(" sent · "), "no bytes sent: {terminal:?}");
    assert!(terminal.contains(" blobs · "), "no blobs: {terminal:?}");
    assert!(terminal.contains("/s"), "no throughput: {terminal:?}");
    let blob = format!("blob {} ", img.layers[0]);
    assert!(
        terminal.contains(&blob),
        "no line for the layer: {terminal:?}"
    );
    let digest = registry_digest(&reg, "cli/tty", "v1");
    let summary = format!("pushed cli/tty:v1@{digest} (2 blobs: 2 uploaded) in ");
    assert!(
        terminal.contains(&summary),
        "{summary:?} not in {terminal:?}"
    );
}

/// In a pipe (a CI log): plain lines every `--progress-interval`, growing, with no escape
/// code and no carriage return; the summary alone on stdout.
#[test]
fn progress_in_a_pipe_is_plain_lines() {
    let (reg, env) = (Registry::start().unwrap(), Env::new());
    let slow = slow_registry(&reg);
    let img = image(62, &[3 << 20], "v1");
    let file = env.file("img.tar", &img.tar);
    let line = env.push_line(
        &file,
        &[
            "cli/pipe:v1",
            "--registry",
            &slow.url(),
            "--progress-interval",
            "0.3",
        ],
    );
    let out = Command::new("timeout")
        .args(["120", "sh", "-c", &line])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stderr}");
    assert!(
        !stderr.contains('\r') && !stderr.contains('\x1b'),
        "{stderr:?}"
    );
    assert!(stderr.lines().all(|l| l.starts_with("hoist: ")), "{stderr}");
    // `hoist: 1.50 MiB read, 1.20 MiB sent, 0 blobs, 512.00 KiB/s`
    let read: Vec<f64> = stderr
        .lines()
        .filter(|l| l.contains(" read, ") && l.contains(" sent, ") && l.contains(" blobs, "))
        .map(|l| {
            let mut words = l["hoist: ".len()..].split(' ');
            bytes(words.next().unwrap(), words.next().unwrap())
        })
        .collect();
    assert!(
        read.len() >= 3,
        "a line every 0.3 s of a 3 s push: {stderr}"
    );
    assert!(read.windows(2).all(|w| w[0] <= w[1]), "{stderr}");
    assert!(read.iter().any(|r| *r > 0.0), "{stderr}");
    let blob = format!("hoist: blob {} ", img.layers[0]);
    let blob_line = stderr.lines().find(|l| l.starts_with(&blob));
    assert!(
        blob_line.is_some_and(|l| l.ends_with(" MiB uploaded")),
        "{stderr}"
    );
    let digest = registry_digest(&reg, "cli/pipe", "v1");
    assert!(
        stdout.starts_with(&format!(
            "pushed cli/pipe:v1@{digest} (2 blobs: 2 uploaded) in "
        )),
        "{stdout}"
    );
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
}

/// `--quiet`: nothing on stderr, the summary (or with `--json` the report) on stdout.
#[test]
fn quiet_prints_only_the_result() {
    let (reg, env) = (Registry::start().unwrap(), Env::new());
    let img = image(63, &[256 << 10], "v1");
    let file = env.file("img.tar", &img.tar);
    let path = file.to_str().unwrap();
    let out = env.push(&[path, "cli/quiet:v1", "--registry", &reg.url(), "--quiet"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "");
    let digest = registry_digest(&reg, "cli/quiet", "v1");
    assert!(text(&out.stdout).starts_with(&format!("pushed cli/quiet:v1@{digest} ")));
    let out = env.push(&[
        path,
        "cli/quiet:v2",
        "--registry",
        &reg.url(),
        "-q",
        "--json",
    ]);
    assert_eq!(text(&out.stderr), "");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["images"][0]["tags"][0], "v2");
}

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
