//! OCI layouts: `index.json` and the manifests and indexes it reaches, verified against the
//! archive (or the registry, for blobs the archive leaves out), rewritten only where a layer
//! was recompressed.

use bytes::Bytes;
use serde_json::{Value, json};

use super::{
    BlobUse, Comp, Node, Plan, Resolver, Source, View, layer_media_type, leaf, verify_bytes,
};
use crate::archive::ArchiveError;
use crate::archive::layout::{self, Descriptor, Document, ImageConfig};
use crate::config::LayerCompression;
use crate::digest::Digest;
use crate::push::PushError;
use crate::push::ingest::FileRec;

impl Resolver<'_> {
    pub(super) async fn oci_plans(
        &self,
        view: &View<'_>,
        path: &str,
    ) -> Result<Vec<Plan>, PushError> {
        let bytes = self.metadata(view, path)?;
        let manifests = match Document::parse(bytes, None) {
            Ok(Document::Index { manifests, .. }) => manifests,
            Ok(_) => {
                return Err(PushError::manifest(
                    "index.json",
                    "is a manifest, not an index",
                ));
            }
            Err(e) => return Err(PushError::manifest("index.json", e)),
        };
        if manifests.is_empty() {
            return Err(PushError::manifest("index.json", "lists no image"));
        }
        let mut plans = Vec::new();
        for (n, desc) in manifests.iter().enumerate() {
            let ann = desc.annotations.clone().unwrap_or_default();
            let names: Vec<String> = ann
                .get("io.containerd.image.name")
                .cloned()
                .into_iter()
                .collect();
            let ref_names: Vec<String> = ann
                .get("org.opencontainers.image.ref.name")
                .cloned()
                .into_iter()
                .collect();
            let label = format!("index.json manifest {n} ({})", desc.digest);
            let root = Box::pin(self.node(view, desc, &label, 0)).await?;
            plans.push(Plan {
                label,
                names,
                ref_names,
                root,
            });
        }
        Ok(plans)
    }

    async fn node(
        &self,
        view: &View<'_>,
        desc: &Descriptor,
        by: &str,
        depth: u32,
    ) -> Result<Node, PushError> {
        if depth > 4 {
            return Err(PushError::manifest(by, "indexes are nested too deeply"));
        }
        let (path, bytes) = match view.blob(&desc.digest)? {
            Some((p, FileRec::Memory { bytes, .. })) => (p, bytes.clone()),
            Some((p, FileRec::Streamed(_))) => {
                return Err(ArchiveError::MetadataTooLarge {
                    path: p,
                    limit: self.metadata_limit,
                }
                .into());
            }
            _ => {
                return Err(PushError::BlobMissing {
                    digest: desc.digest.to_string(),
                    by: by.to_string(),
                });
            }
        };
        verify_bytes(&path, &bytes, desc)?;
        let doc = Document::parse(&bytes, desc.media_type.as_deref())
            .map_err(|e| PushError::manifest(&path, e))?;
        let platform = desc.platform.as_ref().map(|p| p.render());
        match doc {
            Document::Index {
                media_type,
                manifests,
            } => {
                let mut children = Vec::new();
                for child in &manifests {
                    children.push(Box::pin(self.node(view, child, &path, depth + 1)).await?);
                }
                let changed: Vec<(usize, &Node)> = children
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| c.rewritten)
                    .collect();
                let (bytes, rewritten) = if changed.is_empty() {
                    (bytes, false)
                } else {
                    let mut v: Value = serde_json::from_slice(&bytes)
                        .map_err(|e| PushError::manifest(&path, e))?;
                    for (i, c) in changed {
                        v["manifests"][i]["digest"] = json!(c.digest);
                        v["manifests"][i]["size"] = json!(c.bytes.len());
                        v["manifests"][i]["mediaType"] = json!(c.media_type);
                    }
                    (Bytes::from(serde_json::to_vec(&v).expect("json")), true)
                };
                let digest = if rewritten {
                    Digest::sha256_of(&bytes)
                } else {
                    desc.digest.clone()
                };
                Ok(Node {
                    digest,
                    media_type,
                    bytes,
                    rewritten,
                    platform,
                    children,
                    blobs: Vec::new(),
                })
            }
            Document::Manifest {
                media_type,
                config,
                layers,
            } => {
                let mut node = leaf(
                    desc.digest.clone(),
                    media_type.clone(),
                    bytes.clone(),
                    false,
                );
                node.platform = platform;
                let config_use = self.reference(view, &config, &path, true).await?;
                node.blobs.push(config_use);
                let mut changes = Vec::new();
                for (i, l) in layers.iter().enumerate() {
                    let u = self.reference(view, l, &path, false).await?;
                    if u.digest != l.digest {
                        changes.push((i, u.clone()));
                    }
                    node.blobs.push(u);
                }
                check_image_config(&node.blobs, &path)?;
                if !changes.is_empty() {
                    let mut v: Value = serde_json::from_slice(&bytes)
                        .map_err(|e| PushError::manifest(&path, e))?;
                    let docker = media_type == layout::DOCKER_MANIFEST;
                    let to_oci = docker
                        && changes
                            .iter()
                            .any(|(_, u)| u.media_type != layout::DOCKER_LAYER_GZIP);
                    for (i, u) in &changes {
                        v["layers"][*i]["digest"] = json!(u.digest);
                        v["layers"][*i]["size"] = json!(u.size);
                        v["layers"][*i]["mediaType"] = json!(u.media_type);
                    }
                    if to_oci {
                        v["mediaType"] = json!(layout::OCI_MANIFEST);
                        v["config"]["mediaType"] = json!(layout::OCI_CONFIG);
                        node.media_type = layout::OCI_MANIFEST.into();
                    }
                    node.bytes = Bytes::from(serde_json::to_vec(&v).expect("json"));
                    node.digest = Digest::sha256_of(&node.bytes);
                    node.rewritten = true;
                }
                Ok(node)
            }
        }
    }

    /// A config or layer descriptor of an OCI manifest, checked against the archive (or the
    /// registry, when the archive does not carry it).
    async fn reference(
        &self,
        view: &View<'_>,
        d: &Descriptor,
        by: &str,
        is_config: bool,
    ) -> Result<BlobUse, PushError> {
        let mt = d.media_type.clone().unwrap_or_default();
        match view.blob(&d.digest)? {
            Some((p, FileRec::Memory { bytes, .. })) => {
                verify_bytes(&p, bytes, d)?;
                Ok(BlobUse {
                    digest: d.digest.clone(),
                    size: d.size,
                    media_type: mt,
                    source: Source::Archive(FileRec::Memory {
                        bytes: bytes.clone(),
                        digest: d.digest.clone(),
                    }),
                })
            }
            Some((p, FileRec::Streamed(done))) => {
                if done.raw_digest != d.digest || done.raw_size != d.size {
                    return Err(PushError::DigestMismatch {
                        what: format!("blob {p} as described in {by}"),
                        expected: format!("{} ({} bytes)", d.digest, d.size),
                        actual: format!("{} ({} bytes)", done.raw_digest, done.raw_size),
                    });
                }
                let media_type = match done.recompressed {
                    Some(c) if !is_config => {
                        let docker = mt.starts_with("application/vnd.docker.");
                        layer_media_type(
                            if c == LayerCompression::Zstd {
                                Comp::Zstd
                            } else {
                                Comp::Gzip
                            },
                            docker && c == LayerCompression::Gzip,
                        )
                    }
                    _ => mt,
                };
                Ok(BlobUse {
                    digest: done.pushed_digest.clone(),
                    size: done.pushed_size,
                    media_type,
                    source: Source::Archive(FileRec::Streamed(done.clone())),
                })
            }
            Some((p, FileRec::Skipped)) => Err(PushError::manifest(&p, "is referenced as a blob")),
            None if d.urls.as_ref().is_some_and(|u| !u.is_empty()) => Ok(BlobUse {
                digest: d.digest.clone(),
                size: d.size,
                media_type: mt,
                source: Source::Foreign,
            }),
            None => {
                if self
                    .registry
                    .blob_exists(self.upload_repo, &d.digest)
                    .await?
                {
                    Ok(BlobUse {
                        digest: d.digest.clone(),
                        size: d.size,
                        media_type: mt,
                        source: Source::Registry,
                    })
                } else {
                    Err(PushError::BlobMissing {
                        digest: d.digest.to_string(),
                        by: by.to_string(),
                    })
                }
            }
        }
    }
}

