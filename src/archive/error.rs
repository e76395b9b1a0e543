//! Everything wrong with an uploaded archive is the client's fault: 4xx, with a message naming
//! the entry at fault.

/// A problem with the archive bytes or its structure.
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("the upload is not an image archive: {detail}")]
    NotAnArchive { detail: String },
    #[error("the archive holds no image: no manifest.json or index.json found")]
    NoImages,
    #[error("the archive is malformed {at}: {detail}")]
    Malformed { at: String, detail: String },
    #[error("entry {path:?} has an invalid name: {reason}")]
    EntryPath { path: String, reason: &'static str },
    #[error("link {path:?} -> {target:?} is invalid: {reason}")]
    Link {
        path: String,
        target: String,
        reason: &'static str,
    },
    #[error("entry {path:?} has an invalid header: {reason}")]
    EntryHeader { path: String, reason: String },
    #[error("entry {path:?} appears twice in the archive")]
    Duplicate { path: String },
    #[error("the request body is larger than the limit of {limit} bytes")]
    RequestTooLarge { limit: u64 },
    #[error(
        "the multipart body holds more than {limit} bytes before its \"file\" part (limits.preamble_bytes)"
    )]
    PreambleTooLarge { limit: u64 },
    #[error("the archive decompresses to more than {limit} bytes (limits.decompressed_bytes)")]
    DecompressedTooLarge { limit: u64 },
    #[error(
        "the archive decompresses at more than {ratio}:1 (limits.max_ratio); refusing a likely compression bomb"
    )]
    RatioTooHigh { ratio: u64 },
    #[error(
        "layer {path:?} inflates at more than {ratio}:1 (limits.max_ratio); refusing a likely compression bomb"
    )]
    LayerRatioTooHigh { path: String, ratio: u64 },
    #[error("the archive has more than {limit} entries")]
    TooManyEntries { limit: u64 },
    #[error("metadata file {path:?} is larger than {limit} bytes")]
    MetadataTooLarge { path: String, limit: u64 },
    #[error("the archive's metadata files together exceed {limit} bytes (at {path:?})")]
    MetadataTotalTooLarge { path: String, limit: u64 },
    #[error("the client stopped sending after {received} bytes, before the archive ended")]
    BodyIncomplete { received: u64 },
    #[error("the client sent nothing for {secs} s (after {received} bytes)")]
    BodyStalled { secs: u64, received: u64 },
    #[error(
        "the client sent {bytes} bytes in {secs} s, below the minimum of {rate} bytes/s (limits.min_body_rate)"
    )]
    BodyTooSlow { bytes: u64, secs: u64, rate: u64 },
    #[error(
        "the archive's {bytes} bytes have digest {actual}, not {claimed} (the digest parameter); nothing was tagged"
    )]
    BodyDigestMismatch {
        claimed: String,
        actual: String,
        bytes: u64,
    },
}

impl ArchiveError {
    /// The stable error code clients see.
    pub fn code(&self) -> &'static str {
        match self {
            ArchiveError::NotAnArchive { .. } | ArchiveError::NoImages => "UNSUPPORTED_FORMAT",
            ArchiveError::Malformed { .. } => "ARCHIVE_INVALID",
            ArchiveError::EntryPath { .. } => "ENTRY_PATH_INVALID",
            ArchiveError::Link { .. } => "LINK_INVALID",
            ArchiveError::EntryHeader { .. } => "ENTRY_HEADER_INVALID",
            ArchiveError::Duplicate { .. } => "DUPLICATE_ENTRY",
            ArchiveError::RequestTooLarge { .. } => "REQUEST_TOO_LARGE",
            ArchiveError::PreambleTooLarge { .. } => "PREAMBLE_TOO_LARGE",
            ArchiveError::DecompressedTooLarge { .. }
            | ArchiveError::RatioTooHigh { .. }
            | ArchiveError::LayerRatioTooHigh { .. } => "DECOMPRESSED_TOO_LARGE",
            ArchiveError::TooManyEntries { .. } => "TOO_MANY_ENTRIES",
            ArchiveError::MetadataTooLarge { .. } | ArchiveError::MetadataTotalTooLarge { .. } => {
                "METADATA_TOO_LARGE"
            }
            ArchiveError::BodyIncomplete { .. } => "BODY_INCOMPLETE",
            ArchiveError::BodyDigestMismatch { .. } => "ARCHIVE_DIGEST_MISMATCH",
            ArchiveError::BodyStalled { .. } | ArchiveError::BodyTooSlow { .. } => "BODY_TIMEOUT",
        }
    }

    pub fn status(&self) -> u16 {
        match self.code() {
            "UNSUPPORTED_FORMAT" => 415,
            "BODY_TIMEOUT" => 408,
            "REQUEST_TOO_LARGE"
            | "PREAMBLE_TOO_LARGE"
            | "DECOMPRESSED_TOO_LARGE"
            | "TOO_MANY_ENTRIES"
            | "METADATA_TOO_LARGE" => 413,
            _ => 400,
        }
    }
}
