//! Block-level archive builders, for hostile archives (`tests/hostile/`).
//!
//! Every hostile case starts from a tiny *valid* image (an OCI layout archive or a
//! docker-archive) and breaks exactly one thing, so a rejection can only be caused by that one
//! thing. The tar writer emits raw 512-byte blocks, so headers a well-behaved library refuses to
//! write (PAX/ustar size disagreements, sparse, global, device entries, non-UTF-8 names) can be
//! produced too.
//!
//! [`block`] writes the blocks; [`oci`] and [`docker`] are the two valid images a case starts
//! from, kept as values so a test can change one field. Here: the pieces both share.
mod block;
mod docker;
mod oci;

pub use block::{BLOCK, Tar, header, pax_record, put_octal, seal, tar_of};
pub use docker::Docker;
pub use oci::Oci;

use serde_json::{Value, json};

use super::hex_of;
use crate::support::sha256;

/// The first 12 hex characters of a digest: what a message naming that digest must contain.
pub fn short(digest: &str) -> String {
    hex_of(digest)[..12].to_string()
}

/// `blobs/sha256/<hex>` for a digest.
pub fn blob_path(digest: &str) -> String {
    format!("blobs/sha256/{}", hex_of(digest))
}

/// A JSON descriptor for `bytes`.
pub fn descriptor(media_type: &str, bytes: &[u8]) -> Value {
    json!({"mediaType": media_type, "digest": sha256(bytes), "size": bytes.len()})
}

/// A one-file layer (an uncompressed tar); `seed` makes its bytes (and digest) unique.
pub fn layer_tar(seed: &str) -> Vec<u8> {
    Tar::new()
        .file(
            "hello.txt",
            format!("hello from hoist's hostile tests: {seed}\n").as_bytes(),
        )
        .finish()
}

/// A config for `diff_ids`.
pub fn config_for(diff_ids: &[String]) -> Value {
    json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/hello"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": diff_ids.iter().map(|_| json!({"created_by": "hoist hostile test"})).collect::<Vec<_>>(),
    })
}
