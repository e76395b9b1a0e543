//! One `hoist serve` process on a loopback port, with its stderr captured (and echoed, so a
//! failing test shows it). Built with options: extra environment, extra arguments, log level.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::Registry;

/// A running `hoist serve`; killed on drop.
pub struct Hoist {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    stderr: Arc<Mutex<String>>,
}

/// How to start hoist: `Hoist::options(url).env(..).arg(..).start()`.
pub struct HoistOptions {
    registry: String,
    args: Vec<String>,
    env: Vec<(String, String)>,
    log: String,
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

    /// `RUST_LOG` for hoist (default `hoist=info`, or the test's own `RUST_LOG`).
    pub fn log(mut self, filter: &str) -> HoistOptions {
        self.log = filter.into();
        self
    }

    /// Spawns hoist and waits for its `hoist listening on URL` line. The environment is
    /// cleared of `DOCKER_CONFIG` and inherited `HOIST_*` variables, so only what the test
    /// sets applies.
    pub fn start(self) -> Result<Hoist> {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hoist"));
        cmd.args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--registry",
            &self.registry,
        ])
        .args(&self.args)
        .env("RUST_LOG", &self.log)
        .env_remove("DOCKER_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        for (k, _) in std::env::vars() {
            if k.starts_with("HOIST_") {
                cmd.env_remove(k);
            }
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().context("spawning hoist")?;
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
        let mut out = BufReader::new(out_pipe);
        let mut line = String::new();
        out.read_line(&mut line)?;
        // Keep draining stdout so a later write never meets a closed pipe.
        std::thread::spawn(move || {
            let _ = std::io::copy(&mut out, &mut std::io::sink());
        });
        let Some(url) = line.trim().strip_prefix("hoist listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            std::thread::sleep(Duration::from_millis(200));
            bail!(
                "unexpected first line from hoist: {line:?}; stderr:\n{}",
                stderr.lock().unwrap()
            );
        };
        Ok(Hoist {
            url: url.to_string(),
            child,
            stderr,
        })
    }
}

impl Hoist {
    /// Options for a hoist in front of `registry_url`.
    pub fn options(registry_url: &str) -> HoistOptions {
        HoistOptions {
            registry: registry_url.to_string(),
            args: Vec::new(),
            env: Vec::new(),
            log: std::env::var("RUST_LOG").unwrap_or_else(|_| "hoist=info".into()),
        }
    }

    /// hoist with default settings in front of `registry`.
    pub fn start(registry: &Registry) -> Result<Hoist> {
        Hoist::options(&registry.url()).start()
    }

    /// hoist in front of `registry_url` with `env` set (`HOIST_*` settings).
    pub fn with_env(registry_url: &str, env: &[(&str, &str)]) -> Result<Hoist> {
        Hoist::options(registry_url).envs(env).start()
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

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Hoist {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
