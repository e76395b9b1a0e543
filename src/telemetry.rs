//! Counters an operator scrapes at `GET /metrics` (Prometheus text format). Names are
//! constants here, in one place; every rejection is counted by its error code.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};

pub const PUSHES: &str = "hoist_pushes_total";
pub const REJECTIONS: &str = "hoist_push_errors_total";
pub const IN_FLIGHT: &str = "hoist_pushes_in_flight";
pub const BYTES_RECEIVED: &str = "hoist_bytes_received_total";
pub const BYTES_SENT: &str = "hoist_bytes_sent_total";
pub const BLOBS: &str = "hoist_blobs_total";

/// The process's counters.
pub fn metrics() -> &'static Metrics {
    static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::default);
    &METRICS
}

/// Process-wide counters.
#[derive(Default)]
pub struct Metrics {
    pushes: AtomicU64,
    in_flight: AtomicU64,
    bytes_received: AtomicU64,
    bytes_sent: AtomicU64,
    errors: Mutex<BTreeMap<&'static str, u64>>,
    blobs: Mutex<BTreeMap<&'static str, u64>>,
}

impl Metrics {
    pub fn enter(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    pub fn leave(&self) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn succeeded(&self, report: &crate::report::Report) {
        self.pushes.fetch_add(1, Ordering::Relaxed);
        self.bytes_received
            .fetch_add(report.bytes_received, Ordering::Relaxed);
        self.bytes_sent
            .fetch_add(report.bytes_sent, Ordering::Relaxed);
        let mut blobs = self.blobs.lock().expect("metrics lock");
        for b in report.images.iter().flat_map(|i| &i.blobs) {
            let key = match b.outcome {
                crate::report::Outcome::Uploaded => "uploaded",
                crate::report::Outcome::Exists => "exists",
                crate::report::Outcome::Mounted => "mounted",
                crate::report::Outcome::Foreign => "foreign",
            };
            *blobs.entry(key).or_default() += 1;
        }
    }

    pub fn failed(&self, code: &'static str) {
        *self
            .errors
            .lock()
            .expect("metrics lock")
            .entry(code)
            .or_default() += 1;
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let c = |s: &mut String, name: &str, help: &str, kind: &str, v: u64| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        };
        c(
            &mut s,
            PUSHES,
            "Pushes that succeeded.",
            "counter",
            self.pushes.load(Ordering::Relaxed),
        );
        c(
            &mut s,
            IN_FLIGHT,
            "Pushes in progress.",
            "gauge",
            self.in_flight.load(Ordering::Relaxed),
        );
        c(
            &mut s,
            BYTES_RECEIVED,
            "Request bytes of successful pushes.",
            "counter",
            self.bytes_received.load(Ordering::Relaxed),
        );
        c(
            &mut s,
            BYTES_SENT,
            "Bytes sent to the registry by successful pushes.",
            "counter",
            self.bytes_sent.load(Ordering::Relaxed),
        );
        let _ = writeln!(
            s,
            "# HELP {REJECTIONS} Failed pushes by error code.\n# TYPE {REJECTIONS} counter"
        );
        for (code, n) in self.errors.lock().expect("metrics lock").iter() {
            let _ = writeln!(s, "{REJECTIONS}{{code=\"{code}\"}} {n}");
        }
        let _ = writeln!(
            s,
            "# HELP {BLOBS} Blobs of successful pushes by outcome.\n# TYPE {BLOBS} counter"
        );
        for (outcome, n) in self.blobs.lock().expect("metrics lock").iter() {
            let _ = writeln!(s, "{BLOBS}{{outcome=\"{outcome}\"}} {n}");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_by_code() {
        let m = Metrics::default();
        m.enter();
        m.failed("DIGEST_MISMATCH");
        m.leave();
        m.failed("BUSY");
        let text = m.render();
        assert!(
            text.contains("hoist_push_errors_total{code=\"DIGEST_MISMATCH\"} 1"),
            "{text}"
        );
        assert!(text.contains("hoist_push_errors_total{code=\"BUSY\"} 1"));
        assert!(text.contains("hoist_pushes_in_flight 0"));
    }
}
