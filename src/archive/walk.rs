//! Stage 2: the tar entry stream, validated entry by entry: names normalised, duplicates,
//! counts, entry types and PAX/ustar size agreement checked before any byte is used.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use tokio::io::AsyncRead;
use tokio_tar::{Archive, Entries, Entry};

use super::ArchiveError;
use super::guard::{Guard, Seen};
use super::paths;
use crate::limits::Limits;

/// One validated entry.
#[expect(
    clippy::large_enum_variant,
    reason = "one item per tar entry, moved once"
)]
pub enum Item<R: AsyncRead + Unpin> {
    /// A regular file; its body is read from `entry`.
    File {
        path: String,
        size: u64,
        entry: Entry<Archive<Guard<R>>>,
    },
    /// A symbolic link, target already resolved against the link's directory.
    Symlink { path: String, target: String },
    /// A hard link to an earlier entry.
    Hardlink { path: String, target: String },
}

/// Walks the entries of a tar stream.
pub struct Walker<R: AsyncRead + Unpin> {
    archive: Archive<Guard<R>>,
    entries: Entries<Guard<R>>,
    /// What the guard in front of the reader saw.
    guard: Arc<Mutex<Seen>>,
    seen: HashSet<String>,
    files: HashSet<String>,
    count: u64,
    limits: Limits,
}

/// ustar size fields hold 11 octal digits: beyond that a writer must use PAX.
const USTAR_MAX: u64 = (1 << 33) - 1;

impl<R: AsyncRead + Unpin + Send + 'static> Walker<R> {
    pub fn new(reader: R, limits: Limits) -> Result<Walker<R>, ArchiveError> {
        let (reader, seen) = Guard::new(reader, limits.path_bytes as u64);
        let mut archive = tokio_tar::ArchiveBuilder::new(reader).build();
        let entries = archive.entries().map_err(|e| ArchiveError::Malformed {
            at: "at the start".into(),
            detail: e.to_string(),
        })?;
        Ok(Walker {
            archive,
            entries,
            guard: seen,
            seen: HashSet::new(),
            files: HashSet::new(),
            count: 0,
            limits,
        })
    }

    /// Number of entries so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The next file or link; directories are checked and skipped.
    pub async fn next(&mut self) -> Result<Option<Item<R>>, ArchiveError> {
        loop {
            let Some(entry) = self.next_entry().await? else {
                return Ok(None);
            };
            let Some(path) = self.check(&entry)? else {
                continue;
            };
            if !self.seen.insert(path.clone()) {
                return Err(ArchiveError::Duplicate { path });
            }
            let kind = entry.header().entry_type();
            if kind.is_symlink() || kind.is_hard_link() {
                return self.link(&entry, path).map(Some);
            }
            self.files.insert(path.clone());
            let size = entry.effective_size();
            return Ok(Some(Item::File { path, size, entry }));
        }
    }

    /// Reads the next header, counting entries against the limit.
    async fn next_entry(&mut self) -> Result<Option<Entry<Archive<Guard<R>>>>, ArchiveError> {
        let entry = match self.entries.next().await {
            None => return Ok(None),
            Some(Ok(e)) => e,
            Some(Err(e)) => return Err(self.unreadable(e)),
        };
        self.count += 1;
        if self.count > self.limits.entries {
            return Err(ArchiveError::TooManyEntries {
                limit: self.limits.entries,
            });
        }
        Ok(Some(entry))
    }

    /// Why a header could not be read: the upload is no tar at all, or a broken one.
    fn unreadable(&self, e: std::io::Error) -> ArchiveError {
        let mut seen = self.guard.lock().expect("guard lock");
        if let Some(fault) = seen.fault.take() {
            return fault;
        }
        let head = &seen.head;
        if self.count == 0 && !looks_like_a_tar_header(head) {
            let detail = if head.len() < 512 {
                format!(
                    "after decompression it holds only {} bytes, less than one tar header",
                    head.len()
                )
            } else {
                "after decompression its first 512 bytes are not a tar header".into()
            };
            return ArchiveError::NotAnArchive { detail };
        }
        ArchiveError::Malformed {
            at: format!("after entry {}", self.count),
            detail: e.to_string(),
        }
    }

    /// Checks an entry's name, type and sizes; `None` for a directory (skipped).
    fn check(&self, entry: &Entry<Archive<Guard<R>>>) -> Result<Option<String>, ArchiveError> {
        let raw_path = entry.path_bytes().map_err(|e| ArchiveError::Malformed {
            at: format!("at entry {}", self.count),
            detail: e.to_string(),
        })?;
        let shown: String = String::from_utf8_lossy(&raw_path)
            .chars()
            .take(300)
            .collect();
        let path = paths::normalize(&raw_path, self.limits.path_bytes).map_err(|reason| {
            ArchiveError::EntryPath {
                path: shown.clone(),
                reason,
            }
        })?;
        let header = entry.header();
        let kind = header.entry_type();
        if kind.is_dir() {
            return Ok(None);
        }
        if path.is_empty() {
            return Err(ArchiveError::EntryPath {
                path: shown,
                reason: "name is empty",
            });
        }
        check_type(&path, kind)?;
        // Two parsers must never see two different archives (TARmageddon, CVE-2025-62518):
        // a PAX size may only differ from the ustar size where ustar cannot express it.
        let ustar = header
            .raw_file_size()
            .map_err(|e| header_err(&path, &e.to_string()))?;
        let size = entry.effective_size();
        if size != ustar && !(ustar == 0 && size > USTAR_MAX) {
            return Err(header_err(
                &path,
                &format!("PAX size {size} disagrees with the header size {ustar}"),
            ));
        }
        Ok(Some(path))
    }

    /// A symlink (target resolved against its directory) or a hard link to an earlier file.
    fn link(
        &self,
        entry: &Entry<Archive<Guard<R>>>,
        path: String,
    ) -> Result<Item<R>, ArchiveError> {
        let target = entry
            .link_name_bytes()
            .map_err(|e| header_err(&path, &e.to_string()))?
            .map(|t| String::from_utf8_lossy(&t).to_string())
            .unwrap_or_default();
        let link_err = |reason| ArchiveError::Link {
            path: path.clone(),
            target: target.clone(),
            reason,
        };
        if entry.header().entry_type().is_symlink() {
            let resolved = paths::resolve_link(&path, &target)
                .ok_or_else(|| link_err("it points outside the archive"))?;
            return Ok(Item::Symlink {
                path,
                target: resolved,
            });
        }
        let resolved = paths::normalize_hardlink(&target, self.limits.path_bytes)
            .ok_or_else(|| link_err("it points outside the archive"))?;
        if !self.files.contains(&resolved) {
            return Err(link_err("a hard link must name an earlier file"));
        }
        Ok(Item::Hardlink {
            path,
            target: resolved,
        })
    }

    /// After the end-of-archive marker: only zero padding may follow.
    /// Reading on to the end also lets the client finish sending before it gets an answer.
    pub async fn finish(self) -> Result<(), ArchiveError> {
        use tokio::io::AsyncReadExt;
        let Walker {
            archive,
            entries,
            count,
            ..
        } = self;
        drop(entries);
        let Ok(mut reader) = archive.into_inner() else {
            return Ok(());
        };
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = reader
                .read(&mut buf)
                .await
                .map_err(|e| ArchiveError::Malformed {
                    at: format!("after the end of the tar ({count} entries)"),
                    detail: e.to_string(),
                })?;
            if n == 0 {
                return Ok(());
            }
            if buf[..n].iter().any(|&b| b != 0) {
                return Err(ArchiveError::Malformed {
                    at: format!("after the end of the tar ({count} entries)"),
                    detail: "trailing data that is not zero padding".into(),
                });
            }
        }
    }
}

