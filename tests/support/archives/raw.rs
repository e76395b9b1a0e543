//! Block-level archive builders, for hostile archives (`tests/hostile.rs`).
//!
//! Every hostile case starts from a tiny *valid* image (an OCI layout archive or a
//! docker-archive) and breaks exactly one thing, so a rejection can only be caused by that one
//! thing. The tar writer emits raw 512-byte blocks, so headers a well-behaved library refuses to
//! write (PAX/ustar size disagreements, sparse, global, device entries, non-UTF-8 names) can be
//! produced too.
use serde_json::{Value, json};

use super::{OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST, REF_NAME, gzip, hex_of};
use crate::support::sha256;

pub const BLOCK: usize = 512;

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

// ---------------------------------------------------------------------------------------------
// Raw tar writing
// ---------------------------------------------------------------------------------------------

pub fn put_octal(field: &mut [u8], value: u64) {
    let width = field.len() - 1;
    let text = format!("{value:0width$o}");
    assert!(
        text.len() <= width,
        "{value} does not fit a {width}-digit octal field"
    );
    field[..width].copy_from_slice(text.as_bytes());
    field[width] = 0;
}

/// Recomputes the header checksum (after any field was changed by hand).
pub fn seal(block: &mut [u8; BLOCK]) {
    block[148..156].copy_from_slice(b"        ");
    let sum: u64 = block.iter().map(|&b| u64::from(b)).sum();
    let text = format!("{sum:06o}\0 ");
    block[148..156].copy_from_slice(text.as_bytes());
}

/// A ustar header block: `name` ≤ 100 bytes, `size` is what the header *claims*.
pub fn header(name: &[u8], typeflag: u8, size: u64, link: &[u8]) -> [u8; BLOCK] {
    assert!(name.len() <= 100, "name too long for a plain header");
    assert!(link.len() <= 100, "link too long for a plain header");
    let mut b = [0u8; BLOCK];
    b[..name.len()].copy_from_slice(name);
    let mode = if typeflag == b'5' { 0o755 } else { 0o644 };
    put_octal(&mut b[100..108], mode);
    put_octal(&mut b[108..116], 0);
    put_octal(&mut b[116..124], 0);
    put_octal(&mut b[124..136], size);
    put_octal(&mut b[136..148], 1_700_000_000);
    b[156] = typeflag;
    b[157..157 + link.len()].copy_from_slice(link);
    b[257..263].copy_from_slice(b"ustar\0");
    b[263..265].copy_from_slice(b"00");
    b[265..269].copy_from_slice(b"root");
    b[297..301].copy_from_slice(b"root");
    put_octal(&mut b[329..337], 0);
    put_octal(&mut b[337..345], 0);
    seal(&mut b);
    b
}

/// One PAX extended-header record: `"<len> <key>=<value>\n"`, `len` counting itself.
pub fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let rest = 1 + key.len() + 1 + value.len() + 1; // " key=value\n"
    let mut len = rest + 1;
    while rest + len.to_string().len() != len {
        len = rest + len.to_string().len();
    }
    let mut out = format!("{len} {key}=").into_bytes();
    out.extend_from_slice(value);
    out.push(b'\n');
    assert_eq!(out.len(), len);
    out
}

/// A tar stream written block by block.
#[derive(Default, Clone)]
pub struct Tar {
    buf: Vec<u8>,
}

impl Tar {
    pub fn new() -> Tar {
        Tar::default()
    }

    /// Appends one raw header block.
    pub fn block(&mut self, block: &[u8; BLOCK]) -> &mut Tar {
        self.buf.extend_from_slice(block);
        self
    }

    /// Appends entry data, zero-padded to a whole block.
    pub fn data(&mut self, data: &[u8]) -> &mut Tar {
        self.buf.extend_from_slice(data);
        let pad = (BLOCK - data.len() % BLOCK) % BLOCK;
        self.buf.extend(std::iter::repeat_n(0u8, pad));
        self
    }

    /// A header claiming `size_field`, followed by `data` (which may disagree with the claim).
    pub fn entry(
        &mut self,
        name: &[u8],
        typeflag: u8,
        size_field: u64,
        link: &[u8],
        data: &[u8],
    ) -> &mut Tar {
        self.block(&header(name, typeflag, size_field, link));
        self.data(data)
    }

