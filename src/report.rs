//! The JSON report a successful push answers with (see `docs/API.md`).

use serde::Serialize;

use crate::oci::Digest;

/// What happened to one blob.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// hoist sent its bytes.
    Uploaded,
    /// The target repository already had it.
    Exists,
    /// Mounted from another repository of the registry; no bytes sent.
    Mounted,
    /// A foreign layer, neither sent nor checked.
    Foreign,
}

#[derive(Debug, Clone, Serialize)]
pub struct BlobReport {
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
    pub outcome: Outcome,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChildReport {
    pub digest: Digest,
    pub media_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImageReport {
    pub repository: String,
    pub tags: Vec<String>,
    pub digest: Digest,
    pub media_type: String,
    pub manifest_rewritten: bool,
    pub manifests: Vec<ChildReport>,
    pub blobs: Vec<BlobReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Nothing was written: the outcomes say what a push would do.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    /// The same archive (by the `digest` the client named) was pushed here before into the
    /// same repository: it was hashed, not unpacked, and published from what that push found.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub replayed: bool,
    /// Who pushed: the client's name (never a token).
    pub client: String,
    pub images: Vec<ImageReport>,
    pub bytes_received: u64,
    pub bytes_sent: u64,
    pub seconds: f64,
}
