//! The state the proxy's connections share: the rules and the log behind one lock, and the
//! context every connection reads (the registry's URL, the proxy's own, the upstream client).
//! Each request is matched against the rules and logged here, then updated as it is served.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::http::Head;
use super::log::Seen;
use super::rules::{Fault, Rule};

/// The rules in force and the requests seen since they were set.
#[derive(Default)]
pub(super) struct ProxyState {
    pub(super) rules: Vec<Rule>,
    pub(super) log: Vec<Seen>,
}

/// What every connection reads: the shared state, the registry's base URL, the proxy's own,
/// and the client requests are forwarded with.
pub(super) struct Ctx {
    pub(super) state: Arc<Mutex<ProxyState>>,
    pub(super) upstream: String,
    pub(super) base: String,
    pub(super) client: reqwest::Client,
}

impl Ctx {
    /// Matches a request against the rules (counting it for each it matches), logs it, and
    /// returns its place in the log and the fault of the first rule whose turn it is.
    pub(super) fn decide(&self, head: &Head) -> (usize, Option<Fault>) {
        let mut st = self.state.lock().unwrap();
        let mut fault = None;
        for r in st.rules.iter_mut() {
            if r.method == head.method && head.target.contains(r.path) {
                r.matched += 1;
                if fault.is_none() && r.matched > r.skip && r.matched - r.skip <= r.count {
                    fault = Some(r.fault.clone());
                }
            }
        }
        st.log.push(Seen {
            method: head.method.clone(),
            target: head.target.clone(),
            headers: head.headers.clone(),
            fault: fault.as_ref().map(Fault::name),
            status: None,
            body_bytes: 0,
            at: Instant::now(),
        });
        (st.log.len() - 1, fault)
    }

    /// Records the body bytes read of a request. A request in flight when `set_rules` cleared
    /// the log (hoist's readiness probe, say) has no entry left to update.
    pub(super) fn read(&self, idx: usize, bytes: u64) {
        if let Some(seen) = self.state.lock().unwrap().log.get_mut(idx) {
            seen.body_bytes = bytes;
        }
    }

    /// Records the status a request was answered with.
    pub(super) fn answered(&self, idx: usize, status: u16) {
        if let Some(seen) = self.state.lock().unwrap().log.get_mut(idx) {
            seen.status = Some(status);
        }
    }
}