/// For an image (not an artifact): the config must be an image config whose diff_ids match
/// the layers in number, and in value wherever hoist knows a layer's uncompressed digest
/// (uncompressed layers, recompressed ones, and all of them with `verify_layer_diff_ids`).
fn check_image_config(blobs: &[BlobUse], manifest: &str) -> Result<(), PushError> {
    let Some((config, layers)) = blobs.split_first() else {
        return Ok(());
    };
    if config.media_type != layout::OCI_CONFIG && config.media_type != layout::DOCKER_CONFIG {
        return Ok(());
    }
    let Source::Archive(FileRec::Memory { bytes, .. }) = &config.source else {
        return Ok(());
    };
    let what = format!("config {} of {manifest}", config.digest);
    let parsed: ImageConfig =
        layout::strict_json(bytes).map_err(|e| PushError::manifest(&what, e))?;
    let diff_ids = &parsed.rootfs.diff_ids;
    if diff_ids.len() != layers.len() {
        return Err(PushError::manifest(
            &what,
            format!(
                "lists {} diff_ids for {} layers",
                diff_ids.len(),
                layers.len()
            ),
        ));
    }
    for (i, (layer, want)) in layers.iter().zip(diff_ids).enumerate() {
        if let Source::Archive(FileRec::Streamed(done)) = &layer.source
            && let Some(found) = &done.diff_id
            && found != want
        {
            return Err(PushError::DigestMismatch {
                what: format!(
                    "layer {} (diffID, rootfs.diff_ids[{i}] of {what})",
                    done.path
                ),
                expected: want.to_string(),
                actual: found.to_string(),
            });
        }
    }
    Ok(())
}
