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
    let layers: Vec<NoiseLayer> = layer_sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| noise_layer(seed, i, n))
        .collect();
    let config = image_config(&layers);
    let config_digest = sha256(&config);
    let manifest = image_manifest(&config_digest, config.len(), &layers);
    let manifest_digest = sha256(&manifest);
    let index = image_index(&manifest_digest, manifest.len(), ref_name);
    let digests = layers.iter().map(|l| l.digest.clone()).collect();
    let mut blobs: Vec<(String, Vec<u8>)> = layers.into_iter().map(|l| (l.digest, l.gz)).collect();
    if corrupt {
        let (_, layer) = blobs.first_mut().expect("a layer to corrupt");
        let last = layer.len() - 1;
        layer[last] ^= 0xff;
    }
    blobs.push((config_digest.clone(), config));
    blobs.push((manifest_digest.clone(), manifest));
    Image {
        tar: layout_tar(&index, &blobs),
        layers: digests,
        config: config_digest,
        manifest: manifest_digest,
    }
}

/// One gzip layer of an [`Image`]: its blob, the blob's digest and the diffID of the tar in it.
struct NoiseLayer {
    gz: Vec<u8>,
    digest: String,
    diff_id: String,
}

/// Layer `i` of the image seeded `seed`: one file `layer{i}/data.bin` of `len` bytes of noise.
fn noise_layer(seed: u64, i: usize, len: usize) -> NoiseLayer {
    let mut inner = tar::Builder::new(Vec::new());
    let data = noise(seed.wrapping_mul(1000).wrapping_add(i as u64), len);
    append(&mut inner, &format!("layer{i}/data.bin"), &data);
    let inner = inner.into_inner().expect("inner tar");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&inner).expect("gzip");
    let gz = gz.finish().expect("gzip");
    NoiseLayer {
        digest: sha256(&gz),
        diff_id: sha256(&inner),
        gz,
    }
}

/// The image config: amd64/linux, `rootfs.diff_ids` of `layers`.
fn image_config(layers: &[NoiseLayer]) -> Vec<u8> {
    let diff_ids: Vec<&str> = layers.iter().map(|l| l.diff_id.as_str()).collect();
    serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }))
    .expect("config json")
}

/// The OCI manifest of the config and the gzip `layers`.
fn image_manifest(config_digest: &str, config_len: usize, layers: &[NoiseLayer]) -> Vec<u8> {
    let layer_descs: Vec<_> = layers
        .iter()
        .map(|l| {
            json!({
                "mediaType": OCI_LAYER_GZIP,
                "digest": l.digest,
                "size": l.gz.len(),
            })
        })
        .collect();
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": OCI_CONFIG,
            "digest": config_digest,
            "size": config_len,
        },
        "layers": layer_descs,
    }))
    .expect("manifest json")
}

/// The layout's `index.json`: the one manifest, named `ref_name`.
fn image_index(manifest_digest: &str, manifest_len: usize, ref_name: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{
            "mediaType": OCI_MANIFEST,
            "digest": manifest_digest,
            "size": manifest_len,
            "annotations": {REF_NAME: ref_name},
        }],
    }))
    .expect("index json")
}

/// The layout as a tar: `oci-layout`, `index.json`, then `blobs` in order.
fn layout_tar(index: &[u8], blobs: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    append(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    append(&mut b, "index.json", index);
    for (d, bytes) in blobs {
        append(&mut b, &format!("blobs/sha256/{}", hex_of(d)), bytes);
    }
    b.into_inner().expect("outer tar")
}
