//! Every way a push can fail, each mapped to who is at fault, an HTTP status and a stable code.

use crate::archive::ArchiveError;
use crate::auth::AuthError;
use crate::image::ImageError;
use crate::registry::RegistryError;

#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// The upload's bytes or tar structure.
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    /// The images the archive holds are not what they claim.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The backend registry (or the network to it).
    #[error(transparent)]
    Registry(#[from] RegistryError),
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
    #[error(
        "two images of the archive would both be tagged {repository}:{tag}; push them separately or name them in the archive"
    )]
    TagConflict { repository: String, tag: String },
    #[error("the push would write {count} tags, more than the {limit} allowed (limits.tags)")]
    TooManyTags { count: usize, limit: usize },
    /// A query parameter or form field with a value hoist does not take.
    #[error("{name}={value:?}: {expected}")]
    ParameterInvalid {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
    /// A tag could not be written after others were; they were rolled back where possible.
    #[error(
        "tagging {failed} failed: {source}; tags written before it were rolled back (restored: {restored:?}; could not be removed, as the registry does not delete tags: {left:?})"
    )]
    TagFailed {
        failed: String,
        source: Box<RegistryError>,
        restored: Vec<String>,
        left: Vec<String>,
    },
    #[error("too many pushes in flight; retry shortly")]
    Busy,
    /// Who the client is, or where it may push.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// A browser request from a web page hoist does not allow (cross-site request forgery).
    #[error(
        "pushes from web pages at {origin:?} are not allowed (not this server, not in cors_allow_origins)"
    )]
    OriginDenied { origin: String },
    /// One client holds `max_pushes_per_client` pushes already.
    #[error("client {client:?} already has {limit} pushes in flight; retry shortly")]
    ClientBusy { client: String, limit: usize },
    #[error("internal error: {detail}")]
    Internal { detail: String },
}

impl PushError {
    /// The stable error code clients see.
    pub fn code(&self) -> &'static str {
        match self {
            PushError::Archive(e) => e.code(),
            PushError::Image(e) => e.code(),
            PushError::Registry(e) => e.code(),
            PushError::TagFailed { source, .. } => source.code(),
            PushError::ReferenceInvalid { .. } => "REFERENCE_INVALID",
            PushError::ReferenceMissing { .. } => "REFERENCE_MISSING",
            PushError::ReferenceAmbiguous { .. } | PushError::TagConflict { .. } => {
                "REFERENCE_AMBIGUOUS"
            }
            PushError::TooManyTags { .. } => "TOO_MANY_TAGS",
            PushError::ParameterInvalid { .. } => "PARAMETER_INVALID",
            PushError::Busy => "BUSY",
            PushError::Auth(e) => e.code(),
            PushError::OriginDenied { .. } => "ORIGIN_DENIED",
            PushError::ClientBusy { .. } => "TOO_MANY_REQUESTS",
            PushError::Internal { .. } => "INTERNAL",
        }
    }

    /// The HTTP status hoist answers with.
    pub fn status(&self) -> u16 {
        match self {
            PushError::Archive(e) => e.status(),
            PushError::Image(e) => e.status(),
            PushError::Registry(e) => e.status(),
            PushError::TagFailed { source, .. } => source.status(),
            PushError::Busy => 503,
            PushError::Auth(e) => e.status(),
            PushError::OriginDenied { .. } => 403,
            PushError::ClientBusy { .. } => 429,
            PushError::Internal { .. } => 500,
            _ => 400,
        }
    }

    /// The JSON body every failure answers with: `{"error": {"code", "message"}}`.
    pub fn body(&self) -> serde_json::Value {
        serde_json::json!({"error": {"code": self.code(), "message": self.to_string()}})
    }
}
