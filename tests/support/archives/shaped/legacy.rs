//! Legacy `docker save` (Docker ≤ 24, graphdriver): `<cfghex>.json`,
//! `<v1id>/{VERSION,json,layer.tar}`, `manifest.json`, `repositories`, all in walk (lexical)
//! order; a layer whose diffID an earlier layer had is stored as a link to it.
use std::collections::HashMap;

use serde_json::json;

use super::documents::{add_repository, config_json, manifest_entry};
use super::tree::{Item, TarOut, Tree};
use super::{Built, ImageFacts, Layer, facts};
use crate::support::archives::hex_of;
use crate::support::sha256;

/// How a legacy archive stores a layer whose diffID an earlier layer already had.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum DupLink {
    /// `<v1id2>/layer.tar -> ../<v1id1>/layer.tar`, as `image/tarexport/save.go` does.
    Symlink,
    /// A hard link to `<v1id1>/layer.tar`.
    Hardlink,
}

/// One image for [`legacy_archive`].
pub struct LegacySpec<'a> {
    pub name: &'a str,
    pub label: &'a str,
    pub layers: Vec<&'a Layer>,
}

/// A legacy `docker save` of `specs` (in `docker save` argument order).
pub fn legacy_archive(specs: &[LegacySpec], dup: DupLink) -> Built {
    // v1 ids follow the layer chain (shared prefixes share ids); the salt is bumped until every
    // duplicate's directory sorts after the one it links to, so a link never points forward.
    let mut salt = 0u32;
    loop {
        if let Some(built) = legacy_try(specs, dup, salt) {
            return built;
        }
        salt += 1;
    }
}

fn legacy_try(specs: &[LegacySpec], dup: DupLink, salt: u32) -> Option<Built> {
    let mut archive = LegacyArchive::default();
    for spec in specs {
        archive.add_image(spec, dup, salt)?;
    }
    Some(archive.finish())
}

/// A legacy `docker save` being written: its tree, and what `manifest.json`, `repositories`
/// and the facts gather image by image.
#[derive(Default)]
struct LegacyArchive {
    tree: Tree,
    /// Where the `layer.tar` of each diffID was first written; later ones link to it.
    first_path: HashMap<String, String>,
    manifest: Vec<serde_json::Value>,
    repositories: serde_json::Map<String, serde_json::Value>,
    images: Vec<ImageFacts>,
}

impl LegacyArchive {
    /// Adds one image: its config, one `<v1id>/` directory per layer, its entries in
    /// `manifest.json` and `repositories`. `None` when a duplicate layer would link forward.
    fn add_image(&mut self, spec: &LegacySpec, dup: DupLink, salt: u32) -> Option<()> {
        let config = config_json("amd64", spec.label, &spec.layers);
        let cfg_digest = sha256(&config);
        let config_name = format!("{}.json", hex_of(&cfg_digest));
        self.tree.add(&config_name, Item::File(config.clone()));
        let mut parent = String::new();
        let mut chain = String::new();
        let mut layer_paths = Vec::new();
        for (i, layer) in spec.layers.iter().enumerate() {
            let top = i + 1 == spec.layers.len();
            chain = if chain.is_empty() {
                layer.diff_id.clone()
            } else {
                sha256(format!("{chain} {}", layer.diff_id).as_bytes())
            };
            let seed = format!(
                "{parent}|{chain}|{}|{salt}",
                if top { cfg_digest.as_str() } else { "" }
            );
            let v1id = hex_of(&sha256(seed.as_bytes())).to_string();
            let path = self.add_layer_dir(&v1id, &parent, top, layer, dup)?;
            layer_paths.push(path);
            parent = v1id;
        }
        self.manifest
            .push(manifest_entry(config_name, spec.name, layer_paths));
        add_repository(&mut self.repositories, spec.name, &parent);
        let digests = spec.layers.iter().map(|l| l.diff_id.clone()).collect();
        let image = facts(spec.name, config, &spec.layers, digests, None, None);
        self.images.push(image);
        Some(())
    }

    /// Writes `<v1id>/` with `VERSION`, `json` and `layer.tar` (a link when an earlier
    /// directory holds the same layer) and returns the `layer.tar` path; `None` when that
    /// link would point forward.
    fn add_layer_dir(
        &mut self,
        v1id: &str,
        parent: &str,
        top: bool,
        layer: &Layer,
        dup: DupLink,
    ) -> Option<String> {
        let mut v1json = json!({"id": v1id, "created": "1970-01-01T00:00:00Z", "container_config": {"Cmd": null}, "os": "linux"});
        if !parent.is_empty() {
            v1json["parent"] = json!(parent);
        }
        if top {
            v1json["config"] = json!({"Cmd": ["/bin/sh"]});
            v1json["architecture"] = json!("amd64");
        }
        let path = format!("{v1id}/layer.tar");
        self.tree.add(v1id, Item::Dir);
        self.tree
            .add(&format!("{v1id}/VERSION"), Item::File(b"1.0".to_vec()));
        self.tree.add(
            &format!("{v1id}/json"),
            Item::File(serde_json::to_vec(&v1json).unwrap()),
        );
        match self.first_path.get(&layer.diff_id) {
            Some(first) if *first != path => {
                if *first > path {
                    return None;
                }
                let item = match dup {
                    DupLink::Symlink => Item::Symlink(format!("../{first}")),
                    DupLink::Hardlink => Item::Hardlink(first.clone()),
                };
                self.tree.add(&path, item);
            }
            Some(_) => {}
            None => {
                self.first_path.insert(layer.diff_id.clone(), path.clone());
                self.tree.add(&path, Item::File(layer.tar.clone()));
            }
        }
        Some(path)
    }

    /// Adds `manifest.json` and `repositories` and writes the tree in walk order.
    fn finish(mut self) -> Built {
        self.tree.add(
            "manifest.json",
            Item::File(serde_json::to_vec(&self.manifest).unwrap()),
        );
        self.tree.add(
            "repositories",
            Item::File(serde_json::to_vec(&self.repositories).unwrap()),
        );
        let mut out = TarOut::new();
        self.tree.write(&mut out, "");
        Built {
            bytes: out.finish(),
            images: self.images,
            index: None,
        }
    }
}

/// `fixture/legacy:v1`: layers [A, B (1.5 MB noise), A again], the duplicate stored as a link.
pub fn legacy(dup: DupLink) -> Built {
    let a = Layer::small("legacy-a");
    let b = Layer::big("legacy-b", 1_500_000);
    legacy_archive(
        &[LegacySpec {
            name: "fixture/legacy:v1",
            label: "legacy",
            layers: vec![&a, &b, &a],
        }],
        dup,
    )
}

/// Two images in one legacy `docker save` (`fixture/one:v1`, `fixture/two:v1`) sharing their
/// base layer (one `<v1id>/` directory for both).
pub fn legacy_multi() -> Built {
    let base = Layer::small("shared-base");
    let one = Layer::small("one-top");
    let two = Layer::small("two-top");
    legacy_archive(
        &[
            LegacySpec {
                name: "fixture/one:v1",
                label: "one",
                layers: vec![&base, &one],
            },
            LegacySpec {
                name: "fixture/two:v1",
                label: "two",
                layers: vec![&base, &two],
            },
        ],
        DupLink::Symlink,
    )
}
