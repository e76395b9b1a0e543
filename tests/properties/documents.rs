//! Manifest, index, `manifest.json` and config parsing: any JSON and any bytes are answered
//! (never a panic), generated documents read back as written, and what Go's encoding/json
//! would read differently (duplicate keys, structs written as arrays) is refused.

use hoist::oci::{DockerImage, Document, ImageConfig, strict_json};
use proptest::prelude::*;
use serde_json::{Value, json};

use super::memory::budget;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";

/// Any JSON value, nested a few levels, with the keys manifests use mixed in.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        "\\PC{0,20}".prop_map(Value::String),
        digest().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "schemaVersion",
            "mediaType",
            "manifests",
            "config",
            "layers",
            "digest",
            "size",
            "platform",
            "rootfs",
            "diff_ids",
            "Config",
            "Layers",
            "RepoTags",
            "annotations",
        ])
        .prop_map(String::from),
        "[a-zA-Z]{1,8}",
    ]
}

fn digest() -> impl Strategy<Value = String> {
    "[0-9a-f]{64}".prop_map(|h| format!("sha256:{h}"))
}

fn descriptor() -> impl Strategy<Value = Value> {
    (digest(), 0u64..1 << 40)
        .prop_map(|(d, size)| json!({"mediaType": LAYER, "digest": d, "size": size}))
}

fn manifest() -> impl Strategy<Value = Value> {
    (descriptor(), prop::collection::vec(descriptor(), 0..20)).prop_map(|(config, layers)| {
        json!({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config, "layers": layers})
    })
}

proptest! {
    #[test]
    fn any_json_is_answered(v in any_json()) {
        let _b = budget(8 << 20);
        let bytes = serde_json::to_vec(&v).unwrap();
        let _ = Document::parse(&bytes, None);
        let _ = Document::parse(&bytes, Some(OCI_INDEX));
        let _ = strict_json::<Vec<DockerImage>>(&bytes);
        let _ = strict_json::<ImageConfig>(&bytes);
    }

    #[test]
    fn any_bytes_are_answered(bytes in prop::collection::vec(any::<u8>(), 0..4096)) {
        let _b = budget(8 << 20);
        let _ = Document::parse(&bytes, None);
        let _ = strict_json::<Vec<DockerImage>>(&bytes);
    }

    #[test]
    fn generated_manifests_read_back_as_written(m in manifest()) {
        let bytes = serde_json::to_vec(&m).unwrap();
        let Ok(Document::Manifest { config, layers, .. }) = Document::parse(&bytes, None) else {
            return Err(TestCaseError::fail("a valid manifest was refused"));
        };
        prop_assert_eq!(config.digest.as_str(), m["config"]["digest"].as_str().unwrap());
        prop_assert_eq!(layers.len(), m["layers"].as_array().unwrap().len());
        for (got, want) in layers.iter().zip(m["layers"].as_array().unwrap()) {
            prop_assert_eq!(got.digest.as_str(), want["digest"].as_str().unwrap());
            prop_assert_eq!(got.size, want["size"].as_u64().unwrap());
        }
    }

    #[test]
    fn generated_indexes_read_back_as_written(children in prop::collection::vec(descriptor(), 0..20)) {
        let children: Vec<Value> = children.into_iter().map(|mut d| {
            d["mediaType"] = json!(OCI_MANIFEST);
            d
        }).collect();
        let bytes = serde_json::to_vec(&json!({"schemaVersion": 2, "manifests": children})).unwrap();
        let Ok(Document::Index { manifests, .. }) = Document::parse(&bytes, None) else {
            return Err(TestCaseError::fail("a valid index was refused"));
        };
        let digests: Vec<&str> = manifests.iter().map(|d| d.digest.as_str()).collect();
        let want: Vec<&str> = children.iter().map(|d| d["digest"].as_str().unwrap()).collect();
        prop_assert_eq!(digests, want);
    }

    #[test]
    fn a_duplicate_key_anywhere_is_refused(m in manifest(), at in any::<prop::sample::Index>()) {
        // Repeat one key of one object: Go keeps the last, serde the first; hoist refuses.
        let text = serde_json::to_string(&m).unwrap();
        let keys: Vec<usize> = text.match_indices("\"digest\":").map(|(i, _)| i).collect();
        let i = keys[at.index(keys.len())];
        let doubled = format!("{}\"digest\":\"x\",{}", &text[..i], &text[i..]);
        prop_assert!(Document::parse(doubled.as_bytes(), None).is_err());
    }

    #[test]
    fn a_descriptor_written_as_an_array_is_refused(m in manifest(), at in any::<prop::sample::Index>()) {
        let mut m = m;
        let n = m["layers"].as_array().unwrap().len();
        let slot = at.index(n + 1);
        let target = if slot == n { &mut m["config"] } else { &mut m["layers"][slot] };
        let d = target.clone();
        *target = json!([d["mediaType"], d["digest"], d["size"]]);
        let bytes = serde_json::to_vec(&m).unwrap();
        prop_assert!(Document::parse(&bytes, None).is_err());
    }
}
