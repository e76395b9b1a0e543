//! The valid docker-archive a hostile case starts from: one image, `manifest.json` kept as a
//! JSON value.
use serde_json::{Value, json};

use super::{config_for, layer_tar, tar_of};
use crate::support::archives::hex_of;
use crate::support::sha256;

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
