//! The one way bytes enter the pipeline, for HTTP bodies and the CLI's files alike: a
//! forwarder moves a byte stream into a bounded channel, counting bytes against the request
//! limit and timing out a client that goes quiet.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use tokio::sync::mpsc;

use super::ArchiveError;
use crate::oci::digest::{Digest, Sha256};

/// Size of the chunks the stages pass along.
pub const CHUNK: usize = 256 << 10;

/// What the forwarder sends: chunks, then exactly one `End` or `Fail`.
pub enum Feed {
    Chunk(Bytes),
    End,
    Fail(ArchiveError),
}

/// Byte counters shared by the stages, for limits and the report; and, where the client named
/// the archive's digest, the sha256 of the body as received.
#[derive(Default)]
pub struct Counters {
    pub received: AtomicU64,
    pub decompressed: AtomicU64,
    body_hash: Option<Mutex<Sha256>>,
}

impl Counters {
    /// Counters that also hash the body.
    pub fn hashing() -> Counters {
        Counters {
            body_hash: Some(Mutex::default()),
            ..Counters::default()
        }
    }

    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// The sha256 of the body, once the forwarder has moved all of it (its `End`); `None`
    /// where the counters do not hash.
    pub fn body_digest(&self) -> Option<Digest> {
        let hash = self.body_hash.as_ref()?.lock().expect("body hash lock");
        Some(hash.clone().finish())
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
    /// limits.min_body_rate, bytes per second; 0: no minimum.
    pub min_rate: u64,
}

/// The window the body rate is averaged over.
const RATE_WINDOW: Duration = Duration::from_secs(30);

/// The client's sending rate, measured only over the time hoist waits for it: while hoist
/// waits on the registry (backpressure) the client cannot send, and that is not its fault.
struct Rate {
    min: u64,
    waited: Duration,
    bytes: u64,
}

impl Rate {
    /// Counts one wait and what it brought; the error once a full window was too slow.
    fn record(&mut self, waited: Duration, bytes: u64) -> Result<(), ArchiveError> {
        if self.min == 0 {
            return Ok(());
        }
        self.waited += waited;
        self.bytes += bytes;
        if self.waited < RATE_WINDOW {
            return Ok(());
        }
        let secs = self.waited.as_secs().max(1);
        let (sent, waited) = (self.bytes, self.waited);
        (self.waited, self.bytes) = (Duration::ZERO, 0);
        if (sent as f64) < self.min as f64 * waited.as_secs_f64() {
            return Err(ArchiveError::BodyTooSlow {
                bytes: sent,
                secs,
                rate: self.min,
            });
        }
        Ok(())
    }
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
    let mut rate = Rate {
        min: limits.min_rate,
        waited: Duration::ZERO,
        bytes: 0,
    };
    loop {
        let asked = Instant::now();
        let next = tokio::time::timeout(limits.idle, body.next()).await;
        let feed = match next {
            Ok(Some(Ok(b))) => match check(&b, counters, &limits, &mut rate, asked.elapsed()) {
                Ok(()) => Feed::Chunk(b),
                Err(e) => Feed::Fail(e),
            },
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

/// Counts a chunk against the size limit and the minimum rate.
fn check(
    b: &Bytes,
    counters: &Counters,
    limits: &BodyLimits,
    rate: &mut Rate,
    waited: Duration,
) -> Result<(), ArchiveError> {
    let n = b.len() as u64;
    if let Some(hash) = &counters.body_hash {
        hash.lock().expect("body hash lock").update(b);
    }
    let total = counters.received.fetch_add(n, Ordering::Relaxed) + n;
    if total > limits.max_bytes {
        return Err(ArchiveError::RequestTooLarge {
            limit: limits.max_bytes,
        });
    }
    rate.record(waited, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_counts_only_full_windows_of_waiting() {
        let mut r = Rate {
            min: 1000,
            waited: Duration::ZERO,
            bytes: 0,
        };
        assert!(r.record(Duration::from_secs(29), 10).is_ok());
        assert!(matches!(
            r.record(Duration::from_secs(2), 10),
            Err(ArchiveError::BodyTooSlow { bytes: 20, .. })
        ));
        assert!(r.record(Duration::from_secs(31), 31_000).is_ok());
        let mut off = Rate {
            min: 0,
            waited: Duration::ZERO,
            bytes: 0,
        };
        assert!(off.record(Duration::from_secs(600), 0).is_ok());
    }
}
