//! A fault-injecting HTTP/1.1 proxy on a loopback port, between hoist and a real registry.
//!
//! It forwards requests to the registry and rewrites `Location` back to itself. Bodies are
//! streamed both ways a chunk at a time, never gathered first, so a registry that reads slowly
//! or stops reading holds hoist back exactly as a real one would (backpressure). Chosen
//! requests (by method, target substring and occurrence) get a [`Fault`] instead. Every request
//! is recorded ([`Seen`]): method, target, headers, body bytes read, fault and status.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

/// How long a stalled request is held before the proxy gives up on it (bounds every stall).
const STALL_MAX: Duration = Duration::from_secs(120);

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
    method: &'static str,
    path: &'static str,
    skip: usize,
    count: usize,
    fault: Fault,
    matched: usize,
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
    fn decide(&self, head: &Head) -> (usize, Option<Fault>) {
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

    // A request in flight when `set_rules` cleared the log (hoist's readiness probe, say) has
    // no entry left to update.
    fn read(&self, idx: usize, bytes: u64) {
        if let Some(seen) = self.state.lock().unwrap().log.get_mut(idx) {
            seen.body_bytes = bytes;
        }
    }

    fn answered(&self, idx: usize, status: u16) {
        if let Some(seen) = self.state.lock().unwrap().log.get_mut(idx) {
            seen.status = Some(status);
        }
    }
}

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

// ---------------------------------------------------------------------------------------------
// HTTP/1.1 plumbing.

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

/// A request body read piece by piece (chunked transfer decoded), so it can be streamed on.
struct Body {
    chunked: bool,
    remaining: u64,
    first_chunk: bool,
    done: bool,
    read: u64,
}

impl Body {
    fn new(kind: BodyKind) -> Body {
        let (remaining, chunked) = match kind {
            BodyKind::Length(n) => (n, false),
            BodyKind::Chunked => (0, true),
        };
        Body {
            chunked,
            remaining,
            first_chunk: true,
            done: false,
            read: 0,
        }
    }

    /// The next piece of at most `max` bytes; `None` at the end of the body.
    async fn next<R: AsyncBufRead + Unpin>(
        &mut self,
        rd: &mut R,
        max: usize,
    ) -> std::io::Result<Option<Vec<u8>>> {
        let eof = || std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "body cut short");
        if self.done {
            return Ok(None);
        }
        if self.remaining == 0 {
            if !self.chunked {
                self.done = true;
                return Ok(None);
            }
            let mut line = String::new();
            if !self.first_chunk {
                rd.read_line(&mut line).await?; // CRLF after the previous chunk
                line.clear();
            }
            self.first_chunk = false;
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
                        break;
                    }
                }
                self.done = true;
                return Ok(None);
            }
            self.remaining = size;
        }
        let want = self.remaining.min(max.max(1) as u64) as usize;
        let mut buf = vec![0u8; want];
        let n = rd.read(&mut buf).await?;
        if n == 0 {
            return Err(eof());
        }
        buf.truncate(n);
        self.remaining -= n as u64;
        self.read += n as u64;
        Ok(Some(buf))
    }

    /// Reads until `limit` bytes were read or the body ends.
    async fn read_up_to<R: AsyncBufRead + Unpin>(
        &mut self,
        rd: &mut R,
        limit: usize,
    ) -> std::io::Result<()> {
        while (self.read as usize) < limit {
            let left = limit - self.read as usize;
            if self.next(rd, left.min(64 << 10)).await?.is_none() {
                break;
            }
        }
        Ok(())
    }

    /// Reads the rest of the body and drops it.
    async fn drain<R: AsyncBufRead + Unpin>(&mut self, rd: &mut R) -> std::io::Result<()> {
        while self.next(rd, 64 << 10).await?.is_some() {}
        Ok(())
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

/// Request headers not passed on (hop by hop; the body framing is redone by the client).
const HOP_BY_HOP: &[&str] = &[
    "host",
    "connection",
    "transfer-encoding",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "proxy-connection",
    "expect",
];

type Forwarded = (u16, Vec<(String, String)>, Vec<u8>);

/// One piece of a request body on its way upstream, or the error that cut the body short.
type Piece = std::io::Result<Vec<u8>>;

/// Forwards one request, streaming its body from `rd` as it is read (one piece in flight,
/// so the registry's pace is hoist's pace).
async fn forward<R: AsyncBufRead + Unpin>(
    ctx: &Ctx,
    head: &Head,
    rd: &mut R,
    body: &mut Body,
    throttle: Option<(usize, Duration)>,
) -> Result<Forwarded, String> {
    let method = reqwest::Method::from_bytes(head.method.as_bytes()).map_err(|e| e.to_string())?;
    let has_body = matches!(head.body_kind(), BodyKind::Chunked)
        || matches!(head.body_kind(), BodyKind::Length(n) if n > 0);
    let (tx, rx) = tokio::sync::mpsc::channel::<Piece>(1);
    let req = upstream_request(ctx, head, &method, has_body.then_some(rx));
    let pump = async {
        if !has_body {
            drop(tx);
            return Ok(());
        }
        pump_body(rd, body, tx, throttle).await
    };
    let (pumped, sent) = tokio::join!(pump, send_upstream(req, &method));
    pumped.map_err(|e| format!("reading the request body: {e}"))?;
    sent
}

/// The request to the registry: `head`'s method, target and end-to-end headers, with the
/// pieces arriving on `body` as its body (an empty body for a POST, PUT or PATCH without one).
fn upstream_request(
    ctx: &Ctx,
    head: &Head,
    method: &reqwest::Method,
    body: Option<tokio::sync::mpsc::Receiver<Piece>>,
) -> reqwest::RequestBuilder {
    let mut req = ctx
        .client
        .request(method.clone(), format!("{}{}", ctx.upstream, head.target));
    for (k, v) in &head.headers {
        if !HOP_BY_HOP.contains(&k.to_ascii_lowercase().as_str()) {
            req = req.header(k.as_str(), v.as_str());
        }
    }
    match body {
        Some(rx) => {
            let stream = futures_util::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|item| (item, rx))
            });
            req.body(reqwest::Body::wrap_stream(stream))
        }
        None if matches!(
            *method,
            reqwest::Method::POST | reqwest::Method::PUT | reqwest::Method::PATCH
        ) =>
        {
            req.body(Vec::new())
        }
        None => req,
    }
}

