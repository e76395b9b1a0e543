//! Fault injection between hoist and a real registry: a small HTTP/1.1 proxy on a loopback port
//! forwards to `docker-registry`, rewrites `Location` back to itself, and answers chosen
//! requests (by method, path and occurrence) with a fault instead: 503 + `Retry-After`, a 500
//! or a dropped connection in the middle of a PATCH body, a stall, a `Location` on another host,
//! an nginx HTML error page, or a body read slowly. Each case checks what hoist answers, that no
//! tag was written (read from the registry directly), that an open upload session was cancelled,
//! and that a clean push afterwards succeeds and skips what was committed.

mod common;
mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

use common::{Answer, Registry, free_port, sha256};
use support::{HoistProc, Image, image, message, outcome, push, push_with};

const REPO: &str = "e2e/faults";

// ---------------------------------------------------------------------------------------------
// The fault-injecting proxy.

#[derive(Clone, Debug)]
enum Fault {
    /// Read the whole request, then answer this.
    Reply {
        status: u16,
        headers: Vec<(&'static str, &'static str)>,
        body: &'static str,
    },
    /// Read `after` bytes of the body, answer `status` with a registry error envelope, close.
    ReplyMidBody { after: usize, status: u16 },
    /// Read `after` bytes of the body, then close the socket without answering.
    DropMidBody { after: usize },
    /// Read the request and never answer.
    Stall,
    /// Forward, then point the answer's Location at this base instead.
    ForeignLocation(String),
    /// Read the body `chunk` bytes at a time with `pause` between reads, then forward.
    Throttle { chunk: usize, pause: Duration },
}

impl Fault {
    fn unavailable() -> Fault {
        Fault::Reply {
            status: 503,
            headers: vec![("Retry-After", "1"), ("Content-Type", "application/json")],
            body: r#"{"errors":[{"code":"UNAVAILABLE","message":"service unavailable","detail":"injected"}]}"#,
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Fault::Reply { .. } => "reply",
            Fault::ReplyMidBody { .. } => "reply-mid-body",
            Fault::DropMidBody { .. } => "drop-mid-body",
            Fault::Stall => "stall",
            Fault::ForeignLocation(_) => "foreign-location",
            Fault::Throttle { .. } => "throttle",
        }
    }
}

/// Which requests get a fault: `method` and a path substring; occurrences `skip+1 ..= skip+count`.
struct Rule {
    method: &'static str,
    path: &'static str,
    skip: usize,
    count: usize,
    fault: Fault,
    matched: usize,
}

impl Rule {
    fn new(method: &'static str, path: &'static str, fault: Fault) -> Rule {
        Rule {
            method,
            path,
            skip: 0,
            count: usize::MAX,
            fault,
            matched: 0,
        }
    }
    fn first(mut self, n: usize) -> Rule {
        self.count = n;
        self
    }
    fn skip(mut self, n: usize) -> Rule {
        self.skip = n;
        self
    }
}

/// One request the proxy saw.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    target: String,
    fault: Option<&'static str>,
    status: Option<u16>,
    at: Instant,
}

#[derive(Default)]
struct ProxyState {
    rules: Vec<Rule>,
    log: Vec<Seen>,
}

struct Ctx {
    state: Arc<Mutex<ProxyState>>,
    upstream: String,
    base: String,
    client: reqwest::Client,
}

impl Ctx {
    fn decide(&self, method: &str, target: &str) -> (usize, Option<Fault>) {
        let mut st = self.state.lock().unwrap();
        let mut fault = None;
        for r in st.rules.iter_mut() {
            if r.method == method && target.contains(r.path) {
                r.matched += 1;
                if fault.is_none() && r.matched > r.skip && r.matched - r.skip <= r.count {
                    fault = Some(r.fault.clone());
                }
            }
        }
        st.log.push(Seen {
            method: method.to_string(),
            target: target.to_string(),
            fault: fault.as_ref().map(Fault::name),
            status: None,
            at: Instant::now(),
        });
        (st.log.len() - 1, fault)
    }

