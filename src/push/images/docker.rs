//! docker-archive images (legacy `docker save`, podman/skopeo, Docker 25+): `manifest.json`
//! names each image's config and layer paths; layers are checked against the config's
//! diff_ids, and a manifest is written unless the archive's own OCI manifest still fits.

use bytes::Bytes;
use serde_json::json;

use super::{
    BlobUse, Comp, Node, Plan, Resolver, Source, View, layer_compression, layer_media_type,
    layer_use, leaf, named_by,
};
use crate::archive::layout::{self, Descriptor, DockerImage, Document, ImageConfig};
use crate::digest::Digest;
use crate::push::PushError;
use crate::push::ingest::FileRec;

impl Resolver<'_> {
    pub(super) async fn docker_plans(
        &self,
        view: &View<'_>,
        path: &str,
        index: Option<&str>,
    ) -> Result<Vec<Plan>, PushError> {
        let bytes = self.metadata(view, path)?;
        let images: Vec<DockerImage> =
            layout::strict_json(bytes).map_err(|e| PushError::manifest("manifest.json", e))?;
        if images.is_empty() {
            return Err(PushError::manifest("manifest.json", "lists no image"));
        }
        let originals = match index {
            Some(i) => self.oci_originals(view, i),
            None => Vec::new(),
        };
        let mut plans = Vec::new();
        for (n, img) in images.iter().enumerate() {
            let label = format!("manifest.json image {n}");
            let names = img.repo_tags.clone().unwrap_or_default();
            let root = self.docker_image(view, img, &label, &originals)?;
            plans.push(Plan {
                label,
                names,
                ref_names: Vec::new(),
                root,
            });
        }
        Ok(plans)
    }

    /// Docker 25+ keeps an OCI manifest per image beside manifest.json: (config digest, descriptor, bytes).
    fn oci_originals(&self, view: &View<'_>, index: &str) -> Vec<(Digest, Descriptor, Bytes)> {
        let Some(bytes) = view.memory(index) else {
            return Vec::new();
        };
        let Ok(Document::Index { manifests, .. }) = Document::parse(bytes, None) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for d in manifests {
            let Ok(Some((_, FileRec::Memory { bytes, digest }))) = view.blob(&d.digest) else {
                continue;
            };
            if digest != &d.digest {
                continue;
            }
            if let Ok(Document::Manifest { config, .. }) =
                Document::parse(bytes, d.media_type.as_deref())
            {
                out.push((config.digest.clone(), d.clone(), bytes.clone()));
            }
        }
        out
    }

    fn docker_image(
        &self,
        view: &View<'_>,
        img: &DockerImage,
        label: &str,
        originals: &[(Digest, Descriptor, Bytes)],
    ) -> Result<Node, PushError> {
        let config_path = view
            .join(&img.config)
            .map_err(|e| PushError::manifest("manifest.json", e))?;
        let config_bytes = self.metadata(view, &config_path)?.clone();
        let config_digest = Digest::sha256_of(&config_bytes);
        if let Some(named) = named_by(&config_path)
            && named != config_digest
        {
            return Err(PushError::DigestMismatch {
                what: format!("config {config_path}"),
                expected: named.to_string(),
                actual: config_digest.to_string(),
            });
        }
        let config: ImageConfig =
            layout::strict_json(&config_bytes).map_err(|e| PushError::manifest(&config_path, e))?;
        let diff_ids = &config.rootfs.diff_ids;
        if diff_ids.len() != img.layers.len() {
            return Err(PushError::manifest(
                &config_path,
                format!(
                    "lists {} diff_ids but manifest.json gives {} layers for {label}",
                    diff_ids.len(),
                    img.layers.len()
                ),
            ));
        }
        let mut layers = Vec::new();
        let mut changed = false;
        for (i, (layer, diff_id)) in img.layers.iter().zip(diff_ids).enumerate() {
            let p = view
                .join(layer)
                .map_err(|e| PushError::manifest("manifest.json", e))?;
            let (real, rec) = view.get(&p)?.ok_or_else(|| PushError::BlobMissing {
                digest: diff_id.to_string(),
                by: format!("manifest.json layer {i} ({layer})"),
            })?;
            let FileRec::Streamed(done) = rec else {
                return Err(PushError::manifest(
                    &real,
                    "is listed as a layer but is not a tar, gzip or zstd stream",
                ));
            };
            let found = done.diff_id.as_ref().ok_or_else(|| {
                PushError::manifest(
                    &real,
                    "is listed as a layer but is not a tar, gzip or zstd stream",
                )
            })?;
            if found != diff_id {
                return Err(PushError::DigestMismatch {
                    what: format!("layer {real} (diffID, rootfs.diff_ids[{i}])"),
                    expected: diff_id.to_string(),
                    actual: found.to_string(),
                });
            }
            changed |= done.recompressed.is_some();
            layers.push((done.clone(), layer_compression(done)));
        }
        if !changed
            && let Some((_, desc, bytes)) = originals.iter().find(|(c, _, _)| *c == config_digest)
        {
            let mut node = leaf(
                desc.digest.clone(),
                desc.media_type
                    .clone()
                    .unwrap_or(layout::OCI_MANIFEST.into()),
                bytes.clone(),
                false,
            );
            node.blobs.push(BlobUse {
                digest: config_digest.clone(),
                size: config_bytes.len() as u64,
                media_type: layout::OCI_CONFIG.into(),
                source: Source::Archive(FileRec::Memory {
                    bytes: config_bytes,
                    digest: config_digest.clone(),
                }),
            });
            for (d, c) in &layers {
                node.blobs.push(layer_use(d, layer_media_type(*c, false)));
            }
            return Ok(node);
        }
        let docker = layers.iter().all(|(_, c)| *c == Comp::Gzip);
        let (mt, config_mt) = if docker {
            (layout::DOCKER_MANIFEST, layout::DOCKER_CONFIG)
        } else {
            (layout::OCI_MANIFEST, layout::OCI_CONFIG)
        };
        let layer_uses: Vec<BlobUse> = layers
            .iter()
            .map(|(d, c)| layer_use(d, layer_media_type(*c, docker)))
            .collect();
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": mt,
            "config": {"mediaType": config_mt, "size": config_bytes.len(), "digest": config_digest},
            "layers": layer_uses.iter().map(|l| json!({"mediaType": l.media_type, "size": l.size, "digest": l.digest})).collect::<Vec<_>>(),
        });
        let bytes = Bytes::from(serde_json::to_vec_pretty(&manifest).expect("json"));
        let mut node = leaf(Digest::sha256_of(&bytes), mt.into(), bytes, true);
        node.blobs.push(BlobUse {
            digest: config_digest.clone(),
            size: config_bytes.len() as u64,
            media_type: config_mt.into(),
            source: Source::Archive(FileRec::Memory {
                bytes: config_bytes,
                digest: config_digest,
            }),
        });
        node.blobs.extend(layer_uses);
        Ok(node)
    }
}
