//! Image archives built in code, entry for entry as each tool writes them
//! (`reference/peer-tools.md` §5, `reference/registry-protocol.md` §6.1): legacy `docker save`
//! (Docker ≤ 24), podman/skopeo `docker-archive:`, Docker 25+ `docker save` (OCI layout plus
//! `manifest.json`), containerd/buildkit OCI layouts (plain, `./`-prefixed, one leading folder),
//! a nested multi-platform OCI index, and a two-image `docker save`.
//!
//! Everything is deterministic (fixed mtimes, seeded noise), small, and each builder returns the
//! archive bytes with the facts a test checks against: config digests, diffIDs, blob digests,
//! manifest/index digests where the archive has one, and the names the images carry.
use std::collections::{BTreeMap, HashMap};

use serde_json::json;

use super::{
    OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_LAYER_TAR, OCI_MANIFEST, gzip, hex_of, noise, zstd,
};
use crate::support::sha256;

/// Fixed mtime for every entry, so the same builder always yields the same bytes.
const MTIME: u64 = 1_700_000_000;

/// A filesystem layer: its uncompressed tar and diffID.
#[derive(Clone, Debug)]
pub struct Layer {
    pub tar: Vec<u8>,
    pub diff_id: String,
}

impl Layer {
    /// A layer holding `files` (paths relative to the root, without leading `/`) under the
    /// directories they need.
    pub fn new(files: &[(&str, Vec<u8>)]) -> Layer {
        let mut b = tar::Builder::new(Vec::new());
        let mut dirs_done: Vec<String> = Vec::new();
        for (path, data) in files {
            let parts: Vec<&str> = path.split('/').collect();
            for i in 1..parts.len() {
                let dir = format!("{}/", parts[..i].join("/"));
                if !dirs_done.contains(&dir) {
                    let mut h = tar::Header::new_ustar();
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_mode(0o755);
                    h.set_mtime(MTIME);
                    h.set_size(0);
                    b.append_data(&mut h, &dir, std::io::empty()).unwrap();
                    dirs_done.push(dir);
                }
            }
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(0o644);
            h.set_mtime(MTIME);
            h.set_size(data.len() as u64);
            b.append_data(&mut h, path, data.as_slice()).unwrap();
        }
        let tar = b.into_inner().unwrap();
        let diff_id = sha256(&tar);
        Layer { tar, diff_id }
    }

    /// A few small text files (some KB) named after `label`.
    pub fn small(label: &str) -> Layer {
        let text: String = (0..120).map(|i| format!("{label} line {i}\n")).collect();
        Layer::new(&[
            (
                &format!("hoist/{label}/README"),
                format!("layer {label}\n").into_bytes(),
            ),
            (&format!("hoist/{label}/lines.txt"), text.into_bytes()),
            (
                &format!("hoist/{label}/data.bin"),
                noise(label.len() as u64 * 31 + 7, 3000),
            ),
        ])
    }

    /// One layer with an incompressible file of `bytes` bytes.
    pub fn big(label: &str, bytes: usize) -> Layer {
        Layer::new(&[
            (
                &format!("hoist/{label}/big.bin"),
                noise(0xB16 + bytes as u64, bytes),
            ),
            (&format!("hoist/{label}/note"), b"big layer\n".to_vec()),
        ])
    }
}

/// What a test needs to know about one image of an archive.
#[derive(Clone, Debug)]
pub struct ImageFacts {
    /// Repository the image lands in when pushed to `/push` (registry host dropped).
    pub repository: String,
    /// Tag it carries in the archive.
    pub tag: String,
    /// The name exactly as written in the archive (`RepoTags`, annotation).
    pub archive_name: String,
    pub config: Vec<u8>,
    pub config_digest: String,
    pub diff_ids: Vec<String>,
    /// Digests of the layer blobs as stored in the archive (== diffIDs when uncompressed).
    pub layer_digests: Vec<String>,
    /// Digest of the image manifest in the archive, for forms that have one.
    pub manifest_digest: Option<String>,
    /// `os/arch` for children of a multi-platform index.
    pub platform: Option<String>,
}