    pub fn file(&mut self, name: &str, data: &[u8]) -> &mut Tar {
        self.entry(name.as_bytes(), b'0', data.len() as u64, b"", data)
    }

    pub fn dir(&mut self, name: &str) -> &mut Tar {
        self.entry(name.as_bytes(), b'5', 0, b"", b"")
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> &mut Tar {
        self.entry(name.as_bytes(), b'2', 0, target.as_bytes(), b"")
    }

    pub fn hardlink(&mut self, name: &str, target: &str) -> &mut Tar {
        self.entry(name.as_bytes(), b'1', 0, target.as_bytes(), b"")
    }

    /// A PAX header (`x` for the next entry, `g` global) holding `records`.
    pub fn pax(&mut self, typeflag: u8, records: &[(&str, &[u8])]) -> &mut Tar {
        let body: Vec<u8> = records.iter().flat_map(|(k, v)| pax_record(k, v)).collect();
        let name: &[u8] = if typeflag == b'g' {
            b"pax_global_header"
        } else {
            b"PaxHeaders/entry"
        };
        self.entry(name, typeflag, body.len() as u64, b"", &body)
    }

    /// A GNU `L` long-name header for the next entry.
    pub fn long_name(&mut self, name: &[u8]) -> &mut Tar {
        let mut data = name.to_vec();
        data.push(0);
        self.entry(b"././@LongLink", b'L', data.len() as u64, b"", &data)
    }

    /// Regular files, in order.
    pub fn files(&mut self, files: &[(String, Vec<u8>)]) -> &mut Tar {
        for (name, data) in files {
            self.file(name, data);
        }
        self
    }

    /// The bytes so far, without the end-of-archive marker.
    pub fn unterminated(&self) -> Vec<u8> {
        self.buf.clone()
    }

    /// The bytes so far plus the end-of-archive marker (two zero blocks).
    pub fn finish(&self) -> Vec<u8> {
        let mut out = self.buf.clone();
        out.extend(std::iter::repeat_n(0u8, 2 * BLOCK));
        out
    }
}

/// A tar of regular files, in order.
pub fn tar_of(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    Tar::new().files(files).finish()
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

// ---------------------------------------------------------------------------------------------
// OCI image layout archive
// ---------------------------------------------------------------------------------------------

/// An OCI image layout with one image: index.json → manifest → config + gzip layers.
///
/// The JSON documents are kept as values; `relink` rewrites descriptors from the current bytes,
/// so a test changes one thing, relinks what must stay consistent, and leaves the rest broken.
#[derive(Clone)]
pub struct Oci {
    /// Layer blobs as stored (gzip).
    pub layers: Vec<Vec<u8>>,
    pub config: Value,
    pub manifest: Value,
    pub index: Value,
    /// Blobs stored in the layout besides the image's own (e.g. a nested index).
    pub extra_blobs: Vec<Vec<u8>>,
    /// Exact config bytes, overriding `config` (for malformed JSON).
    pub raw_config: Option<Vec<u8>>,
    /// Exact manifest bytes, overriding `manifest` (for malformed JSON).
    pub raw_manifest: Option<Vec<u8>>,
}

impl Oci {
    /// A valid single-image layout tagged `1.0` by `org.opencontainers.image.ref.name`.
    pub fn valid(seed: &str) -> Oci {
        Oci::from_layer_tar(layer_tar(seed))
    }

    /// A valid layout whose one layer is `gzip(tar)`.
    pub fn from_layer_tar(tar: Vec<u8>) -> Oci {
        let layers = vec![gzip(&tar)];
        let config = config_for(&[sha256(&tar)]);
        let mut oci = Oci {
            layers,
            config,
            manifest: json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST}),
            index: json!({
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [{
                    "mediaType": OCI_MANIFEST,
                    "annotations": {REF_NAME: "1.0"},
                    "platform": {"architecture": "amd64", "os": "linux"},
                }],
            }),
            extra_blobs: Vec::new(),
            raw_config: None,
            raw_manifest: None,
        };
        oci.relink();
        oci
    }

    pub fn config_bytes(&self) -> Vec<u8> {
        match &self.raw_config {
            Some(raw) => raw.clone(),
            None => serde_json::to_vec(&self.config).unwrap(),
        }
    }

    pub fn manifest_bytes(&self) -> Vec<u8> {
        match &self.raw_manifest {
            Some(raw) => raw.clone(),
            None => serde_json::to_vec(&self.manifest).unwrap(),
        }
    }

