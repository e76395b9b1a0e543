//! Image archives built in code. `shaped`: archives entry for entry as each tool writes them
//! (docker save, podman, Docker 25+, OCI layouts), with the facts a test checks against.
//! `raw`: block-level tar writing for hostile archives. [`image`]: a small OCI layout with
//! noise layers of chosen sizes, for the fault and auth suites.

pub mod raw;
pub mod shaped;

pub use raw::*;
pub use shaped::*;

use std::io::Write;

use serde_json::json;

use crate::support::sha256;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

/// The hex part of a `sha256:` digest.
pub fn hex_of(digest: &str) -> &str {
    digest.strip_prefix("sha256:").expect("a sha256 digest")
}

/// gzip with a fixed level and a zero header mtime (deterministic).
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// zstd, level 3.
pub fn zstd(bytes: &[u8]) -> Vec<u8> {
    zstd::encode_all(bytes, 3).unwrap()
}

/// Seeded, incompressible bytes (xorshift64*). The first byte is `N`, which starts no
/// compression magic (gzip 0x1f, zstd 0x28, xz 0xfd, bzip2 `B`), so noise is never sniffed
/// as a compressed stream.
pub fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        out.extend_from_slice(&s.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    if let Some(first) = out.first_mut() {
        *first = b'N';
    }
    out
}

// ---------------------------------------------------------------------------------------------
// A small OCI layout with noise layers.

/// An OCI layout archive and the digests a test checks.
pub struct Image {
    pub tar: Vec<u8>,
    /// Layer digests, in manifest order.
    pub layers: Vec<String>,
    pub config: String,
    /// The image manifest's digest.
    pub manifest: String,
}

/// One image: gzip layers of `layer_sizes` bytes of noise, config, OCI manifest, and an index
/// naming it `ref_name`.
pub fn image(seed: u64, layer_sizes: &[usize], ref_name: &str) -> Image {
    build_image(seed, layer_sizes, ref_name, false)
}

/// The same, where the last byte of the first layer is changed after its digest was taken, so
/// the push fails with DIGEST_MISMATCH once the layer's upload session is open and its bytes
/// sent.
pub fn image_corrupt(seed: u64, layer_sizes: &[usize], ref_name: &str) -> Image {
    build_image(seed, layer_sizes, ref_name, true)
}

fn append(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]) {
    let mut h = tar::Header::new_ustar();
    h.set_size(data.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h.set_cksum();
    b.append_data(&mut h, path, data).expect("tar append");
}

fn build_image(seed: u64, layer_sizes: &[usize], ref_name: &str, corrupt: bool) -> Image {
    let mut blobs: Vec<(String, Vec<u8>)> = Vec::new();
    let mut layer_descs = Vec::new();
    let mut diff_ids = Vec::new();
    let mut layers = Vec::new();
    for (i, &n) in layer_sizes.iter().enumerate() {
        let mut inner = tar::Builder::new(Vec::new());
        let data = noise(seed.wrapping_mul(1000).wrapping_add(i as u64), n);
        append(&mut inner, &format!("layer{i}/data.bin"), &data);
        let inner = inner.into_inner().expect("inner tar");
        diff_ids.push(sha256(&inner));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&inner).expect("gzip");
        let gz = gz.finish().expect("gzip");
        let d = sha256(&gz);
        layer_descs.push(json!({
            "mediaType": OCI_LAYER_GZIP,
            "digest": d,
            "size": gz.len(),
        }));
        layers.push(d.clone());
        blobs.push((d, gz));
    }
    if corrupt {
        let (_, layer) = blobs.first_mut().expect("a layer to corrupt");
        let last = layer.len() - 1;
        layer[last] ^= 0xff;
    }
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .expect("config json");
    let config_digest = sha256(&config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": OCI_CONFIG,
            "digest": config_digest,
            "size": config.len(),
        },
        "layers": layer_descs,
    }))
    .expect("manifest json");
    let manifest_digest = sha256(&manifest);
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{
            "mediaType": OCI_MANIFEST,
            "digest": manifest_digest,
            "size": manifest.len(),
            "annotations": {REF_NAME: ref_name},
        }],
    }))
    .expect("index json");
    blobs.push((config_digest.clone(), config));
    blobs.push((manifest_digest.clone(), manifest));
    let mut b = tar::Builder::new(Vec::new());
    append(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    append(&mut b, "index.json", &index);
    for (d, bytes) in &blobs {
        append(&mut b, &format!("blobs/sha256/{}", hex_of(d)), bytes);
    }
    Image {
        tar: b.into_inner().expect("outer tar"),
        layers,
        config: config_digest,
        manifest: manifest_digest,
    }
}
