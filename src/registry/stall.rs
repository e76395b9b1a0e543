//! Telling a stalled registry from a slow client during a streamed upload: the registry is
//! stalled when hoist has output waiting and nobody pulled any for `idle`, or when every byte
//! was handed over and no answer came for 3 × `idle`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::RegistryError;

/// How one upload is moving. The producer marks when it waits to hand bytes over; the body
/// marks each pull and the end.
pub struct Progress {
    start: Instant,
    last_pull_ms: AtomicU64,
    waiting: AtomicBool,
    finished: AtomicBool,
    /// Bytes pulled, added to a count shared by a whole push (for progress reports).
    total: Option<Arc<AtomicU64>>,
}

impl Default for Progress {
    fn default() -> Self {
        Progress {
            start: Instant::now(),
            last_pull_ms: AtomicU64::new(0),
            waiting: AtomicBool::new(false),
            finished: AtomicBool::new(false),
            total: None,
        }
    }
}

impl Progress {
    /// Also counts the bytes pulled into `total`.
    pub fn counting(total: Arc<AtomicU64>) -> Progress {
        Progress {
            total: Some(total),
            ..Progress::default()
        }
    }

    /// The registry took `bytes`.
    pub fn took(&self, bytes: u64) {
        if let Some(total) = &self.total {
            total.fetch_add(bytes, Ordering::Relaxed);
        }
        self.pulled();
    }

    fn now_ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// The registry took bytes.
    pub fn pulled(&self) {
        self.last_pull_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    /// The producer has bytes ready and is blocked handing them over (or no longer is).
    pub fn set_waiting(&self, waiting: bool) {
        if waiting {
            // The wait starts now, not at the last pull.
            self.last_pull_ms
                .fetch_max(self.now_ms(), Ordering::Relaxed);
        }
        self.waiting.store(waiting, Ordering::Relaxed);
    }

    /// Every byte was handed over; the registry owes an answer.
    pub fn set_finished(&self) {
        self.pulled();
        self.finished.store(true, Ordering::Relaxed);
    }

    /// Stalled: bytes waiting and none taken for `idle`; or all handed over and no answer for
    /// 3 × `idle` (the last bytes may still sit in kernel buffers a slow registry drains).
    pub fn stalled(&self, idle: Duration) -> bool {
        let quiet = self
            .now_ms()
            .saturating_sub(self.last_pull_ms.load(Ordering::Relaxed));
        let idle = idle.as_millis() as u64;
        (self.waiting.load(Ordering::Relaxed) && quiet > idle)
            || (self.finished.load(Ordering::Relaxed) && quiet > 3 * idle)
    }
}

/// Runs `transfer`, giving up with `Timeout` once `progress` says it stalled.
pub async fn watch<T, F>(
    transfer: F,
    progress: &Progress,
    idle: Duration,
    op: &str,
) -> Result<T, RegistryError>
where
    F: std::future::Future<Output = Result<T, RegistryError>>,
{
    tokio::pin!(transfer);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            r = &mut transfer => return r,
            _ = tick.tick() => {
                if progress.stalled(idle) {
                    return Err(RegistryError::Timeout {
                        op: op.to_string(),
                        secs: idle.as_secs(),
                    });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_without_pulls_is_a_stall() {
        let p = Progress::default();
        assert!(!p.stalled(Duration::ZERO));
        p.set_waiting(true);
        std::thread::sleep(Duration::from_millis(5));
        assert!(p.stalled(Duration::from_millis(1)));
        assert!(!p.stalled(Duration::from_secs(60)));
        p.set_waiting(false);
        p.pulled();
        assert!(!p.stalled(Duration::from_millis(1)));
    }
}
