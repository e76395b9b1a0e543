//! The request log: one [`Seen`] per request the proxy read, with what it did to it.

use std::time::Instant;

/// One request the proxy saw.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub fault: Option<&'static str>,
    pub status: Option<u16>,
    /// Body bytes read from hoist (after chunked decoding).
    pub body_bytes: u64,
    pub at: Instant,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The target without its query (an upload session's URL).
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or(&self.target)
    }
}
