//! What the operations tests need, kept apart from the shared test helpers: a registry
//! (Debian's `docker-registry`, optionally behind htpasswd), `hoist serve` with its stdout
//! and stderr captured, a small OCI archive built in code, and a raw HTTP/1.1 client over
//! loopback TCP (so a test sees headers, timeouts and closed connections as they are).
#![allow(dead_code)]

mod archive;
mod http;

pub use archive::*;
pub use http::*;

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

pub const REGISTRY_USER: &str = "ops-user";
/// Readiness probed every 200 ms, so tests see a change quickly.
pub const FAST_PROBES: (&str, &str) = ("HOIST_READINESS_INTERVAL", "200ms");

/// A `docker-registry` on a loopback port, storing into a temp dir; killed on drop.
pub struct Registry {
    child: Option<Child>,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Registry {
    pub fn start() -> Result<Registry> {
        Registry::start_in(tempfile::tempdir()?, "")
    }

    /// Behind htpasswd Basic auth: `REGISTRY_USER` with `password`.
    pub fn with_password(password: &str) -> Result<Registry> {
        let hash = bcrypt::hash_with_result(password, 4)?.format_for_version(bcrypt::Version::TwoY);
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("htpasswd");
        std::fs::write(&file, format!("{REGISTRY_USER}:{hash}\n"))?;
        let yaml = format!(
            "auth:\n  htpasswd:\n    realm: basic-realm\n    path: {}\n",
            file.display()
        );
        Registry::start_in(dir, &yaml)
    }

    fn start_in(dir: tempfile::TempDir, extra_yaml: &str) -> Result<Registry> {
        let port = free_port()?;
        let config = format!(
            "version: 0.1\nlog:\n  level: info\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: ops-test-secret\n{extra_yaml}",
            dir.path().join("data").display()
        );
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config)?;
        let log = std::fs::File::create(dir.path().join("registry.log"))?;
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config_path)
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting docker-registry (apt-get install docker-registry)")?;
        let registry = Registry {
            child: Some(child),
            port,
            dir,
        };
        let url = format!("{}/v2/", registry.url());
        wait_until(Duration::from_secs(20), || {
            matches!(get(&url).map(|r| r.status), Ok(200 | 401))
        })
        .context("docker-registry did not come up")?;
        Ok(registry)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Tags of a repository (empty when unknown). Anonymous: only for registries without auth.
    pub fn tags(&self, repository: &str) -> Vec<String> {
        get(&format!("{}/v2/{repository}/tags/list", self.url()))
            .ok()
            .and_then(|r| serde_json::from_slice::<Value>(&r.body).ok())
            .and_then(|v| v["tags"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|t| t.as_str().map(String::from))
            .collect()
    }

    /// Upload sessions holding data, in any repository (`_uploads/<id>/data`). A cancelled
    /// session's data is gone; distribution may leave its `hashstates` behind when a PATCH
    /// it was still finishing races the DELETE, so those are not counted.
    pub fn uploads_with_data(&self) -> usize {
        let root = self.dir.path().join("data/docker/registry/v2/repositories");
        upload_data(&root, false)
    }

    /// The registry's log (its access log included).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }
}

fn upload_data(dir: &Path, in_uploads: bool) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut n = 0;
    for e in entries.flatten() {
        let path = e.path();
        if in_uploads && e.file_name() == "data" && path.is_file() {
            n += 1;
        } else if path.is_dir() {
            n += upload_data(&path, in_uploads || e.file_name() == "_uploads");
        }
    }
    n
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A `hoist` process with its output captured; killed on drop.
pub struct Hoist {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    /// `127.0.0.1:PORT`
    pub addr: String,
    pub admin: Option<String>,
    stderr: Arc<Mutex<String>>,
}

impl Hoist {
    /// `hoist serve --listen 127.0.0.1:0 --registry URL` with `env` on top of an environment
    /// without inherited HOIST_* variables.
    pub fn start(registry_url: &str, env: &[(&str, &str)]) -> Result<Hoist> {
        let args = ["--listen", "127.0.0.1:0", "--registry", registry_url];
        Hoist::spawn(&args, env, false)
    }

    /// `hoist serve ARGS` with exactly `env` (plus RUST_LOG), nothing inherited.
    pub fn spawn(args: &[&str], env: &[(&str, &str)], clear_env: bool) -> Result<Hoist> {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hoist"));
        cmd.arg("serve")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if clear_env {
            cmd.env_clear();
        } else {
            for (k, _) in std::env::vars() {
                if k.starts_with("HOIST_") || k == "DOCKER_CONFIG" {
                    cmd.env_remove(k);
                }
            }
        }
        cmd.env("RUST_LOG", "hoist=debug,info");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().context("spawning hoist")?;
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().context("stderr")?;
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(|l| l.ok()) {
                eprintln!("[hoist] {line}");
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let mut out = BufReader::new(child.stdout.take().context("stdout")?);
        let mut first = String::new();
        out.read_line(&mut first)?;
        let Some(url) = first.trim().strip_prefix("hoist listening on ") else {
            let _ = child.kill();
            std::thread::sleep(Duration::from_millis(200));
            bail!("hoist did not start: {first:?}\n{}", stderr.lock().unwrap());
        };
        let url = url.to_string();
        let mut admin = None;
        if env.iter().any(|(k, _)| *k == "HOIST_ADMIN_LISTEN") {
            let mut line = String::new();
            out.read_line(&mut line)?;
            admin = line
                .trim()
                .strip_prefix("hoist admin on http://")
                .map(String::from);
        }
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut out, &mut std::io::sink());
        });
        Ok(Hoist {
            child,
            addr: url.trim_start_matches("http://").to_string(),
            url,
            admin,
            stderr,
        })
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits (at most 10 s) until a stderr line holds every one of `needles`: the lines
    /// arrive through a pipe, a moment after the answer that ends the request.
    pub fn wait_for_line(&self, needles: &[&str]) {
        let seen = || {
            self.stderr()
                .lines()
                .any(|l| needles.iter().all(|n| l.contains(n)))
        };
        wait_until(Duration::from_secs(10), seen)
            .unwrap_or_else(|_| panic!("no line with {needles:?} in:\n{}", self.stderr()));
    }

    /// Every stderr line, each parsed as JSON (fails on a line that is not).
    pub fn json_lines(&self) -> Vec<Value> {
        self.stderr()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect()
    }

    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits up to `limit` for the process to exit; whether it did.
    pub fn wait_exit(&mut self, limit: Duration) -> bool {
        wait_until(limit, || matches!(self.child.try_wait(), Ok(Some(_)))).is_ok()
    }
}

impl Drop for Hoist {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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

pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn readyz(hoist: &Hoist) -> Answer {
    get(&format!("{}/readyz", hoist.url)).expect("GET /readyz")
}

/// Polls /readyz until it answers `status` for a reason other than "not checked yet";
/// that answer.
pub fn readyz_becomes(hoist: &Hoist, status: u16) -> Answer {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let a = readyz(hoist);
        let settled = a.status == status && !a.text().contains("not checked yet");
        if settled || Instant::now() > deadline {
            assert_eq!(a.status, status, "{}", a.text());
            return a;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