/// The index of a multi-platform archive.
#[derive(Clone, Debug)]
pub struct IndexFacts {
    pub repository: String,
    pub tag: String,
    pub digest: String,
    pub bytes: Vec<u8>,
}

/// An archive and its facts.
#[derive(Clone, Debug)]
pub struct Built {
    pub bytes: Vec<u8>,
    pub images: Vec<ImageFacts>,
    pub index: Option<IndexFacts>,
}

impl Built {
    /// The archive, gzip-compressed as a whole (`docker save | gzip`).
    pub fn gzipped(&self) -> Vec<u8> {
        gzip(&self.bytes)
    }

    /// The archive, zstd-compressed as a whole.
    pub fn zstded(&self) -> Vec<u8> {
        zstd(&self.bytes)
    }

    /// Entry names in archive order with their type flag (for structure checks).
    pub fn entries(&self) -> Vec<(String, char, String)> {
        list_entries(&self.bytes)
    }
}

/// `(name, typeflag, linkname)` of every entry, in order, names exactly as stored.
pub fn list_entries(bytes: &[u8]) -> Vec<(String, char, String)> {
    let mut a = tar::Archive::new(bytes);
    a.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let h = e.header();
            let name = String::from_utf8(e.path_bytes().to_vec()).unwrap();
            let link = h
                .link_name_bytes()
                .map(|l| String::from_utf8(l.to_vec()).unwrap())
                .unwrap_or_default();
            (name, h.entry_type().as_byte() as char, link)
        })
        .collect()
}

