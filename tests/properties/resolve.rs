//! Image resolution over generated OCI layouts: indexes that share children, nest, and list
//! the same manifest many times. Resolution always ends, and spends exactly its reference
//! budget's worth: every listing counts once, and each document is resolved (and would be
//! published) once however often it is listed, so a layout resolves exactly when the
//! references it lists fit the budget.

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;
use hoist::image::{ArchiveFiles, File, resolve};
use hoist::oci::Digest;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::memory::budget;

const INDEX: &str = "application/vnd.oci.image.index.v1+json";
const MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const BUDGET: usize = 25;

/// Node `i` of a layout: a manifest with `layers` layers, or an index listing earlier nodes
/// (content addressing allows no cycles), each as often as it is repeated.
#[derive(Debug, Clone)]
enum Shape {
    Manifest {
        layers: usize,
    },
    /// `None` lists the node just before (so chains nest deep), `Some(n)` node `n % i`.
    Index {
        children: Vec<(Option<usize>, usize)>,
    },
}

fn shapes() -> impl Strategy<Value = Vec<Shape>> {
    let shape = prop_oneof![
        (0usize..4).prop_map(|layers| Shape::Manifest { layers }),
        prop::collection::vec((prop::option::of(any::<usize>()), 1usize..8), 1..5)
            .prop_map(|children| Shape::Index { children }),
    ];
    (0usize..4, prop::collection::vec(shape, 0..10)).prop_map(|(layers, mut rest)| {
        rest.insert(0, Shape::Manifest { layers });
        rest
    })
}

/// A built layout: the files, each node's descriptor, and what resolving it costs.
struct Layout {
    files: ArchiveFiles,
    descriptors: Vec<Value>,
    /// The nodes each node lists, with repeats.
    listed: Vec<Vec<usize>>,
    /// References a node's own document holds (config and layers, or listed manifests).
    own: Vec<usize>,
    depth: Vec<u32>,
}