/// A first block with a valid tar checksum (or the ustar magic) means the upload is a tar,
/// however broken: `ARCHIVE_INVALID`, not `UNSUPPORTED_FORMAT`.
fn looks_like_a_tar_header(block: &[u8]) -> bool {
    if block.len() < 512 {
        return false;
    }
    if &block[257..262] == b"ustar" {
        return true;
    }
    let stored = std::str::from_utf8(&block[148..156])
        .ok()
        .map(|s| s.trim_matches(|c: char| c == '\0' || c == ' '))
        .and_then(|s| u32::from_str_radix(s, 8).ok());
    let sum: u32 = block[..148]
        .iter()
        .chain(&block[156..512])
        .map(|&b| b as u32)
        .sum::<u32>()
        + 8 * 32;
    stored == Some(sum)
}

/// Regular files, symlinks and hard links only: no devices, no sparse files, no global PAX
/// headers that would change how later entries read.
fn check_type(path: &str, kind: tokio_tar::EntryType) -> Result<(), ArchiveError> {
    if kind.is_pax_global_extensions() {
        return Err(header_err(path, "global PAX headers are not accepted"));
    }
    if kind.is_gnu_sparse() {
        return Err(header_err(path, "sparse entries are not accepted"));
    }
    if !(kind.is_file() || kind.is_contiguous() || kind.is_symlink() || kind.is_hard_link()) {
        return Err(header_err(
            path,
            &format!("entry type {:?} is not accepted", kind.as_byte() as char),
        ));
    }
    Ok(())
}

fn header_err(path: &str, reason: &str) -> ArchiveError {
    ArchiveError::EntryHeader {
        path: path.to_string(),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
#[path = "walk_tests.rs"]
mod tests;
