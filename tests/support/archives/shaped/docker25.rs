//! `docker save` of Docker 25+: an OCI layout plus `manifest.json` (with `LayerSources`) and
//! `repositories`, written by walking a temp dir.
use serde_json::json;

use super::documents::{add_repository, config_json, manifest_entry, oci_manifest};
use super::oci::layout_tree;
use super::tree::{Item, TarOut};
use super::{Built, Layer, facts};
use crate::support::archives::{OCI_INDEX, OCI_LAYER_TAR, OCI_MANIFEST, hex_of};
use crate::support::sha256;

/// `fixture/d25:v1` (index annotation `docker.io/fixture/d25:v1`), two uncompressed layers.
pub fn docker25() -> Built {
    let a = Layer::small("d25-a");
    let b = Layer::big("d25-b", 200_000);
    let layers = [&a, &b];
    let config = config_json("amd64", "d25", &layers);
    let cfg_digest = sha256(&config);
    let manifest = oci_manifest(
        &cfg_digest,
        config.len(),
        &layers
            .iter()
            .map(|l| (l.diff_id.clone(), l.tar.len()))
            .collect::<Vec<_>>(),
        OCI_LAYER_TAR,
    );
    let man_digest = sha256(&manifest);
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{man_digest}","size":{},"annotations":{{"io.containerd.image.name":"docker.io/fixture/d25:v1","org.opencontainers.image.ref.name":"v1"}}}}]}}"#,
        manifest.len()
    );
    let mut blobs: Vec<(String, Vec<u8>)> = layers
        .iter()
        .map(|l| (l.diff_id.clone(), l.tar.clone()))
        .collect();
    blobs.push((cfg_digest.clone(), config.clone()));
    blobs.push((man_digest.clone(), manifest));
    let mut tree = layout_tree(&blobs, index.as_bytes());
    tree.add(
        "manifest.json",
        Item::File(docker25_manifest_json(&cfg_digest, &layers)),
    );
    let mut repositories = serde_json::Map::new();
    add_repository(&mut repositories, "fixture/d25:v1", hex_of(&cfg_digest));
    tree.add(
        "repositories",
        Item::File(serde_json::to_vec(&repositories).unwrap()),
    );
    let mut out = TarOut::new();
    tree.write(&mut out, "");
    let digests = layers.iter().map(|l| l.diff_id.clone()).collect();
    let image = facts(
        "fixture/d25:v1",
        config,
        &layers,
        digests,
        Some(man_digest),
        None,
    );
    Built {
        bytes: out.finish(),
        images: vec![image],
        index: None,
    }
}

/// Docker 25+'s `manifest.json`: paths into the layout's blobs, and `LayerSources` with each
/// (uncompressed) layer's descriptor.
fn docker25_manifest_json(cfg_digest: &str, layers: &[&Layer]) -> Vec<u8> {
    let mut sources = serde_json::Map::new();
    for l in layers {
        sources.insert(
            l.diff_id.clone(),
            json!({"mediaType": OCI_LAYER_TAR, "size": l.tar.len(), "digest": l.diff_id}),
        );
    }
    let blob_path = |digest: &str| format!("blobs/sha256/{}", hex_of(digest));
    let layer_paths = layers.iter().map(|l| blob_path(&l.diff_id)).collect();
    let mut entry = manifest_entry(blob_path(cfg_digest), "fixture/d25:v1", layer_paths);
    entry["LayerSources"] = json!(sources);
    serde_json::to_vec(&json!([entry])).unwrap()
}
