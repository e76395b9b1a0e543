//! The checks of a successful push: the JSON report, the registry's tags, manifest, config
//! and layers (each layer's diffID against the config), the report's blobs, then skopeo.
use std::collections::BTreeSet;
use std::io::Read;

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

use crate::expect::{Expect, Layers};
use crate::fixture::{Fixture, strings};
use crate::skopeo::check_with_skopeo;
use crate::support::{Answer, Registry, sha256};

// Media types a pushed manifest, its config and its layers may carry.
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const OCI_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
const OCI_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const OCI_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
const DOCKER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// Checks the JSON report, the registry's content and a skopeo pull; returns the report's
/// image entry.
pub(crate) fn verify(
    registry: &Registry,
    fx: &Fixture,
    answer: &Answer,
    expect: &Expect,
) -> Result<Value> {
    let (image, digest, want_tags) = check_report(fx, answer, expect)?;
    let (manifest, content_type) =
        check_manifest(registry, fx, expect, &image, &digest, &want_tags)?;
    let docker = content_type == DOCKER_MANIFEST;
    check_layers(registry, fx, expect, &manifest, &content_type)?;
    check_report_blobs(fx, expect, &image, &manifest)?;
    check_with_skopeo(registry, fx, expect, &digest, &manifest, docker)?;
    Ok(image)
}

/// The report's image: repository, tags, sizes, digest. Returns it, its digest and the tags.
fn check_report(
    fx: &Fixture,
    answer: &Answer,
    expect: &Expect,
) -> Result<(Value, String, BTreeSet<String>)> {
    ensure!(
        answer.status == 201,
        "push answered {} {}",
        answer.status,
        answer.body
    );
    let report = &answer.body;
    let images = report["images"]
        .as_array()
        .context("report has no images[]")?;
    ensure!(
        images.len() == 1,
        "one image expected in the report: {report}"
    );
    let image = images[0].clone();
    ensure!(
        image["repository"] == expect.repository,
        "report repository {} != {}",
        image["repository"],
        expect.repository
    );
    let want_tags: BTreeSet<String> = expect.tags.iter().map(|t| t.to_string()).collect();
    let report_tags: BTreeSet<String> = strings(&image["tags"]).into_iter().collect();
    ensure!(
        report_tags == want_tags,
        "report tags {report_tags:?} != {want_tags:?}"
    );
    let digest = image["digest"]
        .as_str()
        .context("report digest")?
        .to_string();
    ensure!(
        report["bytes_received"].is_u64(),
        "bytes_received: {report}"
    );
    ensure!(report["bytes_sent"].is_u64(), "bytes_sent: {report}");
    ensure!(report["seconds"].is_number(), "seconds: {report}");
    if let Some(size) = expect.body_size {
        ensure!(
            report["bytes_received"] == size,
            "bytes_received {} != body size {size}",
            report["bytes_received"]
        );
    }
    ensure!(
        image["manifests"].as_array().is_some_and(|m| m.is_empty()),
        "a single image has no child manifests: {}",
        image["manifests"]
    );
    ensure!(
        image["manifest_rewritten"] == !expect.byte_exact,
        "manifest_rewritten is {}, expected {}",
        image["manifest_rewritten"],
        !expect.byte_exact
    );
    if expect.byte_exact {
        ensure!(
            digest == fx.manifest_digest,
            "manifest digest changed: {digest} != archive's {}",
            fx.manifest_digest
        );
    }

    Ok((image, digest, want_tags))
}

/// The registry: tags, manifest bytes and type, config. Returns the manifest and its type.
fn check_manifest(
    registry: &Registry,
    fx: &Fixture,
    expect: &Expect,
    image: &Value,
    digest: &str,
    want_tags: &BTreeSet<String>,
) -> Result<(Value, String)> {
    let mut registry_tags = registry.tags(expect.repository);
    registry_tags.sort();
    ensure!(
        registry_tags.iter().cloned().collect::<BTreeSet<_>>() == *want_tags,
        "registry tags {registry_tags:?} != {want_tags:?}"
    );
    let (manifest_bytes, content_type) = registry.manifest(expect.repository, digest)?;
    ensure!(
        sha256(&manifest_bytes) == digest,
        "registry manifest bytes do not hash to {digest}"
    );
    ensure!(
        image["media_type"] == content_type.as_str(),
        "report media_type {} != registry content type {content_type}",
        image["media_type"]
    );
    for tag in expect.tags {
        let (bytes, _) = registry.manifest(expect.repository, tag)?;
        ensure!(
            sha256(&bytes) == digest,
            "tag {tag} does not point at {digest}"
        );
    }
    let manifest: Value = serde_json::from_slice(&manifest_bytes)?;
    if let Some(mt) = manifest["mediaType"].as_str() {
        ensure!(
            mt == content_type,
            "manifest mediaType {mt} != content type {content_type}"
        );
    }
    let docker = content_type == DOCKER_MANIFEST;
    ensure!(
        docker || content_type == OCI_MANIFEST,
        "unexpected manifest type {content_type}"
    );
    ensure!(
        manifest["config"]["digest"] == fx.config_digest.as_str(),
        "config digest (image ID) changed: {} != {}",
        manifest["config"]["digest"],
        fx.config_digest
    );
    let config_type = manifest["config"]["mediaType"].as_str().unwrap_or_default();
    ensure!(
        config_type == if docker { DOCKER_CONFIG } else { OCI_CONFIG },
        "config media type {config_type} in a {content_type} manifest"
    );
    let config = registry.blob(expect.repository, &fx.config_digest)?;
    ensure!(
        sha256(&config) == fx.config_digest,
        "config blob bytes changed"
    );

    Ok((manifest, content_type))
}

