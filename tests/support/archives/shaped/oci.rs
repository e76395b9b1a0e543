//! OCI image layouts with gzip layers (containerd export, buildkit `type=oci`, skopeo
//! `oci-archive:`), tarred three ways ([`OciShape`]), and the layout tree Docker 25+ and the
//! multi-platform archive reuse.
use super::documents::{OCI_LAYOUT, config_json, oci_manifest};
use super::tree::{Item, TarOut, Tree};
use super::{Built, Layer, facts};
use crate::support::archives::{OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST, gzip, hex_of};
use crate::support::sha256;

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
pub(super) fn layout_tree(blobs: &[(String, Vec<u8>)], index: &[u8]) -> Tree {
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

/// The layout of `blobs` and `index`, tarred the way `shape` says.
pub(super) fn write_layout(shape: OciShape, blobs: &[(String, Vec<u8>)], index: &[u8]) -> Vec<u8> {
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
