//! Archives pushed before, by the sha256 the client named (`?digest=`). A re-push of the same
//! bytes into the same repository is replayed: the body is only hashed (to check the claim),
//! the blobs are checked to be still where the first push left them, and the images are
//! published from what that push found. No inflate, no tar walk, no layer hashing: a re-push
//! costs one sha256 of the archive as sent.
//!
//! Only a push that ended well (published, not a dry run, its digest checked) is remembered.
//! A replay whose body hashes to something else fails before anything is tagged, as a first
//! push would.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use futures_util::future::join_all;
use tokio::sync::mpsc;

use super::ingest::Ingested;
use super::placement::Placed;
use crate::archive::ArchiveError;
use crate::archive::input::Feed;
use crate::codec::LayerTransform;
use crate::image::{ArchiveFiles, File};
use crate::oci::Digest;
use crate::registry::Registry;
use crate::report::Outcome;

/// What makes two pushes the same: the bytes, where their blobs go, what becomes of layers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Key {
    pub digest: Digest,
    pub upload_repo: String,
    pub transform: LayerTransform,
}

/// What the first push found and did, all a replay needs to publish again.
struct Replay {
    archive: ArchiveFiles,
    placed: HashMap<Digest, Placed>,
    entries: u64,
    /// Bytes kept in memory (the archive's small files), for the cache's budget.
    size: usize,
}

/// A bounded cache of replays, oldest out first.
pub(super) struct Known {
    entries: Mutex<VecDeque<(Key, Arc<Replay>)>>,
    max_entries: usize,
    max_bytes: usize,
}

impl Known {
    pub fn new(max_entries: usize, max_bytes: usize) -> Known {
        Known {
            entries: Mutex::new(VecDeque::new()),
            max_entries,
            max_bytes,
        }
    }

    /// Remembers a push that ended well. An archive whose small files alone would take more
    /// than a quarter of the budget is not kept.
    pub fn remember(&self, key: Key, ingested: &Ingested) {
        let size = memory_size(&ingested.archive);
        if size > self.max_bytes / 4 {
            return;
        }
        let replay = Arc::new(Replay {
            archive: ingested.archive.clone(),
            placed: ingested.placed.clone(),
            entries: ingested.entries,
            size,
        });
        let mut entries = self.entries.lock().expect("known archives lock");
        entries.retain(|(k, _)| *k != key);
        entries.push_back((key, replay));
        while entries.len() > self.max_entries
            || entries.iter().map(|(_, r)| r.size).sum::<usize>() > self.max_bytes
        {
            entries.pop_front();
        }
    }

    fn get(&self, key: &Key) -> Option<Arc<Replay>> {
        let entries = self.entries.lock().expect("known archives lock");
        entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, r)| r.clone())
    }

    fn forget(&self, key: &Key) {
        let mut entries = self.entries.lock().expect("known archives lock");
        entries.retain(|(k, _)| k != key);
    }

    /// The replay for `key`, if this archive was pushed here before and every blob it placed
    /// is still where it was (a registry may have collected some since).
    pub async fn replayable(&self, key: &Key, registry: &Registry) -> Option<Ingested> {
        let replay = self.get(key)?;
        let checks = replay
            .placed
            .iter()
            .map(|(digest, placed)| registry.blob_exists(&placed.repo, digest));
        let all_there = join_all(checks)
            .await
            .into_iter()
            .all(|r| r.unwrap_or(false));
        if !all_there {
            tracing::info!(digest = %key.digest, "known archive's blobs are gone: pushing it in full");
            self.forget(key);
            return None;
        }
        // Where the first push left them, each blob now simply exists.
        let placed = replay.placed.iter().map(|(digest, p)| {
            let exists = Placed {
                repo: p.repo.clone(),
                outcome: Outcome::Exists,
            };
            (digest.clone(), exists)
        });
        Some(Ingested {
            archive: replay.archive.clone(),
            placed: placed.collect(),
            bytes_sent: 0,
            entries: replay.entries,
        })
    }
}

/// Reads the body to its end without unpacking it: the forwarder hashes it on the way.
pub(super) async fn drain(mut feed: mpsc::Receiver<Feed>) -> Result<(), ArchiveError> {
    loop {
        match feed.recv().await {
            Some(Feed::Chunk(_)) => {}
            Some(Feed::End) => return Ok(()),
            Some(Feed::Fail(e)) => return Err(e),
            None => return Err(ArchiveError::BodyIncomplete { received: 0 }),
        }
    }
}

/// The bytes of an archive's small files held in memory.
fn memory_size(archive: &ArchiveFiles) -> usize {
    let file = |f: &File| match f {
        File::Memory { bytes, .. } => bytes.len(),
        _ => 0,
    };
    let paths: usize = archive
        .files
        .keys()
        .chain(archive.links.keys())
        .map(String::len)
        .sum();
    archive.files.values().map(file).sum::<usize>() + paths
}