/// The bytes of one regular entry.
pub fn entry_bytes(bytes: &[u8], name: &str) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut a = tar::Archive::new(bytes);
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path_bytes().as_ref() == name.as_bytes() {
            let mut v = Vec::new();
            e.read_to_end(&mut v).unwrap();
            return Some(v);
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Raw tar writing: names and link targets byte-exact (no normalisation of `./` or slashes).

enum Item {
    Dir,
    File(Vec<u8>),
    Symlink(String),
    Hardlink(String),
}

struct TarOut {
    b: tar::Builder<Vec<u8>>,
}

impl TarOut {
    fn new() -> TarOut {
        TarOut {
            b: tar::Builder::new(Vec::new()),
        }
    }

    fn put(&mut self, name: &str, item: &Item) {
        let mut h = tar::Header::new_ustar();
        let (kind, mode, data, link): (tar::EntryType, u32, &[u8], &str) = match item {
            Item::Dir => (tar::EntryType::Directory, 0o755, &[], ""),
            Item::File(d) => (tar::EntryType::Regular, 0o644, d, ""),
            Item::Symlink(t) => (tar::EntryType::Symlink, 0o777, &[], t),
            Item::Hardlink(t) => (tar::EntryType::Link, 0o644, &[], t),
        };
        assert!(
            name.len() <= 100 && link.len() <= 100,
            "fixture name too long: {name}"
        );
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_mtime(MTIME);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(data.len() as u64);
        let u = h.as_ustar_mut().unwrap();
        u.name[..name.len()].copy_from_slice(name.as_bytes());
        u.linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_cksum();
        self.b.append(&h, data).unwrap();
    }

    fn finish(self) -> Vec<u8> {
        self.b.into_inner().unwrap()
    }
}

/// A directory tree written the way Go's `filepath.Walk` + `archive/tar` does it (Docker's
/// `archive.Tar` of its temp dir): per directory, names in lexical order, a directory's entry
/// (with a trailing `/`) right before its children. Keys are path components, so BTreeMap
/// order is exactly walk order.
#[derive(Default)]
struct Tree(BTreeMap<Vec<String>, Item>);

impl Tree {
    fn add(&mut self, path: &str, item: Item) {
        let key: Vec<String> = path.split('/').map(String::from).collect();
        self.0.insert(key, item);
    }

    /// Writes the tree; `root` (e.g. `./`) is written as an entry of its own and prefixed to
    /// every name when not empty.
    fn write(&self, out: &mut TarOut, root: &str) {
        if !root.is_empty() {
            out.put(root, &Item::Dir);
        }
        for (key, item) in &self.0 {
            let mut name = format!("{root}{}", key.join("/"));
            if matches!(item, Item::Dir) {
                name.push('/');
            }
            out.put(&name, item);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// JSON documents.

/// An image config with `rootfs.diff_ids` of `layers`.
fn config_json(arch: &str, label: &str, layers: &[&Layer]) -> Vec<u8> {
    let diff_ids: Vec<&str> = layers.iter().map(|l| l.diff_id.as_str()).collect();
    let history: Vec<_> = (0..layers.len())
        .map(|i| json!({"created": "2024-01-01T00:00:00Z", "created_by": format!("fixture {label} layer {i}")}))
        .collect();
    let v = json!({
        "architecture": arch,
        "config": {
            "Cmd": ["/bin/sh"],
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            "Labels": {"fixture": label},
        },
        "created": "2024-01-01T00:00:00Z",
        "history": history,
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    });
    serde_json::to_vec(&v).unwrap()
}

/// A descriptor, fields in Go struct order as containerd/docker marshal them.
fn desc(media_type: &str, digest: &str, size: usize) -> String {
    format!(r#"{{"mediaType":"{media_type}","digest":"{digest}","size":{size}}}"#)
}

fn oci_manifest(
    config_digest: &str,
    config_len: usize,
    layers: &[(String, usize)],
    media: &str,
) -> Vec<u8> {
    let layers: Vec<String> = layers.iter().map(|(d, n)| desc(media, d, *n)).collect();
    format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_MANIFEST}","config":{},"layers":[{}]}}"#,
        desc(OCI_CONFIG, config_digest, config_len),
        layers.join(",")
    )
    .into_bytes()
}

const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// Splits `host/repo:tag` into the repository hoist lands it in (host dropped the docker way:
/// a first component with `.` or `:` or equal to `localhost`) and the tag.
pub fn landing(name: &str) -> (String, String) {
    let (repo, tag) = name.rsplit_once(':').expect("name with tag");
    let repo = match repo.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            rest
        }
        _ => repo,
    };
    (repo.to_string(), tag.to_string())
}

fn facts(
    name: &str,
    config: Vec<u8>,
    layers: &[&Layer],
    layer_digests: Vec<String>,
    manifest_digest: Option<String>,
    platform: Option<&str>,
) -> ImageFacts {
    let (repository, tag) = landing(name);
    ImageFacts {
        repository,
        tag,
        archive_name: name.to_string(),
        config_digest: sha256(&config),
        config,
        diff_ids: layers.iter().map(|l| l.diff_id.clone()).collect(),
        layer_digests,
        manifest_digest,
        platform: platform.map(String::from),
    }
}

// ---------------------------------------------------------------------------------------------
// docker save, Docker ≤ 24 (graphdriver): `<cfghex>.json`, `<v1id>/{VERSION,json,layer.tar}`,
// `manifest.json`, `repositories`, all in walk (lexical) order.

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

/// One image's entry in a `docker save` `manifest.json`: its config file, its name and its
/// layer files in manifest order.
fn manifest_entry(config: String, name: &str, layers: Vec<String>) -> serde_json::Value {
    json!({
        "Config": config,
        "RepoTags": [name],
        "Layers": layers,
    })
}

/// Records `name` (`repo:tag`) in a `repositories` file as the image `id`.
fn add_repository(
    repositories: &mut serde_json::Map<String, serde_json::Value>,
    name: &str,
    id: &str,
) {
    let (repo, tag) = name.rsplit_once(':').unwrap();
    repositories
        .entry(repo.to_string())
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .unwrap()
        .insert(tag.to_string(), json!(id));
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

// ---------------------------------------------------------------------------------------------
// podman save / skopeo copy docker-archive: (containers/image docker/internal/tarfile/writer.go):
// streamed: layers `<diffidhex>.tar` (manifest order), `<cfghex>.json`, then per layer
// `<id>/layer.tar -> ../<diffidhex>.tar`, `<id>/VERSION`, `<id>/json`, then `manifest.json`,
// `repositories`. No directory entries.

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

// ---------------------------------------------------------------------------------------------
// docker save, Docker 25+: an OCI layout plus manifest.json, written by walking a temp dir.

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

// ---------------------------------------------------------------------------------------------
// OCI image layouts with gzip layers (containerd export / buildkit type=oci / skopeo oci-archive).

/// How the layout is tarred.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum OciShape {
    /// containerd's exporter: records sorted by name, `blobs/`, `blobs/sha256/` dirs.
    Plain,
    /// `tar -C dir -cf - .`: `./`, `./blobs/`, … every name starts with `./`.
    DotSlash,
    /// `tar -cf - myimage` of the layout directory, `index.json` and `oci-layout` before the
    /// blobs (directory order, not lexical).
    Folder,
}

/// A gzip OCI layout holding one image named `name` (full reference, host included).
pub fn oci_layout(shape: OciShape, name: &str) -> Built {
    let label = name.replace(['/', ':', '.'], "-");
    let a = Layer::small(&format!("{label}-a"));
    let b = Layer::small(&format!("{label}-b"));
    let layers = [&a, &b];
    let config = config_json("amd64", &label, &layers);
    let cfg_digest = sha256(&config);
    let gz: Vec<Vec<u8>> = layers.iter().map(|l| gzip(&l.tar)).collect();
    let gz_digests: Vec<String> = gz.iter().map(|g| sha256(g)).collect();
    let manifest = oci_manifest(
        &cfg_digest,
        config.len(),
        &gz.iter().map(|g| (sha256(g), g.len())).collect::<Vec<_>>(),
        OCI_LAYER_GZIP,
    );
    let man_digest = sha256(&manifest);
    let tag = name.rsplit_once(':').unwrap().1;
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_MANIFEST}","digest":"{man_digest}","size":{},"annotations":{{"io.containerd.image.name":"{name}","org.opencontainers.image.ref.name":"{tag}"}},"platform":{{"architecture":"amd64","os":"linux"}}}}]}}"#,
        manifest.len()
    );
    let mut blobs: Vec<(String, Vec<u8>)> = gz.iter().map(|g| (sha256(g), g.clone())).collect();
    blobs.push((cfg_digest.clone(), config.clone()));
    blobs.push((man_digest.clone(), manifest));
    let bytes = write_layout(shape, &blobs, index.as_bytes());
    let image = facts(name, config, &layers, gz_digests, Some(man_digest), None);
    Built {
        bytes,
        images: vec![image],
        index: None,
    }
}

