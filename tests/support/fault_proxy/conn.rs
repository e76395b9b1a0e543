//! One proxied connection: requests read off it one after another, each matched against the
//! rules, then forwarded (and its answer relayed, its Location rewritten) or met with its fault.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::forward::forward;
use super::http::{Body, Head, read_head, write_response};
use super::rules::Fault;
use super::state::Ctx;

/// How long a stalled request is held before the proxy gives up on it (bounds every stall).
const STALL_MAX: Duration = Duration::from_secs(120);

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

pub(super) async fn serve_conn(sock: tokio::net::TcpStream, ctx: Arc<Ctx>) {
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
