//! Clients of hoist: `curl` for ordinary pushes (raw or multipart), raw TCP for the ones a
//! well-behaved client never sends (held, cut or half-closed bodies) and for one plain
//! HTTP/1.1 request whose status, headers and closed connection a test sees as they are, and
//! what hoist answered.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use super::{Hoist, Registry};

/// What hoist answered: status, headers (names lowercased) and JSON body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// The body as JSON, or as a JSON string when it is not JSON.
    pub body: Value,
    pub headers: Vec<(String, String)>,
    /// The body as it came (lossy UTF-8).
    text: String,
}

impl Answer {
    /// An answer with no headers (from `hoist push`'s stdout, say).
    pub fn new(status: u16, body: Value) -> Answer {
        Answer {
            status,
            text: body.to_string(),
            body,
            headers: Vec::new(),
        }
    }

    /// An answer from its status, headers and body bytes.
    fn from_raw(status: u16, headers: Vec<(String, String)>, body: &[u8]) -> Answer {
        let text = String::from_utf8_lossy(body).to_string();
        let body = serde_json::from_slice(body).unwrap_or_else(|_| Value::String(text.clone()));
        Answer {
            status,
            body,
            headers,
            text,
        }
    }

    /// The body as it came, byte for byte (lossy UTF-8), JSON or not.
    pub fn text(&self) -> String {
        self.text.clone()
    }

