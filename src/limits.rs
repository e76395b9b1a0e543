//! Every bound hoist puts on one upload, in one place. Each has its own error code
//! (see `docs/API.md`) so a client can tell which one it hit.

use serde::{Deserialize, Serialize};

/// Per-request limits. Defaults suit multi-GB images on a small gateway.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Request body bytes as received (compressed). Default 64 GiB: the largest layers seen
    /// in the wild (CUDA/ML images) are tens of GB. `REQUEST_TOO_LARGE`.
    pub request_bytes: u64,
    /// Archive bytes after whole-archive decompression. Stops gzip/zstd bombs early.
    /// Default 128 GiB. `DECOMPRESSED_TOO_LARGE`.
    pub decompressed_bytes: u64,
    /// Compression ratio cap (decompressed / compressed), checked once 64 MiB have been
    /// decompressed. Real archives stay far below 100:1; bombs are 1000:1. Default 200.
    /// `DECOMPRESSED_TOO_LARGE`.
    pub max_ratio: u64,
    /// Tar entries (headers) in the archive. Default 100 000. `TOO_MANY_ENTRIES`.
    pub entries: u64,
    /// One metadata file kept in memory (manifest.json, index.json, manifests, configs).
    /// Default 4 MiB, the registries' own manifest cap. `METADATA_TOO_LARGE`.
    pub metadata_file_bytes: u64,
    /// All metadata kept in memory for one request. Default 32 MiB. `METADATA_TOO_LARGE`.
    pub metadata_total_bytes: u64,
    /// Longest entry name and link target, in bytes; a GNU long name or link may not be
    /// larger, nor a PAX record set more than 4 KiB larger (it holds other records too).
    /// Default 4096. `ENTRY_PATH_INVALID`, or `ENTRY_HEADER_INVALID` for the extensions.
    pub path_bytes: usize,
    /// Slowest a client may send, in bytes per second, averaged over 30 s of hoist waiting
    /// for it (time hoist spends waiting on the registry does not count against the
    /// client). Stops slow-drip clients from holding a push slot. Default 1024; 0 turns
    /// it off. `BODY_TIMEOUT`.
    pub min_body_rate: u64,
    /// Everything a multipart body holds before its `file` part (preamble, part headers,
    /// text fields), in bytes. Default 64 KiB. `PREAMBLE_TOO_LARGE`.
    pub preamble_bytes: u64,
    /// References resolution may follow: every manifest, index, config and layer descriptor,
    /// a shared one each time it is listed (each is resolved once). Default 20,000.
    /// `TOO_MANY_REFERENCES`.
    pub references: usize,
    /// Tags one push may write, across all its images and repositories. Default 64.
    /// `TOO_MANY_TAGS`.
    pub tags: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            request_bytes: 64 << 30,
            decompressed_bytes: 128 << 30,
            max_ratio: 200,
            entries: 100_000,
            metadata_file_bytes: 4 << 20,
            metadata_total_bytes: 32 << 20,
            path_bytes: 4096,
            min_body_rate: 1024,
            preamble_bytes: 64 << 10,
            references: 20_000,
            tags: 64,
        }
    }
}

impl Limits {
    pub fn validate(&self) -> Result<(), &'static str> {
        if self.request_bytes == 0
            || self.decompressed_bytes == 0
            || self.entries == 0
            || self.metadata_file_bytes == 0
            || self.metadata_total_bytes < self.metadata_file_bytes
            || self.max_ratio == 0
            || self.path_bytes == 0
            || self.preamble_bytes == 0
            || self.tags == 0
            || self.references == 0
        {
            return Err("limits must be positive and metadata_total_bytes >= metadata_file_bytes");
        }
        Ok(())
    }
}
