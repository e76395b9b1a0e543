//! Forwarding to the registry: the upstream request built from the client's head, its body
//! pumped upstream a piece at a time as it is read (backpressure), and the answer collected.

use std::time::Duration;

use tokio::io::AsyncBufRead;

use super::http::{Body, BodyKind, Head};
use super::state::Ctx;

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
pub(super) async fn forward<R: AsyncBufRead + Unpin>(
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
