//! The valid OCI image layout a hostile case starts from: one image, its documents kept as
//! JSON values (or exact bytes) and relinked on demand.
use serde_json::{Value, json};

use super::{blob_path, config_for, descriptor, layer_tar, tar_of};
use crate::support::archives::{
    OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST, REF_NAME, gzip,
};
use crate::support::sha256;

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
