//! Set-ups of the browser suite: a registry and hoist, archives on disk for the browser to
//! pick, API tokens and registry logins, and read-backs from the registry.

use std::path::PathBuf;
use std::process::Command;

use crate::support::{self, Hoist, Registry};

/// A registry and a hoist in front of it, default settings.
pub fn env() -> (Registry, Hoist) {
    let reg = Registry::start().expect("registry starts");
    let hoist = Hoist::start(&reg).expect("hoist starts");
    (reg, hoist)
}

/// Writes an archive where the browser can pick it up.
pub fn archive_file(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).expect("write archive");
    path
}

/// The manifest digest the registry serves for `repository:tag`, hashed here.
pub fn registry_digest(reg: &Registry, repository: &str, tag: &str) -> String {
    let (bytes, _) = reg
        .manifest(repository, tag)
        .expect("the manifest is in the registry");
    support::sha256(&bytes)
}

/// A fresh API token from `hoist token`, and the tokens file entry for it.
pub fn api_token(dir: &tempfile::TempDir) -> (String, PathBuf) {
    let out = Command::new(env!("CARGO_BIN_EXE_hoist"))
        .args(["token", "--name", "page-user", "--repository", "page/**"])
        .output()
        .expect("hoist token");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let token = text
        .lines()
        .find(|l| l.starts_with("hoist_"))
        .expect("a token line");
    let entry = text.split_once("[[token]]").expect("an entry").1;
    let path = dir.path().join("tokens.toml");
    std::fs::write(&path, format!("[[token]]{entry}")).unwrap();
    (token.to_string(), path)
}

/// A registry that takes only `user`'s Basic login (htpasswd, bcrypt).
pub fn htpasswd_registry(dir: &tempfile::TempDir, user: &str, password: &str) -> Registry {
    let hash = bcrypt::hash_with_result(password, 4).expect("bcrypt");
    let file = dir.path().join("htpasswd");
    let line = format!(
        "{user}:{}\n",
        hash.format_for_version(bcrypt::Version::TwoY)
    );
    std::fs::write(&file, line).expect("htpasswd");
    let auth = format!(
        "auth:\n  htpasswd:\n    realm: basic-realm\n    path: {}\n",
        file.display()
    );
    Registry::start_with(&auth).expect("registry starts")
}

/// The manifest digest of `repository:tag`, read from the registry with a Basic login.
pub fn registry_digest_as(reg: &Registry, login: &str, repository: &str, tag: &str) -> String {
    let url = format!("{}/v2/{repository}/manifests/{tag}", reg.url());
    let out = Command::new("curl")
        .args([
            "-sf",
            "-u",
            login,
            "-H",
            support::registry::ACCEPT_ALL,
            &url,
        ])
        .output()
        .expect("curl");
    assert!(
        out.status.success(),
        "{repository}:{tag} is not in the registry"
    );
    support::sha256(&out.stdout)
}
