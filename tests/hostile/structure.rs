//! Archive structure: bytes that are no image archive (UNSUPPORTED_FORMAT), tar or gzip
//! streams cut short, and garbage after a gzip stream (ARCHIVE_INVALID).

use serde_json::Value;

use super::env::*;
use crate::support::archives::*;

#[test]
fn random_bytes_are_unsupported() {
    let mut env = Env::new();
    env.reject(
        "random-bytes",
        &noise(42, 64 * 1024),
        415,
        UNSUPPORTED_FORMAT,
        &[],
    );
}

#[test]
fn empty_body_is_unsupported() {
    let mut env = Env::new();
    env.reject("empty-body", b"", 415, UNSUPPORTED_FORMAT, &[]);
}

#[test]
fn tar_without_image_metadata_is_unsupported() {
    let mut env = Env::new();
    env.reject(
        "rootfs-tar",
        &layer_tar("just a rootfs"),
        415,
        UNSUPPORTED_FORMAT,
        &[],
    );
}

#[test]
fn archive_truncated_inside_layer_is_rejected() {
    let mut env = Env::new();
    let archive = Docker::valid("truncated", Value::Null).archive();
    // The layer is the first entry: header at 0, data from 512 for about 2 KiB.
    env.reject(
        "truncated-in-layer",
        &archive[..512 + 1000],
        400,
        ARCHIVE_INVALID,
        &[],
    );
}

#[test]
fn archive_truncated_inside_header_is_rejected() {
    let mut env = Env::new();
    let oci = Oci::valid("truncated-header");
    let index_len = oci.index_bytes().len().div_ceil(BLOCK) * BLOCK;
    let archive = oci.archive();
    let index_header = archive.len() - 2 * BLOCK - index_len - BLOCK;
    assert_eq!(&archive[index_header..index_header + 10], b"index.json");
    env.reject(
        "truncated-in-header",
        &archive[..index_header + 256],
        400,
        ARCHIVE_INVALID,
        &[],
    );
}

#[test]
fn truncated_gzip_stream_is_rejected() {
    let mut env = Env::new();
    let body = gzip(&Oci::valid("truncated-gzip").archive());
    env.reject(
        "truncated-gzip",
        &body[..body.len() / 2],
        400,
        ARCHIVE_INVALID,
        &[],
    );
}

#[test]
fn trailing_garbage_after_gzip_stream_is_rejected() {
    let mut env = Env::new();
    let mut body = gzip(&Oci::valid("trailing-garbage").archive());
    body.extend(noise(9, 1000));
    env.reject("gzip-trailing-garbage", &body, 400, ARCHIVE_INVALID, &[]);
}