/// Reads the request body a piece at a time (`throttle`'s chunk and pause, or 64 KiB without
/// pause) and sends each piece upstream; a read error is sent on too, so the upstream request
/// fails rather than ends.
async fn pump_body<R: AsyncBufRead + Unpin>(
    rd: &mut R,
    body: &mut Body,
    tx: tokio::sync::mpsc::Sender<Piece>,
    throttle: Option<(usize, Duration)>,
) -> std::io::Result<()> {
    let step = throttle.map(|t| t.0).unwrap_or(64 << 10);
    let mut tx = Some(tx);
    loop {
        match body.next(rd, step).await {
            Ok(Some(piece)) => {
                // The registry gone (it answered early): keep reading the body so the
                // connection stays in step, and drop it.
                if let Some(t) = &tx
                    && t.send(Ok(piece)).await.is_err()
                {
                    tx = None;
                }
                if let Some((_, pause)) = throttle {
                    tokio::time::sleep(pause).await;
                }
            }
            Ok(None) => return Ok(()),
            Err(e) => {
                if let Some(t) = &tx {
                    let _ = t
                        .send(Err(std::io::Error::new(e.kind(), e.to_string())))
                        .await;
                }
                return Err(e);
            }
        }
    }
}

/// Sends the request and collects the registry's answer: its status, its end-to-end headers
/// with a `content-length` for the collected body (the registry's own for HEAD), and the body.
async fn send_upstream(
    req: reqwest::RequestBuilder,
    method: &reqwest::Method,
) -> Result<Forwarded, String> {
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
    if *method == reqwest::Method::HEAD {
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

/// One proxied connection: its two halves.
struct Conn {
    rd: tokio::io::BufReader<tokio::net::tcp::OwnedReadHalf>,
    wr: tokio::net::tcp::OwnedWriteHalf,
}

/// One request on a connection: which it is, its head, and its body as read so far.
struct Exchange<'a> {
    ctx: &'a Ctx,
    idx: usize,
    head: Head,
    body: Body,
}

/// After an exchange: serve the next request on the connection, or close it.
enum After {
    Next,
    Close,
}

async fn serve_conn(sock: tokio::net::TcpStream, ctx: Arc<Ctx>) {
    let _ = sock.set_nodelay(true);
    let (rd, wr) = sock.into_split();
    let mut conn = Conn {
        rd: tokio::io::BufReader::with_capacity(64 << 10, rd),
        wr,
    };
    loop {
        let head = match read_head(&mut conn.rd).await {
            Ok(Some(h)) => h,
            _ => return,
        };
        let (idx, fault) = ctx.decide(&head);
        let body = Body::new(head.body_kind());
        let mut ex = Exchange {
            ctx: &ctx,
            idx,
            head,
            body,
        };
        let after = match fault {
            Some(Fault::Reply {
                status,
                headers,
                body,
            }) => reply(&mut conn, &mut ex, status, headers, &body).await,
            Some(Fault::ReplyMidBody { after, status }) => {
                reply_mid_body(&mut conn, &mut ex, after, status).await
            }
            Some(Fault::AcceptMidBody { after }) => {
                accept_mid_body(&mut conn, &mut ex, after).await
            }
            Some(Fault::DropMidBody { after }) => {
                // Both halves dropped: the socket closes (reset, with data unread).
                ex.read_up_to(&mut conn, after).await;
                After::Close
            }
            Some(Fault::Stall) => {
                let _ = ex.body.drain(&mut conn.rd).await;
                ex.ctx.read(ex.idx, ex.body.read);
                tokio::time::sleep(STALL_MAX).await;
                After::Close
            }
            Some(Fault::StallMidBody { after }) => {
                // Stop reading: hoist's writes fill the socket buffers and then wait.
                ex.read_up_to(&mut conn, after).await;
                tokio::time::sleep(STALL_MAX).await;
                After::Close
            }
            other => pass_on(&mut conn, &mut ex, other.as_ref()).await,
        };
        if matches!(after, After::Close) || ex.head.wants_close() {
            return;
        }
    }
}

impl Exchange<'_> {
    /// Reads up to `after` body bytes and records what was read.
    async fn read_up_to(&mut self, conn: &mut Conn, after: usize) {
        let _ = self.body.read_up_to(&mut conn.rd, after).await;
        self.ctx.read(self.idx, self.body.read);
    }
}

