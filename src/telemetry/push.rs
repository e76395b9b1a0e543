//! What one push did: a meter the HTTP layer opens around each request (a task-local, so the
//! push code reports through `metrics()` without carrying it), filled in as the push runs,
//! and closed with one summary log line and the push metrics, failed and cancelled pushes
//! included.
//!
//! The pipeline runs in tasks of its own: they are spawned through `scoped`, which carries
//! the request's span (so its log lines have the `request_id`) and the meter along.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures_util::future::Either;
use tracing::Instrument;

use super::series;
use crate::report::{Outcome, Report};

tokio::task_local! {
    static CURRENT: Arc<Meter>;
}

/// See the module docs.
pub struct Meter {
    /// The request's span: the summary line is written in it, whenever that is.
    span: tracing::Span,
    started: Instant,
    received: AtomicU64,
    sent: AtomicU64,
    admitted: AtomicBool,
    left: AtomicBool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    result: Option<Finish>,
    /// Who the client is, once authenticated.
    client: Option<String>,
    /// Blobs placed so far (what a failed push got done before it failed).
    blobs: BTreeMap<&'static str, u64>,
    closed: Option<PushLine>,
}

enum Finish {
    Succeeded(Success),
    Failed(&'static str),
}

/// The parts of a report the summary line names.
struct Success {
    repositories: String,
    tags: String,
    digests: String,
    blobs: BTreeMap<&'static str, u64>,
    received: u64,
    sent: u64,
}

/// What the HTTP layer knows of a push once its answer is out (or its connection gone).
pub struct PushLine {
    /// The peer's address.
    pub peer: String,
    /// From the URL (`/push/{repository}:{tag}`), when it names one.
    pub repository: Option<String>,
    /// The URL's tag and `?tag=` parameters.
    pub tags: Vec<String>,
    pub status: u16,
    /// The connection went away (a client gone, the drain deadline) before the answer.
    pub cancelled: bool,
}

impl Meter {
    pub fn new(span: tracing::Span) -> Arc<Meter> {
        Arc::new(Meter {
            span,
            started: Instant::now(),
            received: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            admitted: AtomicBool::new(false),
            left: AtomicBool::new(false),
            state: Mutex::new(State::default()),
        })
    }

    /// Runs `fut` (the request's handler) with this meter as the current one.
    pub async fn scope<F: Future>(self: &Arc<Self>, fut: F) -> F::Output {
        CURRENT.scope(self.clone(), fut).await
    }

    /// Request body bytes, counted as they arrive (failed pushes too).
    pub fn received(&self, n: usize) {
        self.received.fetch_add(n as u64, Ordering::Relaxed);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The request is over for the client. The summary line and the push metrics follow
    /// when the last part of the push lets go of the meter: at once for an ordinary push; for
    /// a push that streams its progress, or whose client went away, when its pipeline has
    /// finished (and cancelled its sessions).
    pub fn close(&self, line: PushLine) {
        self.lock().closed = Some(line);
    }

    /// One summary line and the push metrics, if this request was a push (not a 404, a page,
    /// a probe).
    fn summarise(&mut self) {
        let state = std::mem::take(&mut *self.lock());
        let pushed = self.admitted.load(Ordering::Relaxed) || state.result.is_some();
        let Some(line) = state.closed.filter(|_| pushed) else {
            return;
        };
        let seconds = self.started.elapsed().as_secs_f64();
        let (outcome, code) = match &state.result {
            Some(Finish::Succeeded(_)) => ("success", None),
            Some(Finish::Failed(code)) => ("failure", Some(*code)),
            None if line.cancelled => ("cancelled", Some("CANCELLED")),
            None => ("failure", Some("INTERNAL")),
        };
        let (repository, tags, digest, blobs, received, sent) = match state.result {
            Some(Finish::Succeeded(s)) => (
                s.repositories,
                s.tags,
                Some(s.digests),
                s.blobs,
                s.received,
                s.sent,
            ),
            _ => (
                line.repository.unwrap_or_default(),
                line.tags.join(","),
                None,
                state.blobs,
                self.received.load(Ordering::Relaxed),
                self.sent.load(Ordering::Relaxed),
            ),
        };
        let status = if code == Some("CANCELLED") {
            499
        } else {
            line.status
        };
        let count = |k: &str| blobs.get(k).copied().unwrap_or(0);
        let _entered = self.span.enter();
        tracing::info!(
            client = state.client,
            peer = line.peer,
            repository,
            tags,
            digest,
            status,
            outcome,
            code,
            bytes_received = received,
            bytes_sent = sent,
            blobs_uploaded = count("uploaded"),
            blobs_exists = count("exists"),
            blobs_mounted = count("mounted"),
            blobs_foreign = count("foreign"),
            seconds,
            "push finished"
        );
        series::push(outcome, code, seconds, received, sent);
        for (k, n) in &blobs {
            series::blobs(k, *n);
        }
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        if self.admitted.load(Ordering::Relaxed) && !self.left.swap(true, Ordering::Relaxed) {
            series::in_flight(-1.0);
        }
        self.summarise();
    }
}

/// Bytes the registry pulled, counted into the push that opened the upload. Taken where the
/// upload starts: the body is polled by the HTTP client's own task, where no meter is current.
pub struct SentMeter(Option<Arc<Meter>>);

impl SentMeter {
    pub fn current() -> SentMeter {
        SentMeter(CURRENT.try_with(Arc::clone).ok())
    }

