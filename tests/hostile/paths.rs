//! Entry paths: absolute, `..`, backslash, non-UTF-8, empty and NUL-bearing names are
//! ENTRY_PATH_INVALID.

use super::bodies::before_valid_oci;
use super::env::*;

fn bad_name(case: &str, name: &[u8], names: &[&str]) {
    let mut env = Env::new();
    let body = before_valid_oci(
        |t| {
            t.entry(name, b'0', 1, b"", b"x");
        },
        case,
    );
    env.reject(case, &body, 400, ENTRY_PATH_INVALID, names);
}

#[test]
fn absolute_entry_name_is_rejected() {
    bad_name("absolute-path", b"/tmp/hostile.txt", &["tmp/hostile.txt"]);
}

#[test]
fn dot_dot_entry_name_is_rejected() {
    bad_name("dot-dot-path", b"../escape.txt", &["../escape.txt"]);
}

#[test]
fn inner_dot_dot_escaping_entry_name_is_rejected() {
    bad_name(
        "inner-dot-dot-path",
        b"a/../../escape.txt",
        &["a/../../escape.txt"],
    );
}

#[test]
fn backslash_entry_name_is_rejected() {
    bad_name("backslash-path", b"dir\\escape.txt", &["escape.txt"]);
}

#[test]
fn non_utf8_entry_name_is_rejected() {
    bad_name("non-utf8-path", b"bad-\xff-name.txt", &["bad-"]);
}

#[test]
fn empty_entry_name_is_rejected() {
    bad_name("empty-path", b"", &[]);
}

#[test]
fn nul_in_pax_path_is_rejected() {
    let mut env = Env::new();
    let body = before_valid_oci(
        |t| {
            t.pax(b'x', &[("path", b"nul\0name.txt")])
                .file("placeholder.txt", b"x");
        },
        "nul-path",
    );
    env.reject("nul-path", &body, 400, ENTRY_PATH_INVALID, &["nul"]);
}
