//! A fault-injecting HTTP/1.1 proxy on a loopback port, between hoist and a real registry.
//!
//! It forwards requests to the registry and rewrites `Location` back to itself. Bodies are
//! streamed both ways a chunk at a time, never gathered first, so a registry that reads slowly
//! or stops reading holds hoist back exactly as a real one would (backpressure). Chosen
//! requests (by method, target substring and occurrence) get a [`Fault`] instead. Every request
//! is recorded ([`Seen`]): method, target, headers, body bytes read, fault and status.
//!
//! - `rules`: the fault model, [`Fault`] and the [`Rule`] that picks requests for it.
//! - `log`: [`Seen`], one request as the proxy saw it.
//! - `state`: the rules and the log the connections share, and their context.
//! - `http`: HTTP/1.1 heads, streamed bodies and responses.
//! - `forward`: a request passed on to the registry, its body streamed.
//! - `conn`: one connection served, request by request, fault by fault.
//! - [`Proxy`] (here): the listener on its own runtime, started, read and stopped by a test.

mod conn;
mod forward;
mod http;
mod log;
mod rules;
mod state;

pub use log::Seen;
pub use rules::{Fault, Rule};

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;

use conn::serve_conn;
use state::{Ctx, ProxyState};

/// The proxy; stops on drop.
pub struct Proxy {
    port: u16,
    state: Arc<Mutex<ProxyState>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    /// Starts the proxy in front of `upstream` (the registry's base URL).
    pub fn start(upstream: &str) -> Result<Proxy> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let state = Arc::new(Mutex::new(ProxyState::default()));
        let (stop_tx, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
        let ctx = Arc::new(Ctx {
            state: state.clone(),
            upstream: upstream.trim_end_matches('/').to_string(),
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .build()?,
        });
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("proxy runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                loop {
                    tokio::select! {
                        _ = &mut stop_rx => break,
                        acc = listener.accept() => {
                            if let Ok((sock, _)) = acc {
                                tokio::spawn(serve_conn(sock, ctx.clone()));
                            }
                        }
                    }
                }
            });
            rt.shutdown_timeout(Duration::from_millis(200));
        });
        Ok(Proxy {
            port,
            state,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Replaces the rules and clears the log.
    pub fn set_rules(&self, rules: Vec<Rule>) {
        let mut st = self.state.lock().unwrap();
        st.rules = rules;
        st.log.clear();
    }

    /// Every request seen since the rules were last set.
    pub fn log(&self) -> Vec<Seen> {
        self.state.lock().unwrap().log.clone()
    }

    /// The log as readable lines, for failure messages.
    pub fn describe(&self) -> String {
        let seen = self.log();
        let t0 = seen.first().map(|s| s.at).unwrap_or_else(Instant::now);
        seen.iter()
            .map(|s| {
                format!(
                    "+{}ms {} {} [{} B] -> {:?} {:?}",
                    (s.at - t0).as_millis(),
                    s.method,
                    s.target,
                    s.body_bytes,
                    s.status,
                    s.fault
                )
            })
            .collect::<Vec<_>>()
            .join("\n  ")
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