    pub fn add(&self, n: usize) {
        if let Some(m) = &self.0 {
            m.sent.fetch_add(n as u64, Ordering::Relaxed);
        }
    }
}

/// `fut` with the current span and meter, for a task the push spawns.
pub fn scoped<F: Future>(fut: F) -> impl Future<Output = F::Output> {
    let fut = fut.instrument(tracing::Span::current());
    match CURRENT.try_with(Arc::clone) {
        Ok(meter) => Either::Left(CURRENT.scope(meter, fut)),
        Err(_) => Either::Right(fut),
    }
}

/// A streamed blob found its place (`uploaded`, `exists`, `mounted`) during the archive pass.
pub fn blob_placed(outcome: &Outcome) {
    let _ = CURRENT.try_with(|m| *m.lock().blobs.entry(label(outcome)).or_default() += 1);
}

fn label(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Uploaded => "uploaded",
        Outcome::Exists => "exists",
        Outcome::Mounted => "mounted",
        Outcome::Foreign => "foreign",
    }
}

pub(super) fn client(name: &str) {
    let _ = CURRENT.try_with(|m| m.lock().client = Some(name.to_string()));
}

pub(super) fn admitted() {
    series::in_flight(1.0);
    let _ = CURRENT.try_with(|m| m.admitted.store(true, Ordering::Relaxed));
}

pub(super) fn left() {
    match CURRENT.try_with(|m| m.left.swap(true, Ordering::Relaxed)) {
        Ok(true) => {}
        _ => series::in_flight(-1.0),
    }
}

pub(super) fn succeeded(report: &Report) {
    if report.replayed {
        series::replayed();
    }
    let mut blobs = BTreeMap::new();
    for b in report.images.iter().flat_map(|i| &i.blobs) {
        *blobs.entry(label(&b.outcome)).or_default() += 1;
    }
    let join = |f: &dyn Fn(&crate::report::ImageReport) -> String| {
        let mut v: Vec<String> = report.images.iter().map(f).collect();
        v.dedup();
        v.join(",")
    };
    let success = Success {
        repositories: join(&|i| i.repository.clone()),
        tags: join(&|i| i.tags.join(",")),
        digests: join(&|i| i.digest.to_string()),
        blobs,
        received: report.bytes_received,
        sent: report.bytes_sent,
    };
    if CURRENT.try_with(|_| ()).is_err() {
        // No meter (no HTTP request around this push): record the metrics now.
        series::push(
            "success",
            None,
            report.seconds,
            report.bytes_received,
            report.bytes_sent,
        );
        for (k, n) in &success.blobs {
            series::blobs(k, *n);
        }
        return;
    }
    let _ = CURRENT.try_with(|m| m.lock().result = Some(Finish::Succeeded(success)));
}

pub(super) fn failed(code: &'static str) {
    let recorded = CURRENT.try_with(|m| {
        let mut state = m.lock();
        if state.result.is_none() {
            state.result = Some(Finish::Failed(code));
        }
    });
    if recorded.is_err() {
        series::push("failure", Some(code), 0.0, 0, 0);
    }
}