    fn answered(&self, idx: usize, status: u16) {
        self.state.lock().unwrap().log[idx].status = Some(status);
    }
}

struct Proxy {
    port: u16,
    state: Arc<Mutex<ProxyState>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    fn start(upstream: &str) -> Result<Proxy> {
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

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn set_rules(&self, rules: Vec<Rule>) {
        let mut st = self.state.lock().unwrap();
        st.rules = rules;
        st.log.clear();
    }

    fn log(&self) -> Vec<Seen> {
        self.state.lock().unwrap().log.clone()
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

struct Head {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
}

#[derive(Clone, Copy)]
enum BodyKind {
    Length(u64),
    Chunked,
}

impl Head {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn body_kind(&self) -> BodyKind {
        if self
            .header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
        {
            return BodyKind::Chunked;
        }
        BodyKind::Length(
            self.header("content-length")
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0),
        )
    }
    fn wants_close(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

async fn read_head<R: AsyncBufRead + Unpin>(rd: &mut R) -> std::io::Result<Option<Head>> {
    let mut line = String::new();
    loop {
        line.clear();
        if rd.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        if !line.trim().is_empty() {
            break;
        }
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if rd.read_line(&mut h).await? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.trim_end().split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    Ok(Some(Head {
        method,
        target,
        headers,
    }))
}

/// Reads a request body (decoding chunked transfer), stopping early after `limit` bytes.
async fn read_body<R: AsyncBufRead + Unpin>(
    rd: &mut R,
    kind: BodyKind,
    limit: Option<usize>,
    throttle: Option<(usize, Duration)>,
) -> std::io::Result<Vec<u8>> {
    let eof = || std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "body cut short");
    let limit = limit.unwrap_or(usize::MAX);
    let step = throttle.map(|t| t.0).unwrap_or(64 << 10);
    let (mut remaining, chunked) = match kind {
        BodyKind::Length(n) => (n, false),
        BodyKind::Chunked => (0, true),
    };
    let mut first_chunk = true;
    let mut out = Vec::new();
    loop {
        if out.len() >= limit {
            return Ok(out);
        }
        if remaining == 0 {
            if !chunked {
                return Ok(out);
            }
            let mut line = String::new();
            if !first_chunk {
                rd.read_line(&mut line).await?; // CRLF after the previous chunk
                line.clear();
            }
            first_chunk = false;
            if rd.read_line(&mut line).await? == 0 {
                return Err(eof());
            }
            let size_hex = line.trim().split(';').next().unwrap_or("").trim();
            let size = u64::from_str_radix(size_hex, 16).map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::InvalidData, "bad chunk size")
            })?;
            if size == 0 {
                loop {
                    let mut t = String::new();
                    if rd.read_line(&mut t).await? == 0 || t.trim().is_empty() {
                        return Ok(out);
                    }
                }
            }
            remaining = size;
        }
        let want = remaining.min(step as u64).min((limit - out.len()) as u64) as usize;
        let start = out.len();
        out.resize(start + want, 0);
        let n = rd.read(&mut out[start..]).await?;
        out.truncate(start + n);
        if n == 0 {
            return Err(eof());
        }
        remaining -= n as u64;
        if let Some((_, pause)) = throttle {
            tokio::time::sleep(pause).await;
        }
    }
}

async fn write_response<W: tokio::io::AsyncWrite + Unpin>(
    wr: &mut W,
    status: u16,
    headers: &[(String, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let reason = reqwest::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Unknown");
    let mut out = format!("HTTP/1.1 {status} {reason}\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    let mut buf = out.into_bytes();
    buf.extend_from_slice(body);
    wr.write_all(&buf).await?;
    wr.flush().await
}

const HOP_BY_HOP: &[&str] = &[
    "host",
    "connection",
    "content-length",
    "transfer-encoding",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "proxy-connection",
    "expect",
];

type Forwarded = (u16, Vec<(String, String)>, Vec<u8>);

async fn forward(ctx: &Ctx, head: &Head, body: Vec<u8>) -> Result<Forwarded, String> {
    let method = reqwest::Method::from_bytes(head.method.as_bytes()).map_err(|e| e.to_string())?;
    let mut req = ctx
        .client
        .request(method.clone(), format!("{}{}", ctx.upstream, head.target));
    for (k, v) in &head.headers {
        if !HOP_BY_HOP.contains(&k.to_ascii_lowercase().as_str()) {
            req = req.header(k.as_str(), v.as_str());
        }
    }
    if !body.is_empty()
        || matches!(
            method,
            reqwest::Method::POST | reqwest::Method::PUT | reqwest::Method::PATCH
        )
    {
        req = req.body(body);
    }
    let resp = req.send().await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let mut headers: Vec<(String, String)> = resp
        .headers()
        .iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "connection" | "content-length" | "transfer-encoding" | "keep-alive"
            )
        })
        .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let upstream_len = resp
        .headers()
        .get(reqwest::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let bytes = resp.bytes().await.map_err(|e| e.to_string())?.to_vec();
    if method == reqwest::Method::HEAD {
        if let Some(len) = upstream_len {
            headers.push(("content-length".into(), len));
        }
        return Ok((status, headers, Vec::new()));
    }
    if status != 204 && status != 304 {
        headers.push(("content-length".into(), bytes.len().to_string()));
    }
    Ok((status, headers, bytes))
}

async fn serve_conn(sock: tokio::net::TcpStream, ctx: Arc<Ctx>) {
    let _ = sock.set_nodelay(true);
    let (rd, mut wr) = sock.into_split();
    let mut rd = tokio::io::BufReader::with_capacity(64 << 10, rd);
    loop {
        let head = match read_head(&mut rd).await {
            Ok(Some(h)) => h,
            _ => return,
        };
        let (idx, fault) = ctx.decide(&head.method, &head.target);
        let kind = head.body_kind();
        match fault {
            Some(Fault::Reply {
                status,
                headers,
                body,
            }) => {
                if read_body(&mut rd, kind, None, None).await.is_err() {
                    return;
                }
                let mut hs: Vec<(String, String)> = headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                hs.push(("Content-Length".into(), body.len().to_string()));
                let b = if head.method == "HEAD" {
                    &[][..]
                } else {
                    body.as_bytes()
                };
                if write_response(&mut wr, status, &hs, b).await.is_err() {
                    return;
                }
                ctx.answered(idx, status);
            }
            Some(Fault::ReplyMidBody { after, status }) => {
                let _ = read_body(&mut rd, kind, Some(after), None).await;
                let body = r#"{"errors":[{"code":"UNKNOWN","message":"unknown error","detail":"injected failure in the middle of the body"}]}"#;
                let hs = vec![
                    ("Content-Type".to_string(), "application/json".to_string()),
                    ("Content-Length".to_string(), body.len().to_string()),
                    ("Connection".to_string(), "close".to_string()),
                ];
                let _ = write_response(&mut wr, status, &hs, body.as_bytes()).await;
                let _ = wr.shutdown().await;
                ctx.answered(idx, status);
                // Swallow what the client still sends, so it reads the answer, not a reset.
                let _ = tokio::time::timeout(
                    Duration::from_secs(5),
                    tokio::io::copy(&mut rd, &mut tokio::io::sink()),
                )
                .await;
                return;
            }
            Some(Fault::DropMidBody { after }) => {
                let _ = read_body(&mut rd, kind, Some(after), None).await;
                return; // both halves dropped: the socket closes (reset, with data unread)
            }
            Some(Fault::Stall) => {
                let _ = read_body(&mut rd, kind, None, None).await;
                std::future::pending::<()>().await;
            }
            other => {
                let throttle = match &other {
                    Some(Fault::Throttle { chunk, pause }) => Some((*chunk, *pause)),
                    _ => None,
                };
                let body = match read_body(&mut rd, kind, None, throttle).await {
                    Ok(b) => b,
                    Err(_) => return,
                };
                let (status, mut headers, rbody) = match forward(&ctx, &head, body).await {
                    Ok(r) => r,
                    Err(e) => (
                        502,
                        vec![("content-length".into(), e.len().to_string())],
                        e.into_bytes(),
                    ),
                };
                for (k, v) in headers.iter_mut() {
                    if k.eq_ignore_ascii_case("location") {
                        if let Some(rest) = v.strip_prefix(&ctx.upstream) {
                            *v = format!("{}{rest}", ctx.base);
                        }
                        if let Some(Fault::ForeignLocation(foreign)) = &other {
                            let path = v.strip_prefix(&ctx.base).unwrap_or(v.as_str());
                            *v = format!("{foreign}{path}");
                        }
                    }
                }
                if write_response(&mut wr, status, &headers, &rbody)
                    .await
                    .is_err()
                {
                    return;
                }
                ctx.answered(idx, status);
            }
        }
        if head.wants_close() {
            return;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The rig and shared checks.

struct Rig {
    registry: Registry,
    proxy: Proxy,
    hoist: HoistProc,
}

impl Rig {
    fn start(env: &[(&str, &str)]) -> Result<Rig> {
        let registry = Registry::start()?;
        let proxy = Proxy::start(&registry.url())?;
        let hoist = HoistProc::start(&proxy.url(), env)?;
        Ok(Rig {
            registry,
            proxy,
            hoist,
        })
    }

    fn push(&self, img: &Image) -> Result<Answer> {
        push(&self.hoist, &format!("/push/{REPO}:v1"), &img.tar)
    }

    fn context(&self, a: &Answer) -> String {
        let seen = self.proxy.log();
        let t0 = seen.first().map(|s| s.at).unwrap_or_else(Instant::now);
        let log: Vec<String> = seen
            .iter()
            .map(|s| {
                format!(
                    "+{}ms {} {} -> {:?} {:?}",
                    (s.at - t0).as_millis(),
                    s.method,
                    s.target,
                    s.status,
                    s.fault
                )
            })
            .collect();
        format!(
            "answer: {} {}\nproxy saw:\n  {}\nhoist stderr (tail):\n{}",
            a.status,
            a.body,
            log.join("\n  "),
            tail(&self.hoist.stderr(), 30)
        )
    }

    /// Nothing tagged, read from the registry itself (not through the proxy).
    fn assert_no_tag(&self, a: &Answer) {
        let tags = self.registry.tags(REPO);
        assert!(
            tags.is_empty(),
            "a failed push wrote tags {tags:?}\n{}",
            self.context(a)
        );
    }

    /// The upload session whose PATCH met the fault was cancelled with a DELETE on its URL.
    fn assert_patch_session_cancelled(&self, a: &Answer) {
        let log = self.proxy.log();
        let faulted = log
            .iter()
            .find(|s| s.method == "PATCH" && s.fault.is_some())
            .unwrap_or_else(|| panic!("no PATCH met the fault\n{}", self.context(a)));
        let path = upload_path(&faulted.target);
        // The DELETE is best effort and may come just after the answer.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if self
                .proxy
                .log()
                .iter()
                .any(|s| s.method == "DELETE" && upload_path(&s.target) == path)
            {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "the upload session {path} was not cancelled (no DELETE)\n{}",
                    self.context(a)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A clean push afterwards: 201, the tag, and every blob the registry already had is
    /// reported `exists` (not sent again), the others `uploaded`.
    fn assert_clean_push_skips_committed(&self, img: &Image) -> Result<Answer> {
        self.proxy.set_rules(Vec::new());
        let blobs: Vec<&String> = img.layers.iter().chain([&img.config]).collect();
        let committed: Vec<bool> = blobs
            .iter()
            .map(|d| self.registry.has_blob(REPO, d))
            .collect();
        let a = self.push(img)?;
        assert_eq!(a.status, 201, "clean push failed\n{}", self.context(&a));
        for (d, had) in blobs.iter().zip(&committed) {
            let want = if *had { "exists" } else { "uploaded" };
            assert_eq!(
                outcome(&a, d),
                want,
                "blob {d} (committed before: {had})\n{}",
                self.context(&a)
            );
        }
        let patches = self
            .proxy
            .log()
            .iter()
            .filter(|s| s.method == "PATCH")
            .count();
        let expected = committed.iter().filter(|c| !**c).count();
        assert_eq!(
            patches,
            expected,
            "one PATCH per blob not yet committed\n{}",
            self.context(&a)
        );
        assert_eq!(self.registry.tags(REPO), vec!["v1".to_string()]);
        Ok(a)
    }
}

fn upload_path(target: &str) -> &str {
    target.split('?').next().unwrap_or(target)
}

fn tail(s: &str, lines: usize) -> String {
    let all: Vec<&str> = s.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The faulted request was sent again, no sooner than `Retry-After: 1` allows.
fn assert_retried(rig: &Rig, a: &Answer, method: &str, faults: usize) {
    let log = rig.proxy.log();
    let faulted: Vec<&Seen> = log
        .iter()
        .filter(|s| s.method == method && s.fault.is_some())
        .collect();
    assert_eq!(
        faulted.len(),
        faults,
        "503s served to {method}\n{}",
        rig.context(a)
    );
    let first = faulted[0];
    let retries: Vec<&Seen> = log
        .iter()
        .filter(|s| s.method == method && s.target == first.target && s.at > first.at)
        .collect();
    assert!(
        retries.len() >= faults,
        "{method} {} was not retried\n{}",
        first.target,
        rig.context(a)
    );
    let success = retries
        .iter()
        .find(|s| s.fault.is_none())
        .unwrap_or_else(|| {
            panic!("no retried {method} went through\n{}", rig.context(a));
        });
    assert!(
        matches!(success.status, Some(200..=299) | Some(404)),
        "retried {method}: {:?}",
        success.status
    );
    let gap = retries[0].at - first.at;
    assert!(
        gap >= Duration::from_millis(900),
        "retry after {gap:?}: Retry-After: 1 not honoured\n{}",
        rig.context(a)
    );
}

// ---------------------------------------------------------------------------------------------
// Retries where the body is at hand.

#[test]
fn retry_after_503_on_blob_head() -> Result<()> {
    let rig = Rig::start(&[])?;
    let img = image(1, &[256 << 10], "v1");
    rig.proxy.set_rules(vec![
        Rule::new("HEAD", "/blobs/sha256:", Fault::unavailable()).first(1),
    ]);
    let a = rig.push(&img)?;
    eprintln!("hoist answered {} {}", a.status, a.body);
    assert_eq!(a.status, 201, "{}", rig.context(&a));
    assert_retried(&rig, &a, "HEAD", 1);
    assert_eq!(rig.registry.tags(REPO), vec!["v1".to_string()]);
    assert_eq!(outcome(&a, &img.layers[0]), "uploaded");
    Ok(())
}

#[test]
fn retry_after_503_on_upload_post() -> Result<()> {
    let rig = Rig::start(&[])?;
    let img = image(2, &[256 << 10], "v1");
    rig.proxy.set_rules(vec![
        Rule::new("POST", "/blobs/uploads/", Fault::unavailable()).first(2),
    ]);
    let t = Instant::now();
    let a = rig.push(&img)?;
    eprintln!("hoist answered {} {}", a.status, a.body);
    assert_eq!(a.status, 201, "{}", rig.context(&a));
    assert_retried(&rig, &a, "POST", 2);
    assert!(
        t.elapsed() >= Duration::from_millis(1800),
        "two Retry-After: 1 waits"
    );
    assert_eq!(rig.registry.tags(REPO), vec!["v1".to_string()]);
    assert!(rig.registry.has_blob(REPO, &img.layers[0]));
    assert!(rig.registry.has_blob(REPO, &img.config));
    Ok(())
}

#[test]
fn retry_after_503_on_manifest_put() -> Result<()> {
    let rig = Rig::start(&[])?;
    let img = image(3, &[256 << 10], "v1");
    rig.proxy.set_rules(vec![
        Rule::new("PUT", "/manifests/", Fault::unavailable()).first(1),
    ]);
    let a = rig.push(&img)?;
    eprintln!("hoist answered {} {}", a.status, a.body);
    assert_eq!(a.status, 201, "{}", rig.context(&a));
    assert_retried(&rig, &a, "PUT", 1);
    assert_eq!(rig.registry.tags(REPO), vec!["v1".to_string()]);
    let digest = a.body["images"][0]["digest"].as_str().unwrap_or("");
    let (bytes, _) = rig.registry.manifest(REPO, "v1")?;
    assert_eq!(sha256(&bytes), digest);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Failures once a streamed body is gone: a clear error, nothing tagged, session cancelled.

/// Two 1 MiB layers pushed one at a time, so the first is committed before the second fails.
fn two_layers(seed: u64) -> Image {
    image(seed, &[1 << 20, 1 << 20], "v1")
}

const ONE_AT_A_TIME: (&str, &str) = ("HOIST_MAX_INFLIGHT_BLOBS", "1");

#[test]
fn error_500_in_the_middle_of_a_patch() -> Result<()> {
    let rig = Rig::start(&[ONE_AT_A_TIME])?;
    let img = two_layers(4);
    rig.proxy.set_rules(vec![
        Rule::new(
            "PATCH",
            "/blobs/uploads/",
            Fault::ReplyMidBody {
                after: 64 << 10,
                status: 500,
            },
        )
        .skip(1)
        .first(1),
    ]);
    let a = rig.push(&img)?;
    eprintln!("hoist answered {} {}", a.status, a.body);
    assert_eq!(a.status, 502, "{}", rig.context(&a));
    assert_eq!(a.code(), "REGISTRY_ERROR", "{}", rig.context(&a));
    assert!(
        message(&a).contains("can be retried"),
        "message should say the push can be retried\n{}",
        rig.context(&a)
    );
    rig.assert_no_tag(&a);
    rig.assert_patch_session_cancelled(&a);
    assert!(
        rig.registry.has_blob(REPO, &img.layers[0]),
        "the first layer should have been committed before the second failed"
    );
    rig.assert_clean_push_skips_committed(&img)?;
    Ok(())
}

#[test]
fn connection_dropped_in_the_middle_of_a_patch() -> Result<()> {
    let rig = Rig::start(&[ONE_AT_A_TIME])?;
    let img = two_layers(5);
    rig.proxy.set_rules(vec![
        Rule::new(
            "PATCH",
            "/blobs/uploads/",
            Fault::DropMidBody { after: 64 << 10 },
        )
        .skip(1)
        .first(1),
    ]);
    let a = rig.push(&img)?;
    eprintln!("hoist answered {} {}", a.status, a.body);
    assert_eq!(a.status, 502, "{}", rig.context(&a));
    assert_eq!(a.code(), "REGISTRY_ERROR", "{}", rig.context(&a));
    assert!(
        message(&a).contains("can be retried"),
        "message should say the push can be retried\n{}",
        rig.context(&a)
    );
    rig.assert_no_tag(&a);
    rig.assert_patch_session_cancelled(&a);
    assert!(rig.registry.has_blob(REPO, &img.layers[0]));
    rig.assert_clean_push_skips_committed(&img)?;
    Ok(())
}

#[test]
fn stalled_patch_times_out() -> Result<()> {
    let rig = Rig::start(&[("HOIST_IDLE_TIMEOUT", "2s"), ONE_AT_A_TIME])?;
    let img = two_layers(6);
    rig.proxy.set_rules(vec![
        Rule::new("PATCH", "/blobs/uploads/", Fault::Stall)
            .skip(1)
            .first(1),
    ]);
    let t = Instant::now();
    let a = rig.push(&img)?;
    eprintln!("hoist answered {} {}", a.status, a.body);
    let took = t.elapsed();
    assert!(took < Duration::from_secs(20), "took {took:?}");
    rig.assert_no_tag(&a);
    rig.assert_patch_session_cancelled(&a);
    assert_eq!(
        (a.status, a.code()),
        (504, "REGISTRY_TIMEOUT"),
        "a registry that stalls past the idle timeout is REGISTRY_TIMEOUT (docs/API.md)\n{}",
        rig.context(&a)
    );
    rig.assert_clean_push_skips_committed(&img)?;
    Ok(())
}

#[test]
fn stalled_manifest_put_times_out() -> Result<()> {
    let rig = Rig::start(&[("HOIST_IDLE_TIMEOUT", "2s"), ("HOIST_RETRIES", "1")])?;
    let img = image(7, &[256 << 10], "v1");
    rig.proxy
        .set_rules(vec![Rule::new("PUT", "/manifests/", Fault::Stall)]);
    let t = Instant::now();
    let a = rig.push(&img)?;
    eprintln!("hoist answered {} {}", a.status, a.body);
    let took = t.elapsed();
    assert_eq!(a.status, 504, "{}", rig.context(&a));
    assert_eq!(a.code(), "REGISTRY_TIMEOUT", "{}", rig.context(&a));
    assert!(
        took >= Duration::from_secs(4),
        "two 2 s waits, took {took:?}"
    );
    assert!(took < Duration::from_secs(20), "took {took:?}");
    let puts = rig
        .proxy
        .log()
        .iter()
        .filter(|s| s.method == "PUT" && s.target.contains("/manifests/"))
        .count();
    assert_eq!(puts, 2, "one try and one retry\n{}", rig.context(&a));
    rig.assert_no_tag(&a);
    // The blobs were committed: the clean push sends none again.
    rig.assert_clean_push_skips_committed(&img)?;
    Ok(())
}

#[test]
fn slow_but_steady_patch_is_not_a_stall() -> Result<()> {
    // The registry reads the body slowly (≈3 s for 512 KiB) but never pauses for long: with a
    // 2 s idle timeout this is progress, not a stall.
    let rig = Rig::start(&[("HOIST_IDLE_TIMEOUT", "2s")])?;
    let img = image(8, &[512 << 10], "v1");
    rig.proxy.set_rules(vec![Rule::new(
        "PATCH",
        "/blobs/uploads/",
        Fault::Throttle {
            chunk: 32 << 10,
            pause: Duration::from_millis(200),
        },
    )]);
    let a = rig.push(&img)?;
    eprintln!("hoist answered {} {}", a.status, a.body);
    assert_eq!(
        a.status,
        201,
        "a steadily progressing PATCH longer than the idle timeout must not fail\n{}",
        rig.context(&a)
    );
    assert_eq!(rig.registry.tags(REPO), vec!["v1".to_string()]);
    Ok(())
}

#[test]
fn slow_client_upload_is_not_a_registry_stall() -> Result<()> {
    // The client sends its archive at 256 KiB/s (≈4 s for 1 MiB); the registry is fast (the
    // proxy only forwards). The PATCH body is the client's bytes, so it lasts as long as the
    // upload does: that is the client's pace, not a registry stall.
    let rig = Rig::start(&[("HOIST_IDLE_TIMEOUT", "2s")])?;
    let img = image(9, &[1 << 20], "v1");
    let a = push_with(
        &rig.hoist,
        &format!("/push/{REPO}:v1"),
        &img.tar,
        &["--limit-rate", "256K"],
    )?;
    assert_eq!(
        a.status,
        201,
        "a slow client must not look like a stalled registry\n{}",
        rig.context(&a)
    );
    assert_eq!(rig.registry.tags(REPO), vec!["v1".to_string()]);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Answers hoist must refuse or explain.

#[test]
fn location_on_another_host_is_refused() -> Result<()> {
    let rig = Rig::start(&[])?;
    // A listener on the foreign address shows whether hoist ever went there.
    let canary = std::net::TcpListener::bind("127.0.0.2:0")?;
    canary.set_nonblocking(true)?;
    let foreign = format!("http://127.0.0.2:{}", canary.local_addr()?.port());
    let img = image(10, &[256 << 10], "v1");
    rig.proxy.set_rules(vec![Rule::new(
        "POST",
        "/blobs/uploads/",
        Fault::ForeignLocation(foreign.clone()),
    )]);
    let a = rig.push(&img)?;
    eprintln!("hoist answered {} {}", a.status, a.body);
    assert_eq!(a.status, 502, "{}", rig.context(&a));
    assert_eq!(a.code(), "REGISTRY_ERROR", "{}", rig.context(&a));
    assert!(
        message(&a).contains("Location"),
        "the message should name the Location\n{}",
        rig.context(&a)
    );
    assert!(
        matches!(canary.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "hoist connected to the foreign Location {foreign}"
    );
    rig.assert_no_tag(&a);
    assert!(
        !rig.proxy.log().iter().any(|s| s.method == "PATCH"),
        "no PATCH may follow a refused Location\n{}",
        rig.context(&a)
    );
    rig.assert_clean_push_skips_committed(&img)?;
    Ok(())
}

const NGINX_502: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.24.0</center>\r\n</body>\r\n</html>\r\n";

#[test]
fn html_error_page_is_quoted_as_text() -> Result<()> {
    let rig = Rig::start(&[])?;
    let img = image(11, &[256 << 10], "v1");
    rig.proxy.set_rules(vec![
        Rule::new(
            "PATCH",
            "/blobs/uploads/",
            Fault::Reply {
                status: 502,
                headers: vec![("Content-Type", "text/html"), ("Server", "nginx/1.24.0")],
                body: NGINX_502,
            },
        )
        .first(1),
    ]);
    let a = rig.push(&img)?;
    eprintln!("hoist answered {} {}", a.status, a.body);
    assert_eq!(a.status, 502, "{}", rig.context(&a));
    assert_eq!(a.code(), "REGISTRY_ERROR", "{}", rig.context(&a));
    let msg = message(&a);
    assert!(
        msg.contains("502 Bad Gateway") && msg.contains("nginx"),
        "the page's text should be quoted: {msg}"
    );
    for tag in ["<html", "<head", "<h1", "</", "<hr", "<center"] {
        assert!(!msg.contains(tag), "raw HTML {tag:?} in the message: {msg}");
    }
    rig.assert_no_tag(&a);
    rig.assert_patch_session_cancelled(&a);
    rig.assert_clean_push_skips_committed(&img)?;
    Ok(())
}

#[test]
fn unreachable_registry_is_registry_unavailable() -> Result<()> {
    let port = free_port()?;
    let hoist = HoistProc::start(
        &format!("http://127.0.0.1:{port}"),
        &[("HOIST_RETRIES", "1"), ("HOIST_CONNECT_TIMEOUT", "2s")],
    )?;
    let img = image(12, &[64 << 10], "v1");
    let t = Instant::now();
    let a = push(&hoist, &format!("/push/{REPO}:v1"), &img.tar)?;
    assert_eq!(
        (a.status, a.code()),
        (503, "REGISTRY_UNAVAILABLE"),
        "{}\n{}",
        a.body,
        tail(&hoist.stderr(), 20)
    );
    assert!(t.elapsed() < Duration::from_secs(20));
    Ok(())
}
