//! Why an archive's images are not what they claim. All of it is the client's fault: 400.

use crate::archive::ArchiveError;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// The layout itself: no images, links that lead nowhere, metadata too large.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
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
    #[error(
        "the archive's manifests make more than {limit} references (at {at}; limits.references)"
    )]
    TooManyReferences { limit: usize, at: String },
    #[error("no image of the archive has platform {platform} (it has: {available})")]
    PlatformMissing { platform: String, available: String },
}

impl ImageError {
    /// The stable error code clients see.
    pub fn code(&self) -> &'static str {
        match self {
            ImageError::Archive(e) => e.code(),
            ImageError::DigestMismatch { .. } => "DIGEST_MISMATCH",
            ImageError::BlobMissing { .. } => "BLOB_MISSING",
            ImageError::ManifestInvalid { .. } => "MANIFEST_INVALID",
            ImageError::TooManyReferences { .. } => "TOO_MANY_REFERENCES",
            ImageError::PlatformMissing { .. } => "PLATFORM_MISSING",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            ImageError::Archive(e) => e.status(),
            ImageError::TooManyReferences { .. } => 413,
            _ => 400,
        }
    }

    pub fn manifest(path: &str, detail: impl std::fmt::Display) -> ImageError {
        ImageError::ManifestInvalid {
            path: path.to_string(),
            detail: detail.to_string(),
        }
    }
}
