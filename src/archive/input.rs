//! The one way bytes enter the pipeline, for HTTP bodies and the CLI's files alike: a
//! forwarder moves a byte stream into a bounded channel, counting bytes against the request
//! limit and timing out a client that goes quiet.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::sync::mpsc;

use super::ArchiveError;

/// Size of the chunks the stages pass along.
pub const CHUNK: usize = 256 << 10;

/// What the forwarder sends: chunks, then exactly one `End` or `Fail`.
pub enum Feed {
    Chunk(Bytes),
    End,
    Fail(ArchiveError),
}

/// Byte counters shared by the stages, for limits and the report.
#[derive(Default, Debug)]
pub struct Counters {
    pub received: AtomicU64,
    pub decompressed: AtomicU64,
}

impl Counters {
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }
}

/// The channel between the forwarder and the decode stage: a few chunks deep, so a slow
/// registry slows the client down instead of filling memory.
pub fn channel() -> (mpsc::Sender<Feed>, mpsc::Receiver<Feed>) {
    mpsc::channel(8)
}

/// How the forwarder bounds a body.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// limits.request_bytes.
    pub max_bytes: u64,
    /// client_idle_timeout: a client that sends nothing this long is dropped (slowloris).
    pub idle: Duration,
}

/// Moves `body` into the pipeline until it ends, fails, breaks a limit or the pipeline stops
/// taking bytes. Always ends the feed with `End` or `Fail` when the pipeline still listens.
pub async fn forward<S, E>(
    body: &mut S,
    tx: &mpsc::Sender<Feed>,
    counters: &Counters,
    limits: BodyLimits,
) where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    loop {
        let feed = match tokio::time::timeout(limits.idle, body.next()).await {
            Ok(Some(Ok(b))) => {
                let total = counters
                    .received
                    .fetch_add(b.len() as u64, Ordering::Relaxed)
                    + b.len() as u64;
                if total > limits.max_bytes {
                    Feed::Fail(ArchiveError::RequestTooLarge {
                        limit: limits.max_bytes,
                    })
                } else {
                    Feed::Chunk(b)
                }
            }
            Ok(Some(Err(_))) => Feed::Fail(ArchiveError::BodyIncomplete {
                received: counters.received(),
            }),
            Ok(None) => Feed::End,
            Err(_) => Feed::Fail(ArchiveError::BodyStalled {
                secs: limits.idle.as_secs(),
                received: counters.received(),
            }),
        };
        let last = !matches!(feed, Feed::Chunk(_));
        if tx.send(feed).await.is_err() || last {
            return;
        }
    }
}
