//! The fault model: a [`Fault`] is what the proxy does to a request instead of forwarding it
//! as is, a [`Rule`] picks the requests that get it (method, target substring, occurrences).

use std::time::Duration;

/// What the proxy does instead of forwarding.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Read the whole request, then answer this.
    Reply {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// Read `after` bytes of the body, answer `status` with a registry error envelope, close.
    ReplyMidBody { after: usize, status: u16 },
    /// Read `after` bytes of the body, then answer `202 Accepted` with the request's own
    /// upload URL as `Location`, as if the whole body had arrived.
    AcceptMidBody { after: usize },
    /// Read `after` bytes of the body, then close the socket without answering.
    DropMidBody { after: usize },
    /// Read the request and never answer.
    Stall,
    /// Read `after` bytes of the body, then stop reading (and never answer): a registry that
    /// stops taking bytes in the middle of a body.
    StallMidBody { after: usize },
    /// Forward, then point the answer's Location at this base instead.
    ForeignLocation(String),
    /// Forward, reading the body `chunk` bytes at a time with `pause` between reads.
    Throttle { chunk: usize, pause: Duration },
}

impl Fault {
    /// An answer with a registry error envelope `{"errors":[{code,message,detail}]}`.
    pub fn error(status: u16, code: &str, extra: &[(&str, &str)]) -> Fault {
        let mut headers = vec![("Content-Type".to_string(), "application/json".to_string())];
        headers.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Fault::Reply {
            status,
            headers,
            body: format!(
                r#"{{"errors":[{{"code":"{code}","message":"injected {code}","detail":"injected by the fault proxy"}}]}}"#
            ),
        }
    }

    /// `503` with `Retry-After: 1`.
    pub fn unavailable() -> Fault {
        Fault::error(503, "UNAVAILABLE", &[("Retry-After", "1")])
    }

    pub fn name(&self) -> &'static str {
        match self {
            Fault::Reply { .. } => "reply",
            Fault::ReplyMidBody { .. } => "reply-mid-body",
            Fault::AcceptMidBody { .. } => "accept-mid-body",
            Fault::DropMidBody { .. } => "drop-mid-body",
            Fault::Stall => "stall",
            Fault::StallMidBody { .. } => "stall-mid-body",
            Fault::ForeignLocation(_) => "foreign-location",
            Fault::Throttle { .. } => "throttle",
        }
    }
}

/// Which requests get a fault: `method` and a substring of the target (path and query);
/// occurrences `skip+1 ..= skip+count`.
pub struct Rule {
    pub(super) method: &'static str,
    pub(super) path: &'static str,
    pub(super) skip: usize,
    pub(super) count: usize,
    pub(super) fault: Fault,
    pub(super) matched: usize,
}

impl Rule {
    pub fn new(method: &'static str, path: &'static str, fault: Fault) -> Rule {
        Rule {
            method,
            path,
            skip: 0,
            count: usize::MAX,
            fault,
            matched: 0,
        }
    }

    /// Only the first `n` matching requests (after the skipped ones).
    pub fn first(mut self, n: usize) -> Rule {
        self.count = n;
        self
    }

    /// Lets the first `n` matching requests through.
    pub fn skip(mut self, n: usize) -> Rule {
        self.skip = n;
        self
    }
}