/// An OCI layout as a directory tree: `blobs/sha256/<hex>` of each blob, `index.json`,
/// `oci-layout`.
fn layout_tree(blobs: &[(String, Vec<u8>)], index: &[u8]) -> Tree {
    let mut tree = Tree::default();
    tree.add("blobs", Item::Dir);
    tree.add("blobs/sha256", Item::Dir);
    for (d, b) in blobs {
        tree.add(
            &format!("blobs/sha256/{}", hex_of(d)),
            Item::File(b.clone()),
        );
    }
    tree.add("index.json", Item::File(index.to_vec()));
    tree.add("oci-layout", Item::File(OCI_LAYOUT.to_vec()));
    tree
}

fn write_layout(shape: OciShape, blobs: &[(String, Vec<u8>)], index: &[u8]) -> Vec<u8> {
    let mut out = TarOut::new();
    match shape {
        OciShape::Plain | OciShape::DotSlash => {
            layout_tree(blobs, index).write(
                &mut out,
                if shape == OciShape::DotSlash {
                    "./"
                } else {
                    ""
                },
            );
        }
        OciShape::Folder => {
            out.put("myimage/", &Item::Dir);
            out.put("myimage/index.json", &Item::File(index.to_vec()));
            out.put("myimage/oci-layout", &Item::File(OCI_LAYOUT.to_vec()));
            out.put("myimage/blobs/", &Item::Dir);
            out.put("myimage/blobs/sha256/", &Item::Dir);
            let mut sorted: Vec<_> = blobs.iter().collect();
            sorted.sort_by(|x, y| x.0.cmp(&y.0));
            sorted.dedup_by(|x, y| x.0 == y.0);
            for (d, b) in sorted {
                out.put(
                    &format!("myimage/blobs/sha256/{}", hex_of(d)),
                    &Item::File(b.clone()),
                );
            }
        }
    }
    out.finish()
}

