//! Tags, written last and all or nothing: what each tag pointed to before is read first, and
//! when a later tag fails (an immutable tag in Harbor or ECR, a 5xx after retries) the tags
//! already written are put back, or deleted where they are new and the registry allows it.

use super::error::PushError;
use super::targets::Targets;
use crate::image::Image;
use crate::registry::{Manifest, Registry, RegistryError};

/// A tag this push wrote, and what it named before.
struct Written {
    repo: String,
    tag: String,
    previous: Option<Manifest>,
}

/// Writes every tag of every image; returns the bytes sent.
pub(super) async fn tag_all(
    registry: &Registry,
    images: &[Image],
    targets: &[Targets],
) -> Result<u64, PushError> {
    let mut written = Vec::new();
    let mut sent = 0u64;
    for (image, t) in images.iter().zip(targets) {
        for (repo, tags) in t {
            for tag in tags {
                let root = &image.root;
                let result = async {
                    let previous = registry.get_manifest(repo, tag).await?;
                    registry
                        .put_manifest(repo, tag, &root.media_type, &root.bytes)
                        .await?;
                    Ok::<_, RegistryError>(previous)
                }
                .await;
                match result {
                    Ok(previous) => written.push(Written {
                        repo: repo.clone(),
                        tag: tag.clone(),
                        previous,
                    }),
                    Err(source) => {
                        let failed = format!("{repo}:{tag}");
                        return Err(roll_back(registry, written, failed, source).await);
                    }
                }
                sent += root.bytes.len() as u64;
            }
        }
    }
    Ok(sent)
}

/// Puts back what the written tags named before; says what could not be undone.
async fn roll_back(
    registry: &Registry,
    written: Vec<Written>,
    failed: String,
    source: RegistryError,
) -> PushError {
    let (mut restored, mut left) = (Vec::new(), Vec::new());
    for w in written.into_iter().rev() {
        let name = format!("{}:{}", w.repo, w.tag);
        let undone = match &w.previous {
            Some(m) => registry
                .put_manifest(&w.repo, &w.tag, &m.media_type, &m.bytes)
                .await
                .is_ok(),
            None => registry.delete_tag(&w.repo, &w.tag).await.unwrap_or(false),
        };
        if undone { &mut restored } else { &mut left }.push(name);
    }
    tracing::warn!(%failed, ?restored, ?left, "a tag failed; earlier tags rolled back");
    PushError::TagFailed {
        failed,
        source: Box::new(source),
        restored,
        left,
    }
}