fn build(shapes: &[Shape]) -> Layout {
    let mut layout = Layout {
        files: ArchiveFiles::default(),
        descriptors: Vec::new(),
        listed: Vec::new(),
        own: Vec::new(),
        depth: Vec::new(),
    };
    for (i, shape) in shapes.iter().enumerate() {
        let listed: Vec<usize> = match shape {
            Shape::Manifest { .. } => Vec::new(),
            Shape::Index { children } => children
                .iter()
                .flat_map(|&(pick, n)| std::iter::repeat_n(pick.map_or(i - 1, |raw| raw % i), n))
                .collect(),
        };
        let (doc, media, own) = match shape {
            Shape::Manifest { layers } => (
                manifest(&mut layout.files, i, *layers),
                MANIFEST,
                1 + layers,
            ),
            Shape::Index { .. } => {
                let manifests: Vec<Value> = listed
                    .iter()
                    .map(|&c| layout.descriptors[c].clone())
                    .collect();
                (
                    json!({"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests}),
                    INDEX,
                    listed.len(),
                )
            }
        };
        let depth = listed
            .iter()
            .map(|&c| 1 + layout.depth[c])
            .max()
            .unwrap_or(0);
        layout.descriptors.push(add(&mut layout.files, media, &doc));
        layout.own.push(own);
        layout.depth.push(depth);
        layout.listed.push(listed);
    }
    layout
}

/// A manifest whose config is in the archive and whose layers are not (left to the registry).
fn manifest(files: &mut ArchiveFiles, i: usize, layers: usize) -> Value {
    let layer_digests: Vec<String> = (0..layers)
        .map(|n| Digest::sha256_of(format!("{i}/{n}").as_bytes()).to_string())
        .collect();
    let config = json!({"architecture": "amd64", "os": "linux", "seed": i,
        "rootfs": {"type": "layers", "diff_ids": layer_digests}});
    let config = add(files, CONFIG, &config);
    let layers: Vec<Value> = layer_digests
        .iter()
        .map(|d| json!({"mediaType": LAYER, "digest": d, "size": 1}))
        .collect();
    json!({"schemaVersion": 2, "mediaType": MANIFEST, "config": config, "layers": layers})
}

fn add(files: &mut ArchiveFiles, media: &str, doc: &Value) -> Value {
    let bytes = Bytes::from(serde_json::to_vec(doc).unwrap());
    let digest = Digest::sha256_of(&bytes);
    let descriptor = json!({"mediaType": media, "digest": digest, "size": bytes.len()});
    files.files.insert(
        format!("blobs/sha256/{}", digest.hex()),
        File::Memory { bytes, digest },
    );
    descriptor
}

/// Adds `index.json` listing `root` `copies` times; returns the files, the references
/// resolving them spends (each listing once, each distinct document's own references once)
/// and how deep the indexes nest.
fn with_index_json(mut layout: Layout, root: usize, copies: usize) -> (ArchiveFiles, usize, u32) {
    let listed = vec![layout.descriptors[root].clone(); copies];
    let index = json!({"schemaVersion": 2, "manifests": listed});
    let bytes = Bytes::from(serde_json::to_vec(&index).unwrap());
    let digest = Digest::sha256_of(&bytes);
    layout
        .files
        .files
        .insert("index.json".into(), File::Memory { bytes, digest });
    // Two indexes listing the same children are one document (one digest), resolved once.
    let mut reached = BTreeSet::new();
    let mut spent = copies;
    let mut stack = vec![root];
    while let Some(n) = stack.pop() {
        if reached.insert(layout.descriptors[n]["digest"].to_string()) {
            spent += layout.own[n];
            stack.extend(&layout.listed[n]);
        }
    }
    (layout.files, spent, layout.depth[root])
}

proptest! {
    #[test]
    fn resolution_spends_exactly_its_references(
        shapes in shapes(), root in any::<prop::sample::Index>(), copies in 1usize..4
    ) {
        let root = root.index(shapes.len());
        let (files, spent, depth) = with_index_json(build(&shapes), root, copies);
        let _b = budget(64 << 20);
        match resolve(&files, 32 << 20, BUDGET) {
            Ok(images) => {
                prop_assert!(spent <= BUDGET && depth <= 4, "{spent} references at depth {depth} resolved");
                prop_assert_eq!(images.len(), copies);
                // The same root listed several times is one node, shared.
                prop_assert!(images.iter().all(|i| Arc::ptr_eq(&i.root, &images[0].root)));
            }
            Err(e) if e.code() == "TOO_MANY_REFERENCES" => {
                prop_assert!(spent > BUDGET, "{spent} references refused: {e}");
            }
            Err(e) => {
                prop_assert!(depth > 4, "refused at depth {depth}: {}: {e}", e.code());
                prop_assert_eq!(e.code(), "MANIFEST_INVALID");
            }
        }
    }
}

#[test]
fn a_listing_bomb_is_refused_and_a_shared_child_resolved_once() {
    // An index listing the one below it 7 times, 4 levels: 7^4 = 2401 paths to one manifest.
    // Followed per path, that is thousands of references; resolved once per document, 33.
    let mut shapes = vec![Shape::Manifest { layers: 1 }];
    for level in 0..4 {
        shapes.push(Shape::Index {
            children: vec![(Some(level), 7)],
        });
    }
    let (files, spent, _) = with_index_json(build(&shapes), 4, 1);
    assert_eq!(spent, 1 + 2 + 4 * 7);
    let err = resolve(&files, 32 << 20, spent - 1).expect_err("one reference over the budget");
    assert_eq!(err.code(), "TOO_MANY_REFERENCES", "{err}");
    let images = resolve(&files, 32 << 20, spent).expect("exactly the budget");
    let mut nodes = BTreeSet::new();
    let mut stack = vec![images[0].root.clone()];
    while let Some(n) = stack.pop() {
        if nodes.insert(Arc::as_ptr(&n) as usize) {
            stack.extend(n.children.iter().map(|c| c.node.clone()));
        }
    }
    assert_eq!(nodes.len(), 5, "each document one node");
}