    pub fn index_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.index).unwrap()
    }

    pub fn layer_digest(&self, i: usize) -> String {
        sha256(&self.layers[i])
    }

    pub fn config_digest(&self) -> String {
        sha256(&self.config_bytes())
    }

    pub fn manifest_digest(&self) -> String {
        sha256(&self.manifest_bytes())
    }

    /// Manifest descriptors (config, every layer) from the current bytes, then the index.
    pub fn relink(&mut self) {
        self.manifest["config"] = descriptor(OCI_CONFIG, &self.config_bytes());
        self.manifest["layers"] = Value::Array(
            self.layers
                .iter()
                .map(|l| descriptor(OCI_LAYER_GZIP, l))
                .collect(),
        );
        self.relink_index();
    }

    /// Only the index's descriptor of the manifest (digest and size) from the current bytes.
    pub fn relink_index(&mut self) {
        let bytes = self.manifest_bytes();
        let d = &mut self.index["manifests"][0];
        d["digest"] = json!(sha256(&bytes));
        d["size"] = json!(bytes.len());
    }

    /// Every file of the layout, in a typical writer's order (blobs first, index.json last).
    pub fn files(&self) -> Vec<(String, Vec<u8>)> {
        let mut files = vec![(
            "oci-layout".to_string(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        )];
        for layer in &self.layers {
            files.push((blob_path(&sha256(layer)), layer.clone()));
        }
        let config = self.config_bytes();
        files.push((blob_path(&sha256(&config)), config));
        let manifest = self.manifest_bytes();
        files.push((blob_path(&sha256(&manifest)), manifest));
        for blob in &self.extra_blobs {
            files.push((blob_path(&sha256(blob)), blob.clone()));
        }
        files.push(("index.json".to_string(), self.index_bytes()));
        files
    }

    pub fn archive(&self) -> Vec<u8> {
        tar_of(&self.files())
    }
}

// ---------------------------------------------------------------------------------------------
// docker-archive
// ---------------------------------------------------------------------------------------------

/// A docker-archive (`docker save` / skopeo shape) with one image: `<diffid>.tar` layers,
/// `<confighex>.json`, and `manifest.json` last.
#[derive(Clone)]
pub struct Docker {
    /// (entry name, uncompressed layer tar).
    pub layers: Vec<(String, Vec<u8>)>,
    pub config: Value,
    /// The whole `manifest.json` array.
    pub manifest: Value,
    /// Exact config bytes, overriding `config`.
    pub raw_config: Option<Vec<u8>>,
}

impl Docker {
    /// A valid image carrying `repo_tags` (`json!(["a/b:1"])`, `json!(null)`, ...).
    pub fn valid(seed: &str, repo_tags: Value) -> Docker {
        let tar = layer_tar(seed);
        let diff_id = sha256(&tar);
        let name = format!("{}.tar", hex_of(&diff_id));
        let config = config_for(std::slice::from_ref(&diff_id));
        let mut docker = Docker {
            layers: vec![(name.clone(), tar)],
            config,
            manifest: json!([{"Config": "", "RepoTags": repo_tags, "Layers": [name]}]),
            raw_config: None,
        };
        docker.relink_config();
        docker
    }

    pub fn config_bytes(&self) -> Vec<u8> {
        match &self.raw_config {
            Some(raw) => raw.clone(),
            None => serde_json::to_vec(&self.config).unwrap(),
        }
    }

    pub fn config_name(&self) -> String {
        format!("{}.json", hex_of(&sha256(&self.config_bytes())))
    }

    pub fn manifest_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.manifest).unwrap()
    }

    /// `manifest.json`'s `Config` from the current config bytes.
    pub fn relink_config(&mut self) {
        self.manifest[0]["Config"] = json!(self.config_name());
    }

    /// The config and `manifest.json` (no layers), config first.
    pub fn metadata_files(&self) -> Vec<(String, Vec<u8>)> {
        vec![
            (self.config_name(), self.config_bytes()),
            ("manifest.json".to_string(), self.manifest_bytes()),
        ]
    }

    pub fn files(&self) -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<(String, Vec<u8>)> = self.layers.clone();
        files.extend(self.metadata_files());
        files
    }

    pub fn archive(&self) -> Vec<u8> {
        tar_of(&self.files())
    }
}
