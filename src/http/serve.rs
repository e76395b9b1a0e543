//! The server loop, on hyper directly (axum 0.8's `serve` sets no header-read timeout and
//! no connection limit):
//!
//! - **Request heads are timed.** A connection must deliver a request head within
//!   `header_read_timeout` of being accepted (whatever the protocol, HTTP/2 prior knowledge
//!   included), and every later head on a keep-alive connection within the same time of the
//!   previous answer (hyper's own timer). Slowloris clients and idle connections are closed.
//! - **Connections are limited.** At most `max_connections` open on a listener; past that,
//!   new connections are not accepted but wait in the kernel's accept queue until one closes
//!   (clients see a slow connect, never a reset). The admin listener has its own small limit,
//!   so probes and scrapes get through when the public port is full.
//! - **Drain.** On shutdown: readiness goes 503 (the caller's `on_drain`), connections with a
//!   request in flight finish it and close, idle ones close now; new connections are still
//!   accepted (a load balancer's last requests, the probes seeing 503) and served one request
//!   each. Once no connection is open, or at `drain_timeout`, accepting stops; at the deadline
//!   the connections left are dropped, which cancels their pushes (the pipeline sees its body
//!   end: sessions cancelled, nothing tagged).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

/// One listening socket and what it serves.
pub struct Listener {
    pub tcp: TcpListener,
    pub app: Router,
    /// `public` or `admin`, for logs and metrics.
    pub name: &'static str,
    pub max_connections: usize,
}

/// Timeouts of the loop.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub header_read_timeout: Duration,
    pub drain_timeout: Duration,
}

/// Shared by the accept loops and every connection.
#[derive(Clone)]
struct Control {
    options: Options,
    /// The drain started.
    draining: CancellationToken,
    /// The drain deadline passed: drop every connection.
    kill: CancellationToken,
    /// Accepting stops.
    stop: CancellationToken,
    connections: TaskTracker,
}

/// Serves `listeners` until `shutdown`, then drains (see the module docs).
pub async fn serve(
    listeners: Vec<Listener>,
    options: Options,
    shutdown: impl std::future::Future<Output = ()>,
    on_drain: impl FnOnce(),
) {
    let control = Control {
        options,
        draining: CancellationToken::new(),
        kill: CancellationToken::new(),
        stop: CancellationToken::new(),
        connections: TaskTracker::new(),
    };
    let accepting: Vec<_> = listeners
        .into_iter()
        .map(|l| tokio::spawn(accept_loop(l, control.clone())))
        .collect();
    shutdown.await;
    on_drain();
    tracing::info!(
        drain_timeout_secs = options.drain_timeout.as_secs_f64(),
        connections = control.connections.len(),
        "shutting down: draining"
    );
    control.draining.cancel();
    let deadline = Instant::now() + options.drain_timeout;
    let mut drained = until(deadline, || control.connections.is_empty()).await;
    control.stop.cancel();
    for a in accepting {
        let _ = a.await;
    }
    drained = drained || until(deadline, || control.connections.is_empty()).await;
    if !drained {
        tracing::warn!(
            connections = control.connections.len(),
            "drain deadline passed: cancelling what is still in flight"
        );
        control.kill.cancel();
    }
    control.connections.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), control.connections.wait()).await;
}

/// Waits until `done()` or the deadline; whether it was done.
async fn until(deadline: Instant, done: impl Fn() -> bool) -> bool {
    while !done() {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}

/// Accepts while a connection slot is free, until told to stop.
async fn accept_loop(listener: Listener, control: Control) {
    let slots = Arc::new(Semaphore::new(listener.max_connections));
    let mut full = false;
    loop {
        if slots.available_permits() == 0 && !full {
            tracing::warn!(
                listener = listener.name,
                max_connections = listener.max_connections,
                "connection limit reached: new connections wait until one closes"
            );
            crate::telemetry::connection_limit_reached(listener.name);
        }
        full = slots.available_permits() == 0;
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            () = control.stop.cancelled() => return,
        };
        let (stream, peer) = tokio::select! {
            r = listener.tcp.accept() => match r {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little, do not spin.
                    tracing::warn!(listener = listener.name, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = control.stop.cancelled() => return,
        };
        let (app, name, ctl) = (listener.app.clone(), listener.name, control.clone());
        control.connections.spawn(async move {
            crate::telemetry::connection_opened(name);
            connection(stream, peer, app, ctl).await;
            crate::telemetry::connection_closed(name);
            drop(permit);
        });
    }
}

/// Serves one connection; see the module docs for its deadlines.
async fn connection(stream: TcpStream, peer: SocketAddr, app: Router, control: Control) {
    let options = control.options;
    let late = control.draining.is_cancelled();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout)
        // Accepted during the drain: one request, then close.
        .keep_alive(!late);
    builder.http2().timer(TokioTimer::new());
    let seen = Arc::new(AtomicBool::new(false));
    let marked = seen.clone();
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        marked.store(true, Ordering::Relaxed);
        req.extensions_mut().insert(ConnectInfo(peer));
        let app = app.clone();
        async move { Ok::<_, Infallible>(app.oneshot(req).await.unwrap_or_else(|e| match e {})) }
    });
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let first_head = tokio::time::sleep(options.header_read_timeout);
    tokio::pin!(first_head);
    let (mut head_pending, mut graceful) = (true, late);
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection closed with an error");
                }
                return;
            }
            () = control.kill.cancelled() => return,
            () = control.draining.cancelled(), if !graceful => {
                graceful = true;
                conn.as_mut().graceful_shutdown();
            }
            () = &mut first_head, if head_pending => {
                head_pending = false;
                if !seen.load(Ordering::Relaxed) {
                    tracing::debug!(%peer, "no request head within header_read_timeout: closing");
                    return;
                }
            }
        }
    }
}
