//! Limits: request size, decompressed size and ratio, entry path length, entry count and
//! metadata file sizes, each refused with its own code (and raised where a setting allows).

use std::io::Write;

use serde_json::Value;

use super::bodies::{MIB, before_valid_oci, docker_layer_via};
use super::env::*;
use crate::support::archives::*;
use crate::support::push_chunked;

fn padded_oci(seed: &str) -> Vec<u8> {
    let mut t = Tar::new();
    t.file("padding.bin", &noise(7, 200 * 1024))
        .files(&Oci::valid(seed).files());
    t.finish()
}

#[test]
fn request_body_over_limit_is_rejected() {
    let mut env = Env::with(&[("HOIST_LIMITS__REQUEST_BYTES", "65536")]);
    env.reject(
        "request-too-large",
        &padded_oci("big"),
        413,
        REQUEST_TOO_LARGE,
        &[],
    );
}

#[test]
fn chunked_request_body_over_limit_is_rejected() {
    let mut env = Env::with(&[("HOIST_LIMITS__REQUEST_BYTES", "65536")]);
    let ans = push_chunked(
        &env.hoist,
        "/push/hostile/chunked-too-large:t",
        &padded_oci("big"),
    )
    .expect("hoist answered the chunked upload");
    env.check_rejected(
        "chunked-too-large",
        "hostile/chunked-too-large",
        &ans,
        413,
        REQUEST_TOO_LARGE,
        &[],
    );
}

/// 200 MiB of zeros in one tar entry, compressed as it is generated (a few hundred KB).
fn bomb(mut enc: impl Write) {
    let size = 200 * MIB;
    enc.write_all(&header(b"bomb.bin", b'0', size, b""))
        .unwrap();
    let zeros = vec![0u8; MIB as usize];
    for _ in 0..200 {
        enc.write_all(&zeros).unwrap();
    }
    enc.write_all(&Oci::valid("bomb").archive()).unwrap();
}

#[test]
fn gzip_bomb_is_rejected() {
    let mut env = Env::with(&[("HOIST_LIMITS__DECOMPRESSED_BYTES", "10000000")]);
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    bomb(&mut enc);
    let body = enc.finish().unwrap();
    assert!(body.len() < 2 * MIB as usize);
    env.reject("gzip-bomb", &body, 413, DECOMPRESSED_TOO_LARGE, &[]);
}

#[test]
fn zstd_bomb_is_rejected() {
    let mut env = Env::with(&[("HOIST_LIMITS__DECOMPRESSED_BYTES", "10000000")]);
    let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    bomb(&mut enc);
    let body = enc.finish().unwrap();
    assert!(body.len() < 2 * MIB as usize);
    env.reject("zstd-bomb", &body, 413, DECOMPRESSED_TOO_LARGE, &[]);
}

/// A gzip archive whose first entry is 80 MiB of zeros in a file hoist reads and drops (a
/// legacy `<id>/json`), then a valid image: about 1000:1 once past 64 MiB.
fn compressible_archive() -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let size = 80 * MIB;
    enc.write_all(&header(b"pad/json", b'0', size, b""))
        .unwrap();
    let zeros = vec![0u8; MIB as usize];
    for _ in 0..80 {
        enc.write_all(&zeros).unwrap();
    }
    enc.write_all(&Oci::valid("ratio").archive()).unwrap();
    enc.finish().unwrap()
}

/// The archive-level branch of DECOMPRESSED_TOO_LARGE: under the size limit, over
/// `limits.max_ratio` (default 200:1) once 64 MiB are decompressed.
#[test]
fn archive_over_max_ratio_is_rejected() {
    let mut env = Env::new();
    let ans = env.reject(
        "archive-ratio",
        &compressible_archive(),
        413,
        DECOMPRESSED_TOO_LARGE,
        &["limits.max_ratio"],
    );
    assert!(ans.message().contains("200:1"), "{ans:?}");
}

/// `limits.max_ratio` raised: the same archive goes through.
#[test]
fn max_ratio_setting_lets_a_compressible_archive_through() {
    let env = Env::with(&[("HOIST_LIMITS__MAX_RATIO", "5000")]);
    env.accept("/push/hostile/ratio-ok:t", &compressible_archive());
    assert_eq!(env.reg.tags("hostile/ratio-ok"), ["t"]);
}

