//! Metrics and logs, in one place.
//!
//! - `series`: every metric name as a constant, described once, recorded through the
//!   `metrics` facade and rendered by `metrics-exporter-prometheus` at `GET /metrics`.
//! - `push`: what one push did (the per-push meter), ending in one summary log line and the
//!   push metrics, failed pushes included.
//! - `logs`: the subscriber, `text` or `json` (one flat object a line, span fields such as
//!   `request_id` merged in).
//!
//! The push handler reports through `metrics()` (`enter`, `leave`, `succeeded`, `failed`);
//! the HTTP layer opens a meter around each request, so those calls land in that request's
//! summary.

mod logs;
mod push;
mod series;

pub use logs::{init as init_logs, init_filtered as init_logs_filtered};
pub use push::{Meter, PushLine, SentMeter, blob_placed, scoped};
pub use series::{
    connection_closed, connection_limit_reached, connection_opened, install, registry_operation,
    registry_request, render, set_ready, upkeep,
};

/// The facade the push handler and its errors report to.
pub fn metrics() -> &'static Metrics {
    static METRICS: Metrics = Metrics;
    &METRICS
}

/// See `metrics()`.
pub struct Metrics;

impl Metrics {
    /// A push was admitted (it holds a slot) and runs.
    pub fn enter(&self) {
        push::admitted();
    }

    /// The push admitted by `enter` is over.
    pub fn leave(&self) {
        push::left();
    }

    /// The push succeeded with `report`.
    pub fn succeeded(&self, report: &crate::report::Report) {
        push::succeeded(report);
    }

    /// The request's client is this one (its name, never a credential).
    pub fn client(&self, name: &str) {
        push::client(name);
    }

    /// The push failed (or was refused) with this error code.
    pub fn failed(&self, code: &'static str) {
        push::failed(code);
    }
}
