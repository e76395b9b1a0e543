//! A small OCI layout archive, built in code.

use std::io::Write;

use serde_json::json;

pub fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

/// A one-layer OCI layout archive named `ref_name` (the layer: `size` bytes of noise, gzip);
/// `corrupt` flips the layer's last byte after its digest was taken (DIGEST_MISMATCH once
/// its bytes were sent).
pub fn oci_archive(seed: u64, size: usize, ref_name: &str, corrupt: bool) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut noise = Vec::with_capacity(size + 8);
    while noise.len() < size {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        noise.extend_from_slice(&state.to_le_bytes());
    }
    noise.truncate(size);
    let mut inner = tar::Builder::new(Vec::new());
    append(&mut inner, "data.bin", &noise);
    let inner = inner.into_inner().expect("tar");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&inner).expect("gzip");
    let mut layer = gz.finish().expect("gzip");
    let layer_digest = sha256(&layer);
    if corrupt {
        let last = layer.len() - 1;
        layer[last] ^= 0xff;
    }
    let config = serde_json::to_vec(&json!({
        "architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": [sha256(&inner)]},
    }))
    .expect("json");
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sha256(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer_digest, "size": layer.len()}],
    }))
    .expect("json");
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": sha256(&manifest), "size": manifest.len(),
                       "annotations": {"org.opencontainers.image.ref.name": ref_name}}],
    }))
    .expect("json");
    let mut b = tar::Builder::new(Vec::new());
    append(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
    append(&mut b, "index.json", &index);
    for blob in [&layer, &config, &manifest] {
        let d = if std::ptr::eq(blob, &layer) {
            layer_digest.clone()
        } else {
            sha256(blob)
        };
        let hex = d.trim_start_matches("sha256:");
        append(&mut b, &format!("blobs/sha256/{hex}"), blob);
    }
    b.into_inner().expect("tar")
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
