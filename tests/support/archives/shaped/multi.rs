//! A multi-platform OCI layout: `index.json` → one nested OCI index → a manifest per
//! platform, with the index's facts beside the images'.
use super::documents::{config_json, oci_manifest};
use super::oci::{OciShape, write_layout};
use super::{Built, IndexFacts, Layer, facts};
use crate::support::archives::{OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST, gzip};
use crate::support::sha256;

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