/// Multi-platform OCI layout: `index.json` → one nested OCI index (annotated with
/// `docker.io/fixture/multi:v1` / `v1`) → linux/amd64 and linux/arm64 manifests, each with its
/// own config and gzip layers (plus one layer both share).
pub fn oci_multi_platform() -> Built {
    let shared = Layer::small("multi-shared");
    let mut images = Vec::new();
    let mut blobs: Vec<(String, Vec<u8>)> = Vec::new();
    let mut children = Vec::new();
    for arch in ["amd64", "arm64"] {
        let own = Layer::small(&format!("multi-{arch}"));
        let layers = [&shared, &own];
        let config = config_json(arch, &format!("multi-{arch}"), &layers);
        let cfg_digest = sha256(&config);
        let gz: Vec<Vec<u8>> = layers.iter().map(|l| gzip(&l.tar)).collect();
        let manifest = oci_manifest(
            &cfg_digest,
            config.len(),
            &gz.iter().map(|g| (sha256(g), g.len())).collect::<Vec<_>>(),
            OCI_LAYER_GZIP,
        );
        let man_digest = sha256(&manifest);
        children.push(format!(
            r#"{{"mediaType":"{OCI_MANIFEST}","digest":"{man_digest}","size":{},"platform":{{"architecture":"{arch}","os":"linux"}}}}"#,
            manifest.len()
        ));
        let gz_digests: Vec<String> = gz.iter().map(|g| sha256(g)).collect();
        for g in gz {
            if !blobs.iter().any(|(d, _)| *d == sha256(&g)) {
                blobs.push((sha256(&g), g));
            }
        }
        blobs.push((cfg_digest, config.clone()));
        blobs.push((man_digest.clone(), manifest));
        let platform = format!("linux/{arch}");
        images.push(facts(
            "docker.io/fixture/multi:v1",
            config,
            &layers,
            gz_digests,
            Some(man_digest),
            Some(&platform),
        ));
    }
    let nested = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{}]}}"#,
        children.join(",")
    )
    .into_bytes();
    let nested_digest = sha256(&nested);
    let top = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[{{"mediaType":"{OCI_INDEX}","digest":"{nested_digest}","size":{},"annotations":{{"io.containerd.image.name":"docker.io/fixture/multi:v1","org.opencontainers.image.ref.name":"v1"}}}}]}}"#,
        nested.len()
    );
    blobs.push((nested_digest.clone(), nested.clone()));
    let bytes = write_layout(OciShape::Plain, &blobs, top.as_bytes());
    let index = IndexFacts {
        repository: "fixture/multi".into(),
        tag: "v1".into(),
        digest: nested_digest,
        bytes: nested,
    };
    Built {
        bytes,
        images,
        index: Some(index),
    }
}
