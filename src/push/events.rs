//! What a push tells as it goes, for callers that follow it live: NDJSON over HTTP (one
//! object per line), the CLI's progress. Lossless and bounded by construction: progress at
//! most once a second, one `blob` per streamed entry, one `image` per image, then `done` or
//! `error`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;

use crate::oci::Digest;
use crate::report::{Outcome, Report};

/// One event, serialised with its name in `"event"`.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "lowercase")]
pub enum Event {
    /// Bytes received from the client and sent to the registry so far.
    Progress {
        bytes_received: u64,
        bytes_sent: u64,
    },
    /// A streamed entry is done: where its blob is now.
    Blob {
        entry: String,
        digest: Digest,
        size: u64,
        outcome: Outcome,
    },
    /// An image is published (its tags come last, with `done`).
    Image {
        repository: String,
        tags: Vec<String>,
        digest: Digest,
    },
    /// The push succeeded: the same report a 201 carries.
    Done { report: Report },
    /// The push failed: the same body a failure carries.
    Error { error: serde_json::Value },
}

/// Where a push's events go; `none()` when nobody follows.
#[derive(Debug, Clone, Default)]
pub struct Events(Option<mpsc::UnboundedSender<Event>>);

impl Events {
    pub fn none() -> Events {
        Events(None)
    }

    /// A sink, and the receiving end to read events from.
    pub fn channel() -> (Events, mpsc::UnboundedReceiver<Event>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Events(Some(tx)), rx)
    }

    pub fn emit(&self, event: Event) {
        if let Some(tx) = &self.0 {
            let _ = tx.send(event);
        }
    }

    pub fn active(&self) -> bool {
        self.0.as_ref().is_some_and(|tx| !tx.is_closed())
    }

    /// Emits `progress` every second while bytes move, until the returned task is aborted.
    pub(super) fn ticker(
        &self,
        received: impl Fn() -> u64 + Send + 'static,
        sent: Arc<AtomicU64>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        if !self.active() {
            return None;
        }
        let events = self.clone();
        Some(tokio::spawn(async move {
            let mut last = (u64::MAX, u64::MAX);
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let now = (received(), sent.load(Ordering::Relaxed));
                if now != last {
                    last = now;
                    events.emit(Event::Progress {
                        bytes_received: now.0,
                        bytes_sent: now.1,
                    });
                }
            }
        }))
    }
}
