//! The metric series: names as constants, each described once, Prometheus naming (`_total`
//! counters, `_seconds` and `_bytes` units). Every label has a bounded set of values: error
//! codes, outcomes, operation kinds, status codes; never a repository, tag or client.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const PUSHES: &str = "hoist_pushes_total";
pub const PUSH_ERRORS: &str = "hoist_push_errors_total";
pub const IN_FLIGHT: &str = "hoist_pushes_in_flight";
pub const PUSH_SECONDS: &str = "hoist_push_duration_seconds";
pub const ARCHIVE_BYTES: &str = "hoist_archive_bytes";
pub const BYTES_RECEIVED: &str = "hoist_bytes_received_total";
pub const BYTES_SENT: &str = "hoist_bytes_sent_total";
pub const BLOBS: &str = "hoist_blobs_total";
pub const REPLAYED: &str = "hoist_pushes_replayed_total";
pub const REGISTRY_SECONDS: &str = "hoist_registry_request_duration_seconds";
pub const READY: &str = "hoist_ready";
pub const CONNECTIONS: &str = "hoist_http_connections";
pub const CONNECTION_LIMIT: &str = "hoist_http_connection_limit_reached_total";
pub const BUILD_INFO: &str = "hoist_build_info";

const SECONDS: &[f64] = &[
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0,
];
const REGISTRY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];
/// 1 MiB to 64 GiB (`limits.request_bytes`), ×4 a step.
const SIZE_BUCKETS: &[f64] = &[
    1048576.0,
    4194304.0,
    16777216.0,
    67108864.0,
    268435456.0,
    1073741824.0,
    4294967296.0,
    17179869184.0,
    68719476736.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder (once per process) and describes every series. Before
/// this, and in the `push` command, metric calls are no-ops.
pub fn install() {
    HANDLE.get_or_init(|| {
        let built = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(PUSH_SECONDS.into()), SECONDS)
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Full(REGISTRY_SECONDS.into()), REGISTRY_BUCKETS)
            })
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Full(ARCHIVE_BYTES.into()), SIZE_BUCKETS)
            })
            .and_then(|b| b.install_recorder());
        match built {
            Ok(handle) => {
                describe();
                gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
                gauge!(IN_FLIGHT).set(0.0);
                Some(handle)
            }
            Err(e) => {
                tracing::warn!(error = %e, "metrics recorder not installed; /metrics stays empty");
                None
            }
        }
    });
}

fn describe() {
    describe_counter!(
        PUSHES,
        "Pushes finished, by outcome (success, failure, cancelled)."
    );
    describe_counter!(PUSH_ERRORS, "Pushes failed or refused, by error code.");
    describe_gauge!(IN_FLIGHT, "Pushes admitted and running.");
    describe_histogram!(PUSH_SECONDS, Unit::Seconds, "Push duration, by outcome.");
    describe_histogram!(
        ARCHIVE_BYTES,
        Unit::Bytes,
        "Request bytes received per push."
    );
    describe_counter!(
        BYTES_RECEIVED,
        Unit::Bytes,
        "Request bytes received, every push."
    );
    describe_counter!(
        BYTES_SENT,
        Unit::Bytes,
        "Bytes sent to the registry, every push."
    );
    describe_counter!(
        REPLAYED,
        "Pushes of an archive known by its digest, replayed (hashed, not unpacked)."
    );
    describe_counter!(
        BLOBS,
        "Blobs placed, by outcome (uploaded, exists, mounted, foreign)."
    );
    describe_histogram!(
        REGISTRY_SECONDS,
        Unit::Seconds,
        "Registry request duration until the answer's head, by operation and status."
    );
    describe_gauge!(READY, "1 when /readyz answers 200.");
    describe_gauge!(CONNECTIONS, "Open client connections, by listener.");
    describe_counter!(CONNECTION_LIMIT, "Times max_connections was reached.");
    describe_gauge!(BUILD_INFO, "Always 1; the version is a label.");
}

/// The Prometheus text exposition (histograms drained first).
pub fn render() -> String {
    match HANDLE.get() {
        Some(Some(h)) => {
            h.run_upkeep();
            h.render()
        }
        _ => String::new(),
    }
}

/// Drains histogram samples every few seconds so memory stays flat between scrapes.
pub async fn upkeep() {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tick.tick().await;
        if let Some(Some(h)) = HANDLE.get() {
            h.run_upkeep();
        }
    }
}

/// Records one finished push.
pub(super) fn push(
    outcome: &'static str,
    code: Option<&'static str>,
    seconds: f64,
    received: u64,
    sent: u64,
) {
    counter!(PUSHES, "outcome" => outcome).increment(1);
    if let Some(code) = code {
        counter!(PUSH_ERRORS, "code" => code).increment(1);
    }
    histogram!(PUSH_SECONDS, "outcome" => outcome).record(seconds);
    histogram!(ARCHIVE_BYTES).record(received as f64);
    counter!(BYTES_RECEIVED).increment(received);
    counter!(BYTES_SENT).increment(sent);
}

pub(super) fn blobs(outcome: &'static str, n: u64) {
    counter!(BLOBS, "outcome" => outcome).increment(n);
}

pub(super) fn replayed() {
    counter!(REPLAYED).increment(1);
}

pub(super) fn in_flight(delta: f64) {
    gauge!(IN_FLIGHT).increment(delta);
}

/// One registry request: `op` as the client names it (`HEAD blob sha256:… in team/app`),
/// reduced to its kind; `status` the HTTP status, `timeout` or `error`.
pub fn registry_request(op: &str, status: &str, elapsed: Duration) {
    histogram!(REGISTRY_SECONDS, "operation" => registry_operation(op), "status" => status.to_string())
        .record(elapsed.as_secs_f64());
}

/// The kind of a registry operation, from the text the client names it by. A bounded set.
pub fn registry_operation(op: &str) -> &'static str {
    const KINDS: &[(&str, &str)] = &[
        ("HEAD blob", "blob_head"),
        ("POST blob upload", "upload_start"),
        ("mount ", "blob_mount"),
        ("PATCH chunk", "upload_chunk"),
        ("PATCH blob upload", "upload_patch"),
        ("PUT blob", "upload_commit"),
        ("PUT manifest", "manifest_put"),
        ("HEAD manifest", "manifest_head"),
        ("token request", "token"),
        ("GET /v2/", "ping"),
    ];
    KINDS
        .iter()
        .find(|(prefix, _)| op.starts_with(prefix))
        .map_or("other", |(_, kind)| kind)
}

pub fn set_ready(ready: bool) {
    gauge!(READY).set(if ready { 1.0 } else { 0.0 });
}

pub fn connection_opened(listener: &'static str) {
    gauge!(CONNECTIONS, "listener" => listener).increment(1.0);
}

pub fn connection_closed(listener: &'static str) {
    gauge!(CONNECTIONS, "listener" => listener).decrement(1.0);
}

pub fn connection_limit_reached(listener: &'static str) {
    counter!(CONNECTION_LIMIT, "listener" => listener).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_are_a_bounded_set() {
        assert_eq!(
            registry_operation("HEAD blob sha256:ab in team/app"),
            "blob_head"
        );
        assert_eq!(
            registry_operation("mount sha256:ab from a into b"),
            "blob_mount"
        );
        assert_eq!(
            registry_operation("PATCH blob upload in team/app"),
            "upload_patch"
        );
        assert_eq!(
            registry_operation("PUT blob sha256:ab in x"),
            "upload_commit"
        );
        assert_eq!(registry_operation("token request to https://a/t"), "token");
        assert_eq!(registry_operation("something new"), "other");
    }
}
