//! Publishing verified images: blobs into each target repository (found, mounted from where
//! they were streamed, or uploaded from memory), manifests by digest children first, and tags
//! last, once every image of the archive is complete.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::cache::Locations;
use super::error::PushError;
use super::placement::{self, Placed};
use super::targets::Targets;
use crate::image::{BlobRef, BlobSource, File, Image, ImageError, Node};
use crate::oci::Digest;
use crate::registry::{Registry, RegistryError};
use crate::report::{BlobReport, ChildReport, ImageReport, Outcome};

/// What publishing needs besides the images.
pub(super) struct Publisher<'a> {
    pub registry: &'a Arc<Registry>,
    /// Where streamed blobs went.
    pub upload_repo: &'a str,
    /// Where each streamed blob is (by pushed digest).
    pub placed: &'a HashMap<Digest, Placed>,
    pub locations: &'a Locations,
    /// Write nothing; say what publishing would do.
    pub dry_run: bool,
    /// Where this push may mount from.
    pub access: placement::Access<'a>,
}

impl Publisher<'_> {
    /// Every blob the archive leaves out must already be in each repository the image goes
    /// to. Never the staging repository: it holds every client's blobs, and finding one there
    /// would let an archive that merely names a digest link it anywhere.
    pub(super) async fn check_absent_blobs(
        &self,
        images: &[Image],
        targets: &[Targets],
    ) -> Result<(), PushError> {
        for (image, t) in images.iter().zip(targets) {
            for b in blobs(&image.root) {
                let BlobSource::Registry { by } = &b.source else {
                    continue;
                };
                for repo in t.keys() {
                    if !self.registry.blob_exists(repo, &b.digest).await? {
                        return Err(ImageError::BlobMissing {
                            digest: b.digest.to_string(),
                            by: by.clone(),
                        }
                        .into());
                    }
                }
            }
        }
        Ok(())
    }

    /// Publishes images; tags are written only after every image's manifests are in.
    /// Returns the report of each image in each repository, and the bytes sent.
    pub(super) async fn publish(
        &self,
        images: &[Image],
        targets: &[Targets],
    ) -> Result<(Vec<ImageReport>, u64), PushError> {
        let mut sent = 0u64;
        let mut outcomes: HashMap<(String, Digest), Outcome> = HashMap::new();
        let mut reports = Vec::new();
        for (image, t) in images.iter().zip(targets) {
            for (repo, tags) in t {
                let mut blob_reports = Vec::new();
                for b in blobs(&image.root) {
                    let key = (repo.clone(), b.digest.clone());
                    let outcome = match outcomes.get(&key) {
                        Some(o) => *o,
                        None if self.dry_run => self.would_place(b, repo).await?,
                        None => self.ensure_blob(b, repo, &mut sent).await?,
                    };
                    outcomes.insert(key, outcome);
                    if !blob_reports
                        .iter()
                        .any(|r: &BlobReport| r.digest == b.digest)
                    {
                        blob_reports.push(BlobReport {
                            digest: b.digest.clone(),
                            size: b.size,
                            media_type: b.media_type.clone(),
                            outcome,
                        });
                    }
                }
                if !self.dry_run {
                    for b in &blob_reports {
                        self.locations.put(b.digest.clone(), repo);
                    }
                }
                if !self.dry_run {
                    self.put_manifests(&image.root, repo, &mut sent).await?;
                }
                reports.push(report(image, repo, tags, blob_reports));
            }
        }
        if !self.dry_run {
            sent += super::tags::tag_all(self.registry, images, targets).await?;
        }
        Ok((reports, sent))
    }

    /// Makes one blob present in `repo`; says how.
    async fn ensure_blob(
        &self,
        b: &BlobRef,
        repo: &str,
        sent: &mut u64,
    ) -> Result<Outcome, PushError> {
        let streamed_here = |blob: &crate::image::StreamedBlob| {
            self.placed
                .get(&blob.pushed)
                .filter(|p| p.repo == repo)
                .cloned()
        };
        match &b.source {
            BlobSource::Foreign => Ok(Outcome::Foreign),
            BlobSource::Archive(File::Memory { bytes, .. }) => {
                let found = placement::find_or_mount(
                    self.registry,
                    self.locations,
                    self.access,
                    repo,
                    &b.digest,
                );
                if let Some(outcome) = found.await? {
                    return Ok(outcome);
                }
                if self
                    .registry
                    .put_blob(repo, &b.digest, bytes.clone())
                    .await?
                {
                    *sent += bytes.len() as u64;
                    return Ok(Outcome::Uploaded);
                }
                Ok(Outcome::Exists)
            }
            BlobSource::Archive(File::Streamed(blob)) if streamed_here(blob).is_some() => {
                Ok(streamed_here(blob).expect("checked").outcome)
            }
            // Checked to be in `repo` before publishing began.
            BlobSource::Registry { .. } => Ok(Outcome::Exists),
            BlobSource::Archive(File::Streamed(_)) => self.mount_from_upload_repo(b, repo).await,
            BlobSource::Archive(File::Skipped) => Err(PushError::Internal {
                detail: format!("skipped file used as blob {}", b.digest),
            }),
        }
    }

    /// What `ensure_blob` would do, asking the registry only with HEAD.
    async fn would_place(&self, b: &BlobRef, repo: &str) -> Result<Outcome, PushError> {
        let here = |blob: &crate::image::StreamedBlob| {
            self.placed
                .get(&blob.pushed)
                .filter(|p| p.repo == repo)
                .map(|p| p.outcome)
        };
        Ok(match &b.source {
            BlobSource::Foreign => Outcome::Foreign,
            BlobSource::Registry { .. } => Outcome::Exists,
            BlobSource::Archive(File::Streamed(s)) if here(s).is_some() => {
                here(s).expect("checked")
            }
            _ if self.registry.blob_exists(repo, &b.digest).await? => Outcome::Exists,
            BlobSource::Archive(File::Memory { .. })
                if self
                    .locations
                    .find(&b.digest, |from| {
                        from != repo && self.access.may_mount_from(from)
                    })
                    .is_some() =>
            {
                Outcome::Mounted
            }
            BlobSource::Archive(File::Streamed(s)) => self
                .placed
                .get(&s.pushed)
                .map_or(Outcome::Uploaded, |p| p.outcome),
            _ => Outcome::Uploaded,
        })
    }

    /// A blob in the upload (staging) repository, mounted into `repo`.
    async fn mount_from_upload_repo(&self, b: &BlobRef, repo: &str) -> Result<Outcome, PushError> {
        if self.registry.blob_exists(repo, &b.digest).await? {
            return Ok(Outcome::Exists);
        }
        if self
            .registry
            .mount(repo, &b.digest, self.upload_repo)
            .await?
        {
            let uploaded = matches!(&b.source, BlobSource::Archive(File::Streamed(s))
                if self.placed.get(&s.pushed).is_some_and(|p| p.outcome == Outcome::Uploaded));
            return Ok(if uploaded {
                Outcome::Uploaded
            } else {
                Outcome::Mounted
            });
        }
        Err(RegistryError::Protocol {
            op: format!("mount {} from {} into {repo}", b.digest, self.upload_repo),
            detail: "the registry declined the mount and the blob's bytes are gone; push again"
                .into(),
        }
        .into())
    }

    /// Every manifest of the tree by digest, children first, each once.
    async fn put_manifests(
        &self,
        root: &Node,
        repo: &str,
        sent: &mut u64,
    ) -> Result<(), PushError> {
        for node in nodes(root) {
            self.registry
                .put_manifest(repo, node.digest.as_str(), &node.media_type, &node.bytes)
                .await?;
            *sent += node.bytes.len() as u64;
        }
        Ok(())
    }
}

