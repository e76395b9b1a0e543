//! One `hoist serve` process on a loopback port, with its stderr captured (and echoed, so a
//! failing test shows it). Built with options: extra environment, extra arguments, a config
//! file, log level, an emptied environment, or `serve` with the test's own arguments only.
//! What the operations suites ask of it: the admin listener's address, stderr lines waited
//! for or read as JSON, `/readyz` polled, SIGTERM and the exit that follows.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use super::{Answer, Registry, get, wait_until};

/// Readiness probed every 200 ms, so tests see a change quickly.
pub const FAST_PROBES: (&str, &str) = ("HOIST_READINESS_INTERVAL", "200ms");

/// The log filter of the operations suites: hoist's debug lines (the access line of every
/// request) and every crate's info.
pub const VERBOSE_LOG: &str = "hoist=debug,info";

/// A running `hoist serve`; killed on drop.
pub struct Hoist {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The admin listener's `127.0.0.1:PORT`, when `HOIST_ADMIN_LISTEN` was set.
    pub admin: Option<String>,
    stderr: Arc<Mutex<String>>,
    /// The config file given with [`HoistOptions::config`], removed with hoist.
    _config: Option<tempfile::TempDir>,
}

/// How to start hoist: `Hoist::options(url).env(..).args(..).config(..).start()`.
pub struct HoistOptions {
    /// `--listen 127.0.0.1:0 --registry URL` first; None: only the test's own arguments.
    registry: Option<String>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    log: String,
    clear_env: bool,
    /// A directory holding the `hoist.toml` passed with `--config`.
    config: Option<tempfile::TempDir>,
}

impl HoistOptions {
    /// Sets an environment variable (`HOIST_*` settings, `DOCKER_CONFIG`, ...).
    pub fn env(mut self, key: &str, value: &str) -> HoistOptions {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn envs(mut self, vars: &[(&str, &str)]) -> HoistOptions {
        for (k, v) in vars {
            self = self.env(k, v);
        }
        self
    }

    /// Adds command-line arguments after `serve --listen .. --registry ..`.
    pub fn args(mut self, args: &[&str]) -> HoistOptions {
        self.args.extend(args.iter().map(|a| a.to_string()));
        self
    }

    /// Writes `toml` to a `hoist.toml` of hoist's own (removed with it) and passes
    /// `--config` with it: settings the environment cannot say (`[[auth.oidc]]`).
    pub fn config(mut self, toml: &str) -> HoistOptions {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("hoist.toml"), toml).expect("writing hoist.toml");
        self.config = Some(dir);
        self
    }

    /// `RUST_LOG` for hoist (default `hoist=info`, or the test's own `RUST_LOG`); an `env`
    /// entry for `RUST_LOG` still wins.
    pub fn log(mut self, filter: &str) -> HoistOptions {
        self.log = filter.into();
        self
    }

    /// Starts from an empty environment: only what the test sets, and `RUST_LOG`.
    pub fn clear_env(mut self) -> HoistOptions {
        self.clear_env = true;
        self
    }

    /// Spawns hoist and waits for its `hoist listening on URL` line (and, with
    /// `HOIST_ADMIN_LISTEN`, its `hoist admin on URL` line). Unless the environment is
    /// cleared, it is cleared of `DOCKER_CONFIG` and inherited `HOIST_*` variables, so only
    /// what the test sets applies.
    pub fn start(mut self) -> Result<Hoist> {
        let mut child = self.command().spawn().context("spawning hoist")?;
        let stderr = Arc::new(Mutex::new(String::new()));
        let err_pipe = child.stderr.take().context("hoist stderr")?;
        let sink = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err_pipe).lines().map_while(|l| l.ok()) {
                eprintln!("[hoist] {line}");
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let out_pipe = child.stdout.take().context("hoist stdout")?;
        let admin_listen = self.env.iter().any(|(k, _)| k == "HOIST_ADMIN_LISTEN");
        match read_addresses(out_pipe, admin_listen) {
            Ok((url, admin)) => Ok(Hoist {
                url,
                admin,
                child,
                stderr,
                _config: self.config.take(),
            }),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                std::thread::sleep(Duration::from_millis(200));
                bail!("{e}; stderr:\n{}", stderr.lock().unwrap())
            }
        }
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hoist"));
        cmd.arg("serve");
        if let Some(registry) = &self.registry {
            cmd.args(["--listen", "127.0.0.1:0", "--registry", registry]);
        }
        cmd.args(&self.args);
        if let Some(dir) = &self.config {
            cmd.arg("--config").arg(dir.path().join("hoist.toml"));
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if self.clear_env {
            cmd.env_clear();
        } else {
            cmd.env_remove("DOCKER_CONFIG");
            for (k, _) in std::env::vars() {
                if k.starts_with("HOIST_") {
                    cmd.env_remove(k);
                }
            }
        }
        cmd.env("RUST_LOG", &self.log);
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd
    }
}