/// An entry name of 91 bytes: fine by default (4096), ENTRY_PATH_INVALID under
/// `limits.path_bytes = 80` (which still admits the 77-byte `blobs/sha256/<hex>` names).
#[test]
fn entry_name_over_path_bytes_is_rejected() {
    let name = format!("long/{}", "n".repeat(86));
    let body = before_valid_oci(
        |t| {
            t.file(&name, b"x");
        },
        "path-bytes",
    );
    Env::new().accept("/push/hostile/path-bytes-ok:t", &body);
    let mut env = Env::with(&[("HOIST_LIMITS__PATH_BYTES", "80")]);
    env.reject("path-bytes", &body, 400, ENTRY_PATH_INVALID, &["too long"]);
}

/// `limits.path_bytes` raised to 8192: a docker archive whose layer sits at a 5000-byte path
/// (a PAX `path`) and is listed under that path in manifest.json must go through.
#[test]
fn raised_path_bytes_applies_to_layer_references() {
    let env = Env::with(&[("HOIST_LIMITS__PATH_BYTES", "8192")]);
    let long = format!("{}/layer.tar", "d".repeat(4990));
    let body = docker_layer_via(&long, |t, layer| {
        t.pax(b'x', &[("path", long.as_bytes())]).entry(
            b"placeholder",
            b'0',
            layer.len() as u64,
            b"",
            layer,
        );
    });
    env.accept("/push/hostile/long-path:t", &body);
    assert_eq!(env.reg.tags("hostile/long-path"), ["t"]);
}

#[test]
fn too_many_entries_is_rejected() {
    let mut env = Env::with(&[("HOIST_LIMITS__ENTRIES", "10")]);
    let body = before_valid_oci(
        |t| {
            for i in 0..50 {
                t.file(&format!("junk/{i:02}.txt"), b"x");
            }
        },
        "entries",
    );
    env.reject("too-many-entries", &body, 413, TOO_MANY_ENTRIES, &[]);
}

const METADATA_LIMIT: &[(&str, &str)] = &[("HOIST_LIMITS__METADATA_FILE_BYTES", "65536")];

fn pad_json(mut bytes: Vec<u8>, to: usize) -> Vec<u8> {
    bytes.resize(to, b' '); // trailing whitespace: still the same, valid JSON
    bytes
}

#[test]
fn oversized_manifest_json_is_rejected() {
    let mut env = Env::with(METADATA_LIMIT);
    let d = Docker::valid("big-manifest-json", Value::Null);
    let mut files = d.files();
    let last = files.last_mut().unwrap();
    last.1 = pad_json(last.1.clone(), 70_000);
    env.reject(
        "big-manifest-json",
        &tar_of(&files),
        413,
        METADATA_TOO_LARGE,
        &["manifest.json"],
    );
}

#[test]
fn oversized_index_json_is_rejected() {
    let mut env = Env::with(METADATA_LIMIT);
    let mut files = Oci::valid("big-index").files();
    let last = files.last_mut().unwrap();
    assert_eq!(last.0, "index.json");
    last.1 = pad_json(last.1.clone(), 70_000);
    env.reject(
        "big-index-json",
        &tar_of(&files),
        413,
        METADATA_TOO_LARGE,
        &["index.json"],
    );
}

#[test]
fn oversized_config_is_rejected() {
    let mut env = Env::with(METADATA_LIMIT);
    let mut d = Docker::valid("big-config", Value::Null);
    d.raw_config = Some(pad_json(d.config_bytes(), 70_000));
    d.relink_config();
    let name = d.config_name();
    env.reject(
        "big-config",
        &d.archive(),
        413,
        METADATA_TOO_LARGE,
        &[&name[..12]],
    );
}

#[test]
fn metadata_over_total_limit_is_rejected() {
    let mut env = Env::with(&[
        ("HOIST_LIMITS__METADATA_FILE_BYTES", "65536"),
        ("HOIST_LIMITS__METADATA_TOTAL_BYTES", "100000"),
    ]);
    let mut d = Docker::valid("big-total", Value::Null);
    d.raw_config = Some(pad_json(d.config_bytes(), 60_000));
    d.relink_config();
    let mut files = d.files();
    let last = files.last_mut().unwrap();
    last.1 = pad_json(last.1.clone(), 60_000);
    env.reject(
        "metadata-total",
        &tar_of(&files),
        413,
        METADATA_TOO_LARGE,
        &[],
    );
}
