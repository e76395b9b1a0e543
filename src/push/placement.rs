//! Where a blob goes, decided in one place. The registry may already have it in the target
//! (HEAD); it may hold it in another repository this process saw it in (mount); or it must be
//! uploaded. A streamed blob is mounted only after this push has hashed the bytes it claims:
//! mounting first would link another repository's blob into the target on the strength of a
//! name alone (an entry `blobs/sha256/<D>` holding junk).

use std::sync::Arc;

use super::cache::Locations;
use super::error::PushError;
use crate::auth::Client;
use crate::codec::LayerTransform;
use crate::oci::Digest;
use crate::registry::{Registry, Started};
use crate::report::Outcome;

/// Which repositories a push may mount from: only those its client may push to, and never
/// the shared staging repository (that one only for this push's own blobs, at publish).
/// Stops a client from borrowing a blob out of a repository it cannot see: hoist's own
/// credentials could read it there, the client's could not.
#[derive(Clone, Copy)]
pub(super) struct Access<'a> {
    pub client: &'a Client,
    pub staging: &'a str,
}

impl Access<'_> {
    pub(super) fn may_mount_from(&self, repo: &str) -> bool {
        repo != self.staging && self.client.may_push(repo)
    }
}

/// Where a blob is in a repository, and how it got there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Placed {
    pub repo: String,
    pub outcome: Outcome,
}

/// Where a streamed blob's bytes go.
pub(super) enum Dest {
    /// Upload into `repo`.
    Upload { repo: String },
    /// The bytes are only hashed, to verify them: the registry has the blob in `repo`
    /// already (`Exists`), or this is a dry run and `outcome` is what a push would do.
    Hash {
        repo: String,
        outcome: Outcome,
        /// The blob an uncompressed layer became last time (from the layer cache).
        reused: Option<Reused>,
    },
    /// Another repository holds it: hash the bytes, and once they prove to be what the
    /// entry claims, mount the blob from there instead of sending it.
    Mount {
        repo: String,
        from: String,
        reused: Option<Reused>,
    },
}

/// A compressed layer this process made before and the registry holds.
#[derive(Debug, Clone)]
pub(super) struct Reused {
    pub blob: Digest,
    pub size: u64,
    pub transform: LayerTransform,
}

/// For a streamed blob whose digest is known before its bytes (its name, or the layer
/// cache): present, mountable after hashing (the source still holds it), or to be uploaded.
pub(super) async fn destination(
    registry: &Registry,
    locations: &Locations,
    access: Access<'_>,
    repo: &str,
    digest: &Digest,
    reused: Option<Reused>,
) -> Result<Option<Dest>, PushError> {
    let repo = repo.to_string();
    if registry.blob_exists(&repo, digest).await? {
        return Ok(Some(Dest::Hash {
            repo,
            outcome: Outcome::Exists,
            reused,
        }));
    }
    let Some(from) = source(locations, access, &repo, digest) else {
        return Ok(None);
    };
    // A location can be stale (the blob deleted, the registry reset, the CLI's cache file
    // from long ago), and a streamed blob's bytes are gone once hashed: a declined mount
    // would fail the push. One HEAD first turns a stale entry into an upload.
    if !registry.blob_exists(&from, digest).await.unwrap_or(false) {
        tracing::debug!(%digest, %from, "no longer there; uploading instead of mounting");
        locations.forget(digest);
        return Ok(None);
    }
    Ok(Some(Dest::Mount { repo, from, reused }))
}

impl Dest {
    /// The same destination in a dry run: only hashed, with the outcome a push would have.
    pub(super) fn dry(self) -> Dest {
        match self {
            Dest::Upload { repo } => Dest::Hash {
                repo,
                outcome: Outcome::Uploaded,
                reused: None,
            },
            Dest::Mount { repo, reused, .. } => Dest::Hash {
                repo,
                outcome: Outcome::Mounted,
                reused,
            },
            hash @ Dest::Hash { .. } => hash,
        }
    }
}

/// Where this process last saw a blob, other than `repo`, that this push may mount from.
fn source(
    locations: &Locations,
    access: Access<'_>,
    repo: &str,
    digest: &Digest,
) -> Option<String> {
    locations.find(digest, |f| f != repo && access.may_mount_from(f))
}

/// Mounts a verified blob; a declined mount is an error (its bytes are gone), and the stale
/// location is forgotten so that pushing again sends them.
pub(super) async fn mount_verified(
    registry: &Registry,
    locations: &Locations,
    repo: &str,
    digest: &Digest,
    from: &str,
) -> Result<(), PushError> {
    if registry.mount(repo, digest, from).await.unwrap_or(false) {
        return Ok(());
    }
    locations.forget(digest);
    Err(crate::registry::RegistryError::Protocol {
        op: format!("mount {digest} from {from} into {repo}"),
        detail: "the registry declined the mount after the blob's bytes went by; push again and they will be sent".into(),
    }
    .into())
}

/// For a blob held in memory (a config): present, mounted, or to be uploaded. Its bytes are
/// at hand and hashed, so a mount is safe before the upload.
pub(super) async fn find_or_mount(
    registry: &Arc<Registry>,
    locations: &Locations,
    access: Access<'_>,
    repo: &str,
    digest: &Digest,
) -> Result<Option<Outcome>, PushError> {
    if registry.blob_exists(repo, digest).await? {
        return Ok(Some(Outcome::Exists));
    }
    let Some(from) = source(locations, access, repo, digest) else {
        return Ok(None);
    };
    // Any mount failure falls back to an upload (Harbor answers 401 for unknown projects).
    match registry.start_upload(repo, Some((digest, &from))).await {
        Ok(Started::Mounted) => Ok(Some(Outcome::Mounted)),
        Ok(Started::Session(s)) => {
            registry.cancel(&s).await;
            Ok(None)
        }
        Err(e) => {
            tracing::debug!(%digest, %from, error = %e, "mount failed; uploading instead");
            Ok(None)
        }
    }
}