/// Reads `hoist listening on URL` (and `hoist admin on http://ADDR` when `admin` is on) from
/// hoist's stdout, then keeps draining it so a later write never meets a closed pipe.
fn read_addresses(pipe: ChildStdout, admin: bool) -> Result<(String, Option<String>)> {
    let mut out = BufReader::new(pipe);
    let mut line = String::new();
    out.read_line(&mut line)?;
    let url = line
        .trim()
        .strip_prefix("hoist listening on ")
        .with_context(|| format!("unexpected first line from hoist: {line:?}"))?
        .to_string();
    let mut admin_addr = None;
    if admin {
        let mut line = String::new();
        out.read_line(&mut line)?;
        admin_addr = line
            .trim()
            .strip_prefix("hoist admin on http://")
            .map(String::from);
    }
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut out, &mut std::io::sink());
    });
    Ok((url, admin_addr))
}

impl Hoist {
    /// Options for a hoist in front of `registry_url`.
    pub fn options(registry_url: &str) -> HoistOptions {
        HoistOptions {
            registry: Some(registry_url.to_string()),
            args: Vec::new(),
            env: Vec::new(),
            log: std::env::var("RUST_LOG").unwrap_or_else(|_| "hoist=info".into()),
            clear_env: false,
            config: None,
        }
    }

    /// Options for `hoist serve ARGS` and nothing more: the test gives `--listen` and says
    /// where the registry is (a flag, the environment or a config file).
    pub fn serve(args: &[&str]) -> HoistOptions {
        HoistOptions {
            registry: None,
            ..Hoist::options("")
        }
        .args(args)
    }

    /// hoist with default settings in front of `registry`.
    pub fn start(registry: &Registry) -> Result<Hoist> {
        Hoist::options(&registry.url()).start()
    }

    /// hoist in front of `registry_url` with `env` set (`HOIST_*` settings).
    pub fn with_env(registry_url: &str, env: &[(&str, &str)]) -> Result<Hoist> {
        Hoist::options(registry_url).envs(env).start()
    }

    /// [`Hoist::with_env`] logging at [`VERBOSE_LOG`], whatever the test's own `RUST_LOG`.
    pub fn verbose(registry_url: &str, env: &[(&str, &str)]) -> Result<Hoist> {
        Hoist::options(registry_url)
            .log(VERBOSE_LOG)
            .envs(env)
            .start()
    }

    /// `127.0.0.1:PORT`, for raw TCP clients.
    pub fn addr(&self) -> String {
        self.url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string()
    }

    /// Everything hoist wrote to stderr so far.
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

    /// `GET /readyz` on the public port.
    pub fn readyz(&self) -> Answer {
        get(&format!("{}/readyz", self.url)).expect("GET /readyz")
    }

    /// Polls `/readyz` (15 s at most) until it answers `status` for a reason other than "not
    /// checked yet"; that answer.
    pub fn readyz_becomes(&self, status: u16) -> Answer {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let a = self.readyz();
            let settled = a.status == status && !a.text().contains("not checked yet");
            if settled || Instant::now() > deadline {
                assert_eq!(a.status, status, "{}", a.text());
                return a;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM (a drain begins).
    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits up to `limit` for the process to exit; whether it did.
    pub fn wait_exit(&mut self, limit: Duration) -> bool {
        wait_until(limit, || matches!(self.child.try_wait(), Ok(Some(_)))).is_ok()
    }
}

/// Runs `hoist ARGS` to the end (`config`, `push`, `--help`, ...) without a backtrace, with
/// `env` on top of an environment cleared of inherited `HOIST_*` variables.
pub fn run_hoist(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hoist"));
    cmd.args(args).env("RUST_BACKTRACE", "0");
    for (k, _) in std::env::vars() {
        if k.starts_with("HOIST_") {
            cmd.env_remove(k);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("running hoist")
}

impl Drop for Hoist {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
