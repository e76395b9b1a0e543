//! Links: symlinks and hardlinks that escape, loop, dangle, point at a directory or forward
//! (hardlinks) are LINK_INVALID.

use super::bodies::docker_layer_via;
use super::env::*;
use crate::support::archives::Tar;

fn bad_link(case: &str, entries: impl FnOnce(&mut Tar, &[u8]), names: &[&str]) {
    let mut env = Env::new();
    let body = docker_layer_via("a/layer.tar", entries);
    env.reject(case, &body, 400, LINK_INVALID, names);
}

#[test]
fn symlink_escaping_archive_is_rejected() {
    bad_link(
        "symlink-escape",
        |t, layer| {
            t.file("b/layer.tar", layer)
                .symlink("a/layer.tar", "../../etc/passwd");
        },
        &["a/layer.tar"],
    );
}

#[test]
fn absolute_symlink_is_rejected() {
    bad_link(
        "symlink-absolute",
        |t, layer| {
            t.file("b/layer.tar", layer)
                .symlink("a/layer.tar", "/etc/passwd");
        },
        &["a/layer.tar"],
    );
}

#[test]
fn symlink_cycle_is_rejected() {
    bad_link(
        "symlink-cycle",
        |t, _| {
            t.symlink("a/layer.tar", "../b/layer.tar")
                .symlink("b/layer.tar", "../a/layer.tar");
        },
        &["a/layer.tar", "b/layer.tar"],
    );
}

#[test]
fn dangling_symlink_layer_is_rejected() {
    bad_link(
        "symlink-dangling",
        |t, _| {
            t.symlink("a/layer.tar", "../missing/layer.tar");
        },
        &["a/layer.tar", "missing/layer.tar"],
    );
}

#[test]
fn symlink_to_directory_is_rejected() {
    bad_link(
        "symlink-to-dir",
        |t, _| {
            t.dir("somedir/").symlink("a/layer.tar", "../somedir");
        },
        &["a/layer.tar"],
    );
}

#[test]
fn hardlink_to_later_entry_is_rejected() {
    bad_link(
        "hardlink-forward",
        |t, layer| {
            t.hardlink("a/layer.tar", "b/layer.tar")
                .file("b/layer.tar", layer);
        },
        &["a/layer.tar"],
    );
}

#[test]
fn hardlink_to_missing_entry_is_rejected() {
    bad_link(
        "hardlink-missing",
        |t, _| {
            t.hardlink("a/layer.tar", "missing/layer.tar");
        },
        &["a/layer.tar", "missing/layer.tar"],
    );
}
