//! Every way a push can fail, each mapped to who is at fault, an HTTP status and a stable code.

use crate::archive::ArchiveError;
use crate::registry::RegistryError;

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error("{what}: expected {expected}, found {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("blob {digest} referenced by {by} is neither in the archive nor in the registry")]
    BlobMissing { digest: String, by: String },
    #[error("{path}: {detail}")]
    ManifestInvalid { path: String, detail: String },
    #[error("{what} {name:?} is not a valid reference")]
    ReferenceInvalid { what: &'static str, name: String },
    #[error(
        "image {image} has no repository and tag to push it under: name them in the URL (/push/REPOSITORY:TAG)"
    )]
    ReferenceMissing { image: String },
    #[error(
        "the URL names one tag but the archive holds {count} images; push without a tag to use their own names"
    )]
    ReferenceAmbiguous { count: usize },
    #[error("too many pushes in flight; retry shortly")]
    Busy,
    #[error("internal error: {detail}")]
    Internal { detail: String },
}

impl PushError {
    pub fn code(&self) -> &'static str {
        match self {
            PushError::Archive(e) => e.code(),
            PushError::Registry(e) => e.code(),
            PushError::DigestMismatch { .. } => "DIGEST_MISMATCH",
            PushError::BlobMissing { .. } => "BLOB_MISSING",
            PushError::ManifestInvalid { .. } => "MANIFEST_INVALID",
            PushError::ReferenceInvalid { .. } => "REFERENCE_INVALID",
            PushError::ReferenceMissing { .. } => "REFERENCE_MISSING",
            PushError::ReferenceAmbiguous { .. } => "REFERENCE_AMBIGUOUS",
            PushError::Busy => "BUSY",
            PushError::Internal { .. } => "INTERNAL",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            PushError::Archive(e) => e.status(),
            PushError::Registry(e) => e.status(),
            PushError::Busy => 503,
            PushError::Internal { .. } => 500,
            _ => 400,
        }
    }

    pub fn manifest(path: &str, detail: impl std::fmt::Display) -> PushError {
        PushError::ManifestInvalid {
            path: path.to_string(),
            detail: detail.to_string(),
        }
    }
}