    /// The `error.code` of a failure answer ("" on success).
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// The `error.message` of a failure answer ("" when there is none).
    pub fn message(&self) -> String {
        self.body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// A response header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a response header sent more than once (`www-authenticate`), in order.
    pub fn header_values(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The outcome hoist reported for `digest` in the first image of a 201 answer.
    pub fn outcome(&self, digest: &str) -> String {
        self.body["images"][0]["blobs"]
            .as_array()
            .and_then(|bs| bs.iter().find(|b| b["digest"] == digest))
            .and_then(|b| b["outcome"].as_str())
            .unwrap_or("<not reported>")
            .to_string()
    }

    /// Every blob outcome of the first image, in report order.
    pub fn outcomes(&self) -> Vec<String> {
        self.body["images"][0]["blobs"]
            .as_array()
            .map(|bs| {
                bs.iter()
                    .map(|b| b["outcome"].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// `curl -T file URL` against hoist; `path_and_query` starts with `/push`.
pub fn push_file(hoist: &Hoist, path_and_query: &str, file: &Path) -> Result<Answer> {
    curl_json(&[
        "-T".into(),
        file.display().to_string(),
        format!("{}{path_and_query}", hoist.url),
    ])
}

/// A raw body from memory.
pub fn push_bytes(hoist: &Hoist, path_and_query: &str, body: &[u8]) -> Result<Answer> {
    push_bytes_with(hoist, path_and_query, body, &[])
}

/// A raw body from memory; extra curl arguments (e.g. `--limit-rate`) go first.
pub fn push_bytes_with(
    hoist: &Hoist,
    path_and_query: &str,
    body: &[u8],
    extra: &[&str],
) -> Result<Answer> {
    let tmp = tempfile::NamedTempFile::new()?;
    std::fs::write(tmp.path(), body)?;
    let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    args.extend([
        "-T".into(),
        tmp.path().display().to_string(),
        format!("{}{path_and_query}", hoist.url),
    ]);
    curl_json(&args)
}

/// `curl -F file=@file URL` (multipart) against hoist; extra form fields go before the file.
pub fn push_multipart(
    hoist: &Hoist,
    path_and_query: &str,
    file: &Path,
    fields: &[(&str, &str)],
) -> Result<Answer> {
    let mut args = Vec::new();
    for (k, v) in fields {
        args.push("-F".to_string());
        args.push(format!("{k}={v}"));
    }
    args.push("-F".into());
    args.push(format!("file=@{}", file.display()));
    args.push(format!("{}{path_and_query}", hoist.url));
    curl_json(&args)
}

fn curl_json(args: &[String]) -> Result<Answer> {
    let head = tempfile::NamedTempFile::new()?;
    let out = Command::new("curl")
        .args(["-s", "-w", "\n%{http_code}", "--max-time", "300", "-D"])
        .arg(head.path())
        .args(args)
        .output()
        .context("running curl")?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, status) = text.rsplit_once('\n').context("curl printed no status")?;
    let status: u16 = status.trim().parse().context("curl status")?;
    let raw = std::fs::read_to_string(head.path()).unwrap_or_default();
    // With `100 Continue` there are two header blocks: keep the last.
    let last = raw
        .rsplit("\r\n\r\n")
        .find(|b| !b.trim().is_empty())
        .unwrap_or("");
    Ok(Answer::from_raw(
        status,
        parse_headers(last),
        body.as_bytes(),
    ))
}

fn parse_headers(block: &str) -> Vec<(String, String)> {
    block
        .lines()
        .skip(1)
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim().to_ascii_lowercase(), v.trim().to_string()))
        })
        .collect()
}

/// GET a URL and parse JSON.
pub fn get_json(url: &str) -> Result<Value> {
    let out = Command::new("curl").args(["-skf", url]).output()?;
    if !out.status.success() {
        bail!("GET {url} failed");
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// GET a URL as text (`curl -sf`).
pub fn get_text(url: &str) -> Result<String> {
    super::run(Command::new("curl").args(["-sf", url]))
}

/// `skopeo inspect [--raw|--config] docker://host/repo:tag` as JSON.
pub fn skopeo_inspect(registry: &Registry, reference: &str, extra: &[&str]) -> Result<Value> {
    let out = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false"])
        .args(extra)
        .arg(format!("docker://{}/{reference}", registry.host()))
        .output()?;
    if !out.status.success() {
        bail!(
            "skopeo inspect {reference}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

// ---------------------------------------------------------------------------------------------
// Raw TCP.

/// Opens an upload that sends headers claiming `total` bytes and then `sent`, and holds the
/// connection open.
pub fn hold_upload(hoist: &Hoist, path: &str, total: usize, sent: &[u8]) -> TcpStream {
    let octets = [("Content-Type", "application/octet-stream")];
    hold_request(hoist, "PUT", path, &octets, total, sent)
}

/// Sends a request's head with `headers` and `Content-Length: total`, then `sent` of its
/// body, and holds the connection open: what hoist answers before the rest of the body comes
/// is then the test's to read ([`read_answer`]).
pub fn hold_request(
    hoist: &Hoist,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    total: usize,
    sent: &[u8],
) -> TcpStream {
    let mut s = TcpStream::connect(hoist.addr()).expect("connect to hoist");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: hoist\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!("Content-Length: {total}\r\n\r\n"));
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(sent).unwrap();
    s.flush().unwrap();
    s
}

/// PUT with `Transfer-Encoding: chunked` (no Content-Length), then read the answer.
pub fn push_chunked(hoist: &Hoist, path: &str, body: &[u8]) -> Option<Answer> {
    let mut s = TcpStream::connect(hoist.addr()).ok()?;
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: hoist\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    s.write_all(head.as_bytes()).ok()?;
    for chunk in body.chunks(16 * 1024) {
        let sent = s
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .and_then(|()| s.write_all(chunk))
            .and_then(|()| s.write_all(b"\r\n"));
        if sent.is_err() {
            break; // hoist answered early and closed: read what it said
        }
    }
    let _ = s.write_all(b"0\r\n\r\n");
    read_answer(&mut s)
}

/// One request over a fresh connection to `addr` (`Connection: close`, a `Content-Length`
/// even for an empty body), its answer read whole (within 60 s).
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<Answer> {
    let mut s = TcpStream::connect(addr)?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    read_answer_within(&mut s, Duration::from_secs(60))
        .with_context(|| format!("no answer to {method} {path}"))
}

/// `GET http://ADDR/PATH` with [`request`]: any status is an answer.
pub fn get(url: &str) -> Result<Answer> {
    let rest = url.strip_prefix("http://").context("http URL")?;
    let (addr, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    request(addr, "GET", path, &[], b"")
}

/// Reads one HTTP/1.1 response (until it is complete, the peer closes, or 30 s pass).
pub fn read_answer(stream: &mut TcpStream) -> Option<Answer> {
    read_answer_within(stream, Duration::from_secs(30))
}

/// Reads one HTTP/1.1 response (until it is complete, the peer closes, or `limit` passes
/// without a byte).
pub fn read_answer_within(stream: &mut TcpStream, limit: Duration) -> Option<Answer> {
    stream.set_read_timeout(Some(limit)).ok()?;
    let mut raw = Vec::new();
    let mut chunk = [0u8; 8192];
    while !response_complete(&raw) {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => raw.extend_from_slice(&chunk[..n]),
        }
    }
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let lower = head.to_ascii_lowercase();
    let status: u16 = head
        .lines()
        .next()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    let mut body = raw[split + 4..].to_vec();
    if lower.contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    Some(Answer::from_raw(status, parse_headers(&head), &body))
}

fn response_complete(raw: &[u8]) -> bool {
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let body = &raw[split + 4..];
    if head.contains("transfer-encoding: chunked") {
        return body.windows(5).any(|w| w == b"0\r\n\r\n");
    }
    head.lines()
        .find_map(|l| {
            l.strip_prefix("content-length:")
                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
        })
        .is_some_and(|len| body.len() >= len)
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = body.windows(2).position(|w| w == b"\r\n") {
        let len =
            usize::from_str_radix(String::from_utf8_lossy(&body[..eol]).trim(), 16).unwrap_or(0);
        if len == 0 || body.len() < eol + 2 + len {
            break;
        }
        out.extend_from_slice(&body[eol + 2..eol + 2 + len]);
        body = &body[(eol + 4 + len).min(body.len())..];
    }
    out
}
