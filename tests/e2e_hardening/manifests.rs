//! Manifests and their references: an index listing one manifest 216,000 times resolved
//! once (finding 2), a Docker 25+ manifest listing another layer refused (finding 6), a
//! config named by another digest accepted (finding 11), and `limits.references`.

use std::time::Instant;

use serde_json::{Value, json};

use crate::common::{OCI_INDEX, OCI_MANIFEST, env, push};
use crate::support::archives::*;
use crate::support::{Hoist, push_bytes_with, sha256};

// ---------------------------------------------------------------------------------------------
// 2. A small archive must not pin a core: each manifest resolved once, PUT once.

/// An index of 60 references to an index of 60 references to an index of 60 references to
/// one manifest: 216,000 paths through 40 KB of JSON. The push answers promptly, and the
/// shared manifest is PUT once.
#[test]
fn an_index_that_lists_one_manifest_216000_times_is_resolved_once() {
    let (reg, hoist) = env(&[]);
    let mut oci = Oci::valid("nested");
    let manifest = oci.manifest_bytes();
    let mut child =
        json!({"mediaType": OCI_MANIFEST, "digest": sha256(&manifest), "size": manifest.len()});
    let mut levels = Vec::new();
    for _ in 0..3 {
        let index = serde_json::to_vec(&json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": vec![child.clone(); 60],
        }))
        .unwrap();
        child = json!({"mediaType": OCI_INDEX, "digest": sha256(&index), "size": index.len()});
        levels.push(index);
    }
    oci.index["manifests"][0] = json!({
        "mediaType": OCI_INDEX, "digest": child["digest"], "size": child["size"],
        "annotations": {"org.opencontainers.image.ref.name": "v1"},
    });
    oci.extra_blobs = levels;
    let body = oci.archive();
    assert!(
        body.len() < 200 << 10,
        "the archive is small: {}",
        body.len()
    );
    let started = Instant::now();
    let a = push_bytes_with(&hoist, "/push/nested/app", &body, &["--max-time", "60"])
        .expect("curl runs");
    assert_eq!(a.status, 201, "{a:?} after {:?}", started.elapsed());
    let puts = reg
        .access_log()
        .into_iter()
        .filter(|(m, p, _)| m == "PUT" && p.contains(&format!("/manifests/{}", sha256(&manifest))))
        .count();
    assert_eq!(puts, 1, "the shared manifest was PUT {puts} times");
}

// ---------------------------------------------------------------------------------------------
// 6. Docker 25+ archives must not push an unverified manifest.

/// A Docker 25+ `docker save`: an OCI layout (uncompressed layers under blobs/sha256/<diffid>)
/// plus manifest.json. `listed` replaces the layer its OCI manifest names.
fn docker25(seed: &str, listed: Option<&[u8]>) -> Vec<u8> {
    let layer = layer_tar(seed);
    let diff_id = sha256(&layer);
    let config = serde_json::to_vec(&config_for(std::slice::from_ref(&diff_id))).unwrap();
    let in_manifest = listed.unwrap_or(&layer);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor("application/vnd.oci.image.config.v1+json", &config),
        "layers": [descriptor("application/vnd.oci.image.layer.v1.tar", in_manifest)],
    }))
    .unwrap();
    let mut files = vec![
        (
            "oci-layout".to_string(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        ),
        (blob_path(&diff_id), layer.clone()),
        (blob_path(&sha256(&config)), config.clone()),
        (blob_path(&sha256(&manifest)), manifest.clone()),
    ];
    if let Some(other) = listed {
        files.push((blob_path(&sha256(other)), other.to_vec()));
    }
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [descriptor(OCI_MANIFEST, &manifest)]});
    files.push(("index.json".into(), serde_json::to_vec(&index).unwrap()));
    let docker = json!([{"Config": blob_path(&sha256(&config)), "RepoTags": ["d25/app:v1"],
        "Layers": [blob_path(&diff_id)]}]);
    files.push(("manifest.json".into(), serde_json::to_vec(&docker).unwrap()));
    tar_of(&files)
}

/// The archive's own OCI manifest listing another layer than manifest.json: it was pushed
/// byte-exact and tagged; now every descriptor is checked against what was verified.
#[test]
fn a_docker25_manifest_listing_another_layer_is_refused() {
    let (reg, hoist) = env(&[]);
    let good = push(
        &hoist,
        "/push/d25/good?layer_compression=keep",
        &docker25("d25", None),
    );
    assert_eq!(good.status, 201, "{good:?}");
    let other = layer_tar("d25-other");
    let body = docker25("d25", Some(&other));
    let a = push(&hoist, "/push/d25/app?layer_compression=keep", &body);
    assert_eq!((a.status, a.code()), (400, "DIGEST_MISMATCH"), "{a:?}");
    assert!(reg.tags("d25/app").is_empty());
}

// ---------------------------------------------------------------------------------------------
// 11. A docker-archive config's file name is only a path.

/// A real ggcr fixture names its config by another digest than its bytes'; `docker load` and
/// skopeo take it. It was refused DIGEST_MISMATCH.
#[test]
fn a_config_named_by_another_digest_is_accepted() {
    let (reg, hoist) = env(&[]);
    let mut d = Docker::valid("misnamed", json!(["misnamed/app:v1"]));
    let name = format!("{}.json", "ab".repeat(32));
    d.manifest[0]["Config"] = json!(name);
    let mut files: Vec<(String, Vec<u8>)> = d.layers.clone();
    files.push((name, d.config_bytes()));
    files.push(("manifest.json".into(), d.manifest_bytes()));
    let a = push(&hoist, "/push", &tar_of(&files));
    assert_eq!(a.status, 201, "{a:?}");
    assert_eq!(reg.tags("misnamed/app"), ["v1"]);
    let config: Value = a.body["images"][0]["blobs"][0].clone();
    assert_eq!(
        config["digest"],
        json!(sha256(&d.config_bytes())),
        "{config}"
    );
}

// ---------------------------------------------------------------------------------------------
// Codes that say which limit or parameter was at fault.

/// An index listing one manifest three times makes 1 + 3 + 2 references (the index, three
/// listings, and the manifest's config and layer, resolved once): over `limits.references =
/// 5` it is refused TOO_MANY_REFERENCES and nothing is tagged; at 6 it goes through.
#[test]
fn references_over_the_limit_are_refused() {
    let (reg, hoist) = env(&[("HOIST_LIMITS__REFERENCES", "5")]);
    let mut oci = Oci::valid("refs");
    let manifest = oci.manifest_bytes();
    let child =
        json!({"mediaType": OCI_MANIFEST, "digest": sha256(&manifest), "size": manifest.len()});
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [child.clone(), child.clone(), child],
    }))
    .unwrap();
    oci.index["manifests"][0] = json!({
        "mediaType": OCI_INDEX, "digest": sha256(&index), "size": index.len(),
        "annotations": {"org.opencontainers.image.ref.name": "v1"},
    });
    oci.extra_blobs = vec![index];
    let a = push(&hoist, "/push/refs/app", &oci.archive());
    assert_eq!((a.status, a.code()), (413, "TOO_MANY_REFERENCES"), "{a:?}");
    assert!(a.message().contains("limits.references"), "{a:?}");
    assert!(reg.tags("refs/app").is_empty());
    let relaxed = Hoist::with_env(&reg.url(), &[("HOIST_LIMITS__REFERENCES", "6")]).unwrap();
    assert_eq!(push(&relaxed, "/push/refs/app", &oci.archive()).status, 201);
}
