//! Liveness and readiness. `/healthz` answers while the process serves at all. `/readyz`
//! answers from a cached probe of the registry (`GET /v2/` with hoist's credentials, every
//! `readiness_interval`, in the background, never on a push's path), and 503 from the moment
//! a drain starts, so a load balancer stops sending before hoist stops serving.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use crate::registry::Registry;

/// A probe that takes longer than this counts as a failure.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// The cached readiness of this replica.
pub struct Readiness {
    registry: Arc<Registry>,
    interval: Duration,
    draining: AtomicBool,
    last: Mutex<Option<Probe>>,
}

struct Probe {
    at: Instant,
    /// `Err` holds the reason, as the registry client words it.
    result: Result<(), String>,
}

impl Readiness {
    pub fn new(registry: Arc<Registry>, interval: Duration) -> Arc<Readiness> {
        Arc::new(Readiness {
            registry,
            interval,
            draining: AtomicBool::new(false),
            last: Mutex::new(None),
        })
    }

    /// Probes now and every `interval` after, until the task is dropped.
    pub async fn run(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.probe_once().await;
        }
    }

    /// One probe, its answer cached.
    pub async fn probe_once(&self) {
        let result = match tokio::time::timeout(PROBE_TIMEOUT, self.registry.probe()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!(
                "registry {} did not answer GET /v2/ within {} s",
                self.registry.host(),
                PROBE_TIMEOUT.as_secs()
            )),
        };
        if let Err(reason) = &result {
            tracing::warn!(registry = %self.registry.host(), reason, "not ready");
        }
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        let changed = last
            .as_ref()
            .is_none_or(|p| p.result.is_ok() != result.is_ok());
        if changed && result.is_ok() {
            tracing::info!(registry = %self.registry.host(), "ready");
        }
        *last = Some(Probe {
            at: Instant::now(),
            result,
        });
        drop(last);
        crate::telemetry::set_ready(self.ready().is_ok());
    }

    /// From now on /readyz answers 503.
    pub fn start_drain(&self) {
        self.draining.store(true, Ordering::Relaxed);
        crate::telemetry::set_ready(false);
    }

    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    /// Ready, or why not.
    fn ready(&self) -> Result<f64, String> {
        if self.draining() {
            return Err("draining: hoist is shutting down".into());
        }
        let last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        match last.as_ref() {
            None => Err(format!("registry {} not checked yet", self.registry.host())),
            Some(Probe { at, result: Ok(()) }) => Ok(at.elapsed().as_secs_f64()),
            Some(Probe {
                result: Err(reason),
                ..
            }) => Err(reason.clone()),
        }
    }
}

/// `GET /healthz`: the process is alive and serving.
pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: 200 `{"status":"ready",...}` or 503 `{"error":{"code":"NOT_READY",...}}`.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let ready = &state.ready;
    match ready.ready() {
        Ok(age) => Json(json!({
            "status": "ready",
            "registry": ready.registry.host(),
            "checked_seconds_ago": (age * 10.0).round() / 10.0,
        }))
        .into_response(),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": {"code": "NOT_READY", "message": reason}})),
        )
            .into_response(),
    }
}

/// `GET /metrics`: the Prometheus text exposition.
pub async fn metrics() -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::telemetry::render(),
    )
        .into_response()
}