/// Every layer in the registry: media type, digest, size, and its tar's diffID.
fn check_layers(
    registry: &Registry,
    fx: &Fixture,
    expect: &Expect,
    manifest: &Value,
    content_type: &str,
) -> Result<()> {
    let docker = content_type == DOCKER_MANIFEST;
    let layers = manifest["layers"].as_array().context("manifest layers")?;
    ensure!(
        layers.len() == fx.diff_ids.len(),
        "{} layers pushed, image has {}",
        layers.len(),
        fx.diff_ids.len()
    );
    for (i, layer) in layers.iter().enumerate() {
        let layer_digest = layer["digest"].as_str().context("layer digest")?;
        let media_type = layer["mediaType"].as_str().unwrap_or_default();
        let want_type = match (expect.layers, docker) {
            (Layers::Gzip, true) => DOCKER_GZIP,
            (Layers::Gzip, false) => OCI_GZIP,
            (Layers::Zstd, false) => OCI_ZSTD,
            (Layers::Tar, false) => OCI_TAR,
            (kind, true) => bail!("{kind:?} layers need an OCI manifest, got {content_type}"),
        };
        ensure!(
            media_type == want_type,
            "layer {i} media type {media_type}, expected {want_type}"
        );
        if expect.byte_exact {
            ensure!(layer_digest == fx.oci_layers[i], "layer {i} digest changed");
        }
        let blob = registry.blob(expect.repository, layer_digest)?;
        ensure!(
            sha256(&blob) == layer_digest,
            "layer {i} bytes do not hash to {layer_digest}"
        );
        ensure!(
            layer["size"] == blob.len() as u64,
            "layer {i} size {} != {}",
            layer["size"],
            blob.len()
        );
        let tar = match expect.layers {
            Layers::Gzip => {
                let mut out = Vec::new();
                flate2::read::MultiGzDecoder::new(&blob[..])
                    .read_to_end(&mut out)
                    .with_context(|| format!("layer {i} is not gzip"))?;
                out
            }
            Layers::Zstd => zstd::stream::decode_all(&blob[..])
                .with_context(|| format!("layer {i} is not zstd"))?,
            Layers::Tar => blob,
        };
        ensure!(
            sha256(&tar) == fx.diff_ids[i],
            "layer {i} diffID {} != rootfs.diff_ids[{i}] {}",
            sha256(&tar),
            fx.diff_ids[i]
        );
    }

    Ok(())
}

/// The report's blobs: the config and the layers, with their sizes and outcomes.
fn check_report_blobs(
    fx: &Fixture,
    expect: &Expect,
    image: &Value,
    manifest: &Value,
) -> Result<()> {
    let layers = manifest["layers"].as_array().context("manifest layers")?;
    let mut want_blobs: BTreeSet<String> = layers
        .iter()
        .map(|l| l["digest"].as_str().unwrap_or_default().to_string())
        .collect();
    want_blobs.insert(fx.config_digest.clone());
    let blobs = image["blobs"].as_array().context("report blobs")?;
    let report_blobs: BTreeSet<String> = blobs
        .iter()
        .map(|b| b["digest"].as_str().unwrap_or_default().to_string())
        .collect();
    ensure!(
        report_blobs == want_blobs,
        "report blobs {report_blobs:?} != manifest's {want_blobs:?}"
    );
    for blob in blobs {
        let outcome = blob["outcome"].as_str().unwrap_or_default();
        let ok = if expect.all_exist {
            outcome == "exists"
        } else {
            outcome == "uploaded" || outcome == "mounted"
        };
        ensure!(
            ok,
            "blob {} outcome {outcome:?} (all_exist: {})",
            blob["digest"],
            expect.all_exist
        );
        let descriptor = layers
            .iter()
            .chain(std::iter::once(&manifest["config"]))
            .find(|d| d["digest"] == blob["digest"])
            .context("blob not in manifest")?;
        ensure!(
            blob["size"] == descriptor["size"],
            "report size of {} is wrong",
            blob["digest"]
        );
        ensure!(
            blob["media_type"] == descriptor["mediaType"],
            "report media_type of {} is {}, manifest says {}",
            blob["digest"],
            blob["media_type"],
            descriptor["mediaType"]
        );
    }

    Ok(())
}
