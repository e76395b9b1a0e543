//! Reading one tar entry's body: its first bytes (to sniff), the rest into memory (small
//! documents), into a blob job's channel (everything else), or into nothing.

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

use super::error::PushError;
use crate::archive::ArchiveError;
use crate::archive::input::CHUNK;

/// Bytes read to sniff an entry (enough for a tar header).
const HEAD: u64 = 1024;

/// Reads the first bytes of an entry.
pub(super) async fn head<R: AsyncRead + Unpin>(
    entry: &mut R,
    size: u64,
    path: &str,
) -> Result<Bytes, PushError> {
    let target = size.min(HEAD) as usize;
    let cap = size.min(CHUNK as u64) as usize;
    let mut buf = BytesMut::with_capacity(cap);
    while buf.len() < target {
        let n = (&mut *entry)
            .take((cap - buf.len()) as u64)
            .read_buf(&mut buf)
            .await
            .map_err(|e| read_error(path, e))?;
        if n == 0 {
            break;
        }
    }
    Ok(buf.freeze())
}

/// Reads the rest of an entry into memory, after `head`.
pub(super) async fn rest<R: AsyncRead + Unpin>(
    entry: &mut R,
    head: Bytes,
    size: u64,
    path: &str,
) -> Result<Bytes, PushError> {
    let mut buf = Vec::with_capacity(size as usize);
    buf.extend_from_slice(&head);
    entry
        .read_to_end(&mut buf)
        .await
        .map_err(|e| read_error(path, e))?;
    Ok(Bytes::from(buf))
}

/// Reads an entry and drops it.
pub(super) async fn skip<R: AsyncRead + Unpin>(entry: &mut R, path: &str) -> Result<(), PushError> {
    tokio::io::copy(entry, &mut tokio::io::sink())
        .await
        .map_err(|e| read_error(path, e))?;
    Ok(())
}

/// Why feeding a blob job stopped.
pub(super) enum Fed {
    /// The job stopped taking bytes: its own error says why.
    JobGone,
    /// The archive could not be read.
    Read(PushError),
}

/// Moves an entry's bytes, `head` first, into a blob job.
pub(super) async fn feed<R: AsyncRead + Unpin>(
    entry: &mut R,
    head: Bytes,
    tx: &mpsc::Sender<Bytes>,
    path: &str,
) -> Result<(), Fed> {
    if !head.is_empty() && tx.send(head).await.is_err() {
        return Err(Fed::JobGone);
    }
    loop {
        let mut buf = BytesMut::with_capacity(CHUNK);
        let n = entry
            .read_buf(&mut buf)
            .await
            .map_err(|e| Fed::Read(read_error(path, e)))?;
        if n == 0 {
            return Ok(());
        }
        if tx.send(buf.freeze()).await.is_err() {
            return Err(Fed::JobGone);
        }
    }
}

fn read_error(path: &str, e: std::io::Error) -> PushError {
    ArchiveError::Malformed {
        at: format!("in entry {path:?}"),
        detail: e.to_string(),
    }
    .into()
}