/// Reads the whole request, then answers the injected response.
async fn reply(
    conn: &mut Conn,
    ex: &mut Exchange<'_>,
    status: u16,
    mut headers: Vec<(String, String)>,
    text: &str,
) -> After {
    let drained = ex.body.drain(&mut conn.rd).await;
    ex.ctx.read(ex.idx, ex.body.read);
    if drained.is_err() {
        return After::Close;
    }
    headers.push(("Content-Length".into(), text.len().to_string()));
    let body = if ex.head.method == "HEAD" {
        &[][..]
    } else {
        text.as_bytes()
    };
    if write_response(&mut conn.wr, status, &headers, body)
        .await
        .is_err()
    {
        return After::Close;
    }
    ex.ctx.answered(ex.idx, status);
    After::Next
}

/// Answers `status` with a registry error in the middle of the body, then closes.
async fn reply_mid_body(
    conn: &mut Conn,
    ex: &mut Exchange<'_>,
    after: usize,
    status: u16,
) -> After {
    ex.read_up_to(conn, after).await;
    let text = r#"{"errors":[{"code":"UNKNOWN","message":"unknown error","detail":"injected failure in the middle of the body"}]}"#;
    let headers = vec![
        ("Content-Type".to_string(), "application/json".to_string()),
        ("Content-Length".to_string(), text.len().to_string()),
        ("Connection".to_string(), "close".to_string()),
    ];
    let _ = write_response(&mut conn.wr, status, &headers, text.as_bytes()).await;
    close_after_answer(conn, ex, status).await
}

/// Answers `202 Accepted` in the middle of the body, as if all of it had arrived, then closes.
async fn accept_mid_body(conn: &mut Conn, ex: &mut Exchange<'_>, after: usize) -> After {
    ex.read_up_to(conn, after).await;
    let location = format!("{}{}", ex.ctx.base, ex.head.target);
    let headers = vec![
        ("Location".to_string(), location),
        (
            "Range".to_string(),
            format!("0-{}", ex.body.read.max(1) - 1),
        ),
        ("Content-Length".to_string(), "0".to_string()),
        ("Connection".to_string(), "close".to_string()),
    ];
    let _ = write_response(&mut conn.wr, 202, &headers, b"").await;
    close_after_answer(conn, ex, 202).await
}

/// Shuts the write half and swallows what the client still sends, so it reads the answer,
/// not a reset.
async fn close_after_answer(conn: &mut Conn, ex: &Exchange<'_>, status: u16) -> After {
    let _ = conn.wr.shutdown().await;
    ex.ctx.answered(ex.idx, status);
    let mut sink = tokio::io::sink();
    let swallow = tokio::io::copy(&mut conn.rd, &mut sink);
    let _ = tokio::time::timeout(Duration::from_secs(5), swallow).await;
    After::Close
}

/// Forwards the request upstream (throttled, or with a foreign Location, when asked) and
/// relays the answer.
async fn pass_on(conn: &mut Conn, ex: &mut Exchange<'_>, fault: Option<&Fault>) -> After {
    let throttle = match fault {
        Some(Fault::Throttle { chunk, pause }) => Some((*chunk, *pause)),
        _ => None,
    };
    let result = forward(ex.ctx, &ex.head, &mut conn.rd, &mut ex.body, throttle).await;
    ex.ctx.read(ex.idx, ex.body.read);
    let (status, mut headers, body) = match result {
        Ok(r) => r,
        // The body broke off: nothing sensible to answer.
        Err(_) if !ex.body.done => return After::Close,
        Err(e) => (
            502,
            vec![("content-length".into(), e.len().to_string())],
            e.into_bytes(),
        ),
    };
    for (k, v) in headers.iter_mut() {
        if k.eq_ignore_ascii_case("location") {
            if let Some(rest) = v.strip_prefix(&ex.ctx.upstream) {
                *v = format!("{}{rest}", ex.ctx.base);
            }
            if let Some(Fault::ForeignLocation(foreign)) = fault {
                let path = v.strip_prefix(&ex.ctx.base).unwrap_or(v.as_str());
                *v = format!("{foreign}{path}");
            }
        }
    }
    if write_response(&mut conn.wr, status, &headers, &body)
        .await
        .is_err()
    {
        return After::Close;
    }
    ex.ctx.answered(ex.idx, status);
    After::Next
}
