//! HTTP/1.1 plumbing: a request head read off the socket, a request body read piece by piece
//! (chunked transfer decoded) so it can be streamed on, and a response written back.

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

/// A request's first line and headers.
pub(super) struct Head {
    pub(super) method: String,
    pub(super) target: String,
    pub(super) headers: Vec<(String, String)>,
}

/// How a request body is framed.
#[derive(Clone, Copy)]
pub(super) enum BodyKind {
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

    pub(super) fn body_kind(&self) -> BodyKind {
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

    pub(super) fn wants_close(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// Reads a request head; `None` when the connection closed before one began.
pub(super) async fn read_head<R: AsyncBufRead + Unpin>(
    rd: &mut R,
) -> std::io::Result<Option<Head>> {
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
pub(super) struct Body {
    chunked: bool,
    remaining: u64,
    first_chunk: bool,
    pub(super) done: bool,
    pub(super) read: u64,
}

impl Body {
    pub(super) fn new(kind: BodyKind) -> Body {
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
    pub(super) async fn next<R: AsyncBufRead + Unpin>(
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
    pub(super) async fn read_up_to<R: AsyncBufRead + Unpin>(
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
    pub(super) async fn drain<R: AsyncBufRead + Unpin>(
        &mut self,
        rd: &mut R,
    ) -> std::io::Result<()> {
        while self.next(rd, 64 << 10).await?.is_some() {}
        Ok(())
    }
}

/// Writes a whole response: status line, headers as given, body.
pub(super) async fn write_response<W: tokio::io::AsyncWrite + Unpin>(
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
