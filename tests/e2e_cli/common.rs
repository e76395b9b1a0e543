//! What every CLI test shares: the hoist binary, a test's own files and cache directory
//! (`Env`, which runs `hoist push` bounded in time), output as text, and the digest the
//! registry serves for a tag.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::support::{Registry, scratch, sha256};

pub const HOIST: &str = env!("CARGO_BIN_EXE_hoist");

/// A test's own files: archives, and the cache directory (`XDG_CACHE_HOME`), so no test
/// reads or writes the user's cache.
pub struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Env {
        Env { dir: scratch() }
    }

    pub fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    pub fn cache_home(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    pub fn cache_file(&self) -> PathBuf {
        self.cache_home().join("hoist/locations.json")
    }

    /// `hoist push ARGS...`, bounded in time, with this test's cache.
    pub fn push(&self, args: &[&str]) -> Output {
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
    pub fn push_line(&self, file: &Path, args: &[&str]) -> String {
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

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The digest of `repository:tag` as the registry serves it.
pub fn registry_digest(reg: &Registry, repository: &str, tag: &str) -> String {
    let (bytes, _) = reg.manifest(repository, tag).unwrap();
    sha256(&bytes)
}
