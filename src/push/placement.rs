//! Where a blob goes, decided in one place: the registry may already have it in the target
//! (HEAD), may hold it in another repository this process saw it in (mount), or it must be
//! uploaded.

use std::sync::Arc;

use super::cache::Locations;
use super::error::PushError;
use crate::codec::LayerTransform;
use crate::oci::Digest;
use crate::registry::{Registry, Session, Started};
use crate::report::Outcome;

/// Where a blob is in a repository, and how it got there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Placed {
    pub repo: String,
    pub outcome: Outcome,
}

/// Where a streamed blob's bytes go.
pub(super) enum Dest {
    /// Upload into `repo`, on `session` when a declined mount already opened one.
    Upload {
        repo: String,
        session: Option<Session>,
    },
    /// The registry has it already: the bytes are only hashed, to verify them.
    Present {
        placed: Placed,
        /// The blob an uncompressed layer became last time (from the layer cache).
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

/// The registry's answer for one blob in one repository.
pub(super) enum Found {
    /// It is there (or was mounted there).
    Present(Outcome),
    /// A mount was declined and the registry opened an upload session instead: use it.
    Session(Session),
    Absent,
}

/// Looks for `digest` in `repo`: HEAD, then a mount from where this process last saw it.
pub(super) async fn find(
    registry: &Arc<Registry>,
    locations: &Locations,
    repo: &str,
    digest: &Digest,
) -> Result<Found, PushError> {
    if registry.blob_exists(repo, digest).await? {
        return Ok(Found::Present(Outcome::Exists));
    }
    let Some(from) = locations.get(digest).filter(|f| f != repo) else {
        return Ok(Found::Absent);
    };
    // Any mount failure falls back to an upload (Harbor answers 401 for unknown projects).
    Ok(
        match registry.start_upload(repo, Some((digest, &from))).await {
            Ok(Started::Mounted) => Found::Present(Outcome::Mounted),
            Ok(Started::Session(s)) => Found::Session(Session::adopt(registry.clone(), s)),
            Err(e) => {
                tracing::debug!(%digest, %from, error = %e, "mount failed; uploading instead");
                Found::Absent
            }
        },
    )
}

impl Found {
    /// Where the blob is in `repo`, or the session a declined mount left to upload on.
    pub(super) fn split(self, repo: &str) -> (Option<Placed>, Option<Session>) {
        match self {
            Found::Present(outcome) => (
                Some(Placed {
                    repo: repo.to_string(),
                    outcome,
                }),
                None,
            ),
            Found::Session(s) => (None, Some(s)),
            Found::Absent => (None, None),
        }
    }
}