/// Every distinct node of a tree, children before their parents, each once (an index may
/// list one manifest many times).
fn nodes(root: &Node) -> Vec<&Node> {
    fn visit<'a>(n: &'a Node, out: &mut Vec<&'a Node>, seen: &mut HashSet<&'a Digest>) {
        if !seen.insert(&n.digest) {
            return;
        }
        for c in &n.children {
            visit(&c.node, out, seen);
        }
        out.push(n);
    }
    let mut out = Vec::new();
    visit(root, &mut out, &mut HashSet::new());
    out
}

/// Every blob a tree references, children's first.
fn blobs(root: &Node) -> Vec<&BlobRef> {
    nodes(root).into_iter().flat_map(|n| &n.blobs).collect()
}

fn report(image: &Image, repo: &str, tags: &[String], blobs: Vec<BlobReport>) -> ImageReport {
    let root = &image.root;
    ImageReport {
        repository: repo.to_string(),
        tags: tags.to_vec(),
        digest: root.digest.clone(),
        media_type: root.media_type.clone(),
        manifest_rewritten: root.rewritten,
        manifests: root
            .children
            .iter()
            .map(|c| ChildReport {
                digest: c.node.digest.clone(),
                media_type: c.node.media_type.clone(),
                platform: c.platform.clone(),
            })
            .collect(),
        blobs,
    }
}
