//! The config file: a misspelt key stops the server at start, and the shipped
//! `config/hoist.toml` loads and serves a push.

use std::process::Command;

use crate::common::oci_bytes;
use crate::support::*;

#[test]
fn unknown_config_keys_stop_the_server_at_start() {
    let dir = scratch();
    let cfg = p(&dir, "hoist.toml");
    std::fs::write(&cfg, "listne = \"127.0.0.1:0\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hoist"))
        .args(["serve", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("listne"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_shipped_config_file_is_valid() {
    let reg = Registry::start().unwrap();
    let cfg = concat!(env!("CARGO_MANIFEST_DIR"), "/config/hoist.toml");
    let hoist = Hoist::options(&reg.url())
        .args(&["--config", cfg])
        .start()
        .unwrap();
    let a = push_bytes(&hoist, "/push/cfg/app:1", &oci_bytes("cfg/app:1").bytes).unwrap();
    assert_eq!(a.status, 201, "{}", a.body);
}
