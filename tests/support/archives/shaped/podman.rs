//! podman save / skopeo copy `docker-archive:` (containers/image
//! `docker/internal/tarfile/writer.go`), streamed: layers `<diffidhex>.tar` (manifest order),
//! `<cfghex>.json`, then per layer `<id>/layer.tar -> ../<diffidhex>.tar`, `<id>/VERSION`,
//! `<id>/json`, then `manifest.json`, `repositories`. No directory entries.
use serde_json::json;

use super::documents::{add_repository, config_json, manifest_entry};
use super::tree::{Item, TarOut};
use super::{Built, Layer, facts};
use crate::support::archives::hex_of;
use crate::support::sha256;

/// `name` (podman names locally built images `localhost/...`) with three layers.
pub fn podman(name: &str) -> Built {
    let a = Layer::small("podman-a");
    let b = Layer::small("podman-b");
    let c = Layer::big("podman-c", 300_000);
    let layers = [&a, &b, &c];
    let config = config_json("amd64", "podman", &layers);
    let cfg_digest = sha256(&config);
    let layer_names: Vec<String> = layers
        .iter()
        .map(|l| format!("{}.tar", hex_of(&l.diff_id)))
        .collect();
    let mut out = TarOut::new();
    for (l, file) in layers.iter().zip(&layer_names) {
        out.put(file, &Item::File(l.tar.clone()));
    }
    let config_name = format!("{}.json", hex_of(&cfg_digest));
    out.put(&config_name, &Item::File(config.clone()));
    let top = put_podman_layer_dirs(&mut out, &layers);
    let manifest = json!([manifest_entry(config_name, name, layer_names)]);
    out.put(
        "manifest.json",
        &Item::File(serde_json::to_vec(&manifest).unwrap()),
    );
    let mut repositories = serde_json::Map::new();
    add_repository(&mut repositories, name, &top);
    out.put(
        "repositories",
        &Item::File(serde_json::to_vec(&repositories).unwrap()),
    );
    let digests = layers.iter().map(|l| l.diff_id.clone()).collect();
    let image = facts(name, config, &layers, digests, None, None);
    Built {
        bytes: out.finish(),
        images: vec![image],
        index: None,
    }
}

/// podman's per-layer `<id>/layer.tar -> ../<diffidhex>.tar`, `<id>/VERSION` and `<id>/json`,
/// ids chained from the diffIDs; returns the top layer's id.
fn put_podman_layer_dirs(out: &mut TarOut, layers: &[&Layer]) -> String {
    let mut last = String::new();
    for (i, l) in layers.iter().enumerate() {
        let id = if last.is_empty() {
            hex_of(&l.diff_id).to_string()
        } else {
            hex_of(&sha256(format!("{last} {}", hex_of(&l.diff_id)).as_bytes())).to_string()
        };
        let mut cfg = json!({"id": id});
        if !last.is_empty() {
            cfg["parent"] = json!(last);
        }
        if i + 1 == layers.len() {
            cfg["architecture"] = json!("amd64");
            cfg["os"] = json!("linux");
            cfg["config"] = json!({"Cmd": ["/bin/sh"]});
        }
        out.put(
            &format!("{id}/layer.tar"),
            &Item::Symlink(format!("../{}.tar", hex_of(&l.diff_id))),
        );
        out.put(&format!("{id}/VERSION"), &Item::File(b"1.0".to_vec()));
        out.put(
            &format!("{id}/json"),
            &Item::File(serde_json::to_vec(&cfg).unwrap()),
        );
        last = id;
    }
    last
}
