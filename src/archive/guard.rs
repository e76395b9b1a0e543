//! A guard in front of the tar reader. The reader buffers a GNU long name or link (`L`, `K`)
//! and a PAX record set (`x`) whole before anyone can look at them: a 512 MiB long name would
//! be held in memory before the name-length check ran. The guard follows the stream's block
//! layout itself and refuses an oversize extension as its header goes by, before a byte of
//! it is buffered; it also refuses sparse entries (GNU `S`, and PAX `GNU.sparse.*`), whose
//! layout it does not follow. It keeps the first 512 bytes, to judge a first block that is
//! not a tar header.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

use super::ArchiveError;

const BLOCK: usize = 512;

/// Room a PAX record set gets beyond the longest name: its other records.
const PAX_EXTRA: u64 = 4096;

/// What the guard saw: the stream's first block, and why it stopped the stream.
#[derive(Default)]
pub struct Seen {
    pub head: Vec<u8>,
    pub fault: Option<ArchiveError>,
}

/// See the module docs.
pub struct Guard<R> {
    inner: R,
    seen: Arc<Mutex<Seen>>,
    /// The largest extension (long name, long link target, PAX records) allowed.
    max_extension: u64,
    /// The header being assembled.
    header: Vec<u8>,
    /// Bytes of the current entry (data and padding) still to pass.
    skip: u64,
    /// The PAX records of the current `x` entry, kept to find `size`.
    pax: Option<Vec<u8>>,
    /// A `size` a PAX header set for the next entry.
    next_size: Option<u64>,
    /// Entries seen, for messages.
    entries: u64,
}

impl<R> Guard<R> {
    pub fn new(inner: R, max_extension: u64) -> (Guard<R>, Arc<Mutex<Seen>>) {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let guard = Guard {
            inner,
            seen: seen.clone(),
            max_extension,
            header: Vec::with_capacity(BLOCK),
            skip: 0,
            pax: None,
            next_size: None,
            entries: 0,
        };
        (guard, seen)
    }

    /// Follows the block layout over newly read bytes.
    fn track(&mut self, mut new: &[u8]) -> Result<(), ArchiveError> {
        while !new.is_empty() {
            if self.skip > 0 {
                let n = new.len().min(self.skip as usize);
                if let Some(pax) = self.pax.as_mut() {
                    pax.extend_from_slice(&new[..n]);
                }
                self.skip -= n as u64;
                new = &new[n..];
                if self.skip == 0 {
                    self.pax_done()?;
                }
                continue;
            }
            let n = new.len().min(BLOCK - self.header.len());
            self.header.extend_from_slice(&new[..n]);
            new = &new[n..];
            if self.header.len() == BLOCK {
                let header = std::mem::take(&mut self.header);
                self.header_done(&header)?;
            }
        }
        Ok(())
    }

    fn header_done(&mut self, h: &[u8]) -> Result<(), ArchiveError> {
        if h.iter().all(|&b| b == 0) {
            return Ok(());
        }
        if !checksum_ok(h) {
            // Not a header at all: the reader says so, and better (not a tar, or broken).
            self.skip = u64::MAX;
            return Ok(());
        }
        self.entries += 1;
        let typeflag = h[156];
        let ustar =
            parse_size(&h[124..136]).ok_or_else(|| self.bad("its size field is not a number"))?;
        let extension = matches!(typeflag, b'L' | b'K' | b'x' | b'g');
        let size = if extension {
            ustar
        } else {
            self.next_size.take().unwrap_or(ustar)
        };
        // A PAX record set holds more than a name (mtime, ownership): a little more room.
        let max = match typeflag {
            b'x' | b'g' => self.max_extension + PAX_EXTRA,
            _ => self.max_extension,
        };
        if extension && size > max {
            return Err(self.bad(&format!(
                "its {} extension holds {size} bytes, over the {max} allowed (limits.path_bytes)",
                typeflag as char
            )));
        }
        if typeflag == b'S' {
            return Err(ArchiveError::EntryHeader {
                path: name(h),
                reason: "sparse entries are not accepted".into(),
            });
        }
        // Rounded up to whole blocks; a size within a block of 2^64 has no such length
        // (the reader refuses it too: the two must not disagree on where the next header is).
        self.skip = size
            .div_ceil(BLOCK as u64)
            .checked_mul(BLOCK as u64)
            .ok_or_else(|| self.bad(&format!("its size {size} is larger than any stream")))?;
        self.pax = (typeflag == b'x').then(Vec::new);
        if self.skip == 0 {
            self.pax_done()?;
        }
        Ok(())
    }

    /// The records of a PAX header are all here: note a size for the next entry, and refuse
    /// PAX sparse files.
    fn pax_done(&mut self) -> Result<(), ArchiveError> {
        let Some(pax) = self.pax.take() else {
            return Ok(());
        };
        let records = pax_records(&pax);
        for &(key, value) in &records {
            if key.starts_with(b"GNU.sparse.") {
                let path = records
                    .iter()
                    .find(|(k, _)| *k == b"path" || *k == b"GNU.sparse.name");
                return Err(ArchiveError::EntryHeader {
                    path: path
                        .map_or_else(|| format!("(header {})", self.entries), |(_, v)| shown(v)),
                    reason: "sparse entries are not accepted".into(),
                });
            }
            if key == b"size" {
                let size = std::str::from_utf8(value).ok().and_then(|v| v.parse().ok());
                self.next_size =
                    Some(size.ok_or_else(|| self.bad("its PAX size is not a number"))?);
            }
        }
        Ok(())
    }

    fn bad(&self, reason: &str) -> ArchiveError {
        ArchiveError::EntryHeader {
            path: format!("(header {})", self.entries),
            reason: reason.to_string(),
        }
    }
}

/// The header's checksum (bytes 148..156 counted as spaces) matches.
fn checksum_ok(h: &[u8]) -> bool {
    let stored = parse_size(&h[148..156]);
    let sum: u64 = h
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u64::from(b)
            }
        })
        .sum();
    stored == Some(sum)
}

/// An entry's ustar name (prefix and name), for messages.
fn name(h: &[u8]) -> String {
    let field = |r: std::ops::Range<usize>| {
        let f = &h[r];
        let end = f.iter().position(|&b| b == 0).unwrap_or(f.len());
        f[..end].to_vec()
    };
    let (prefix, name) = (field(345..500), field(0..100));
    if &h[257..262] == b"ustar" && !prefix.is_empty() {
        return shown(&[prefix, b"/".to_vec(), name].concat());
    }
    shown(&name)
}

fn shown(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).chars().take(300).collect()
}

/// `len key=value\n` records; stops at the first malformed one (the reader refuses those).
fn pax_records(mut data: &[u8]) -> Vec<(&[u8], &[u8])> {
    let mut out = Vec::new();
    while let Some(space) = data.iter().position(|&b| b == b' ') {
        let Some(len) = std::str::from_utf8(&data[..space])
            .ok()
            .and_then(|l| l.parse::<usize>().ok())
        else {
            break;
        };
        if len <= space + 1 || len > data.len() {
            break;
        }
        let record = &data[space + 1..len - 1];
        if let Some(eq) = record.iter().position(|&b| b == b'=') {
            out.push((&record[..eq], &record[eq + 1..]));
        }
        data = &data[len..];
    }
    out
}

/// A tar numeric field: octal (NUL or space terminated), or GNU base-256.
fn parse_size(field: &[u8]) -> Option<u64> {
    if field[0] & 0x80 != 0 {
        let mut v: u64 = u64::from(field[0] & 0x7f);
        for &b in &field[1..] {
            v = v.checked_mul(256)?.checked_add(u64::from(b))?;
        }
        return Some(v);
    }
    let text = std::str::from_utf8(field).ok()?;
    let digits = text.trim_matches(|c: char| c == '\0' || c == ' ');
    if digits.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(digits, 8).ok()
}

impl<R: AsyncRead + Unpin> AsyncRead for Guard<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        std::task::ready!(Pin::new(&mut self.inner).poll_read(cx, buf))?;
        let new = &buf.filled()[before..];
        let this = &mut *self;
        {
            let mut seen = this.seen.lock().expect("guard lock");
            let take = new.len().min(BLOCK.saturating_sub(seen.head.len()));
            seen.head.extend_from_slice(&new[..take]);
        }
        if let Err(e) = this.track(new) {
            let message = e.to_string();
            this.seen.lock().expect("guard lock").fault = Some(e);
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, message)));
        }
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &[u8], typeflag: u8, size: u64) -> Vec<u8> {
        let mut h = vec![0u8; BLOCK];
        h[..name.len()].copy_from_slice(name);
        let size = format!("{size:011o}\0");
        h[124..136].copy_from_slice(size.as_bytes());
        h[156] = typeflag;
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum::<u32>() + 8 * 32;
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        h
    }

    fn run(stream: &[u8], cap: u64) -> Result<(), ArchiveError> {
        let (mut g, _) = Guard::new(tokio::io::empty(), cap);
        for chunk in stream.chunks(100) {
            g.track(chunk)?;
        }
        Ok(())
    }

    #[test]
    fn an_oversize_long_name_is_refused_at_its_header() {
        let h = header(b"././@LongLink", b'L', 512 << 20);
        let err = run(&h, 4096).unwrap_err();
        assert!(err.to_string().contains("over the 4096 allowed"), "{err}");
        assert!(run(&header(b"x", b'K', 5000), 4096).is_err());
        assert!(run(&header(b"x", b'x', 9000), 4096).is_err());
    }

    #[test]
    fn follows_entries_and_pax_sizes() {
        let mut s = header(b"a", b'0', 600);
        s.extend(vec![7u8; 1024]);
        let record = b"13 size=1000\n";
        s.extend(header(b"pax", b'x', record.len() as u64));
        let mut data = record.to_vec();
        data.resize(BLOCK, 0);
        s.extend(data);
        // ustar says 0, PAX says 1000: the guard must skip 1024, then see the long name.
        s.extend(header(b"b", b'0', 0));
        s.extend(vec![b'L'; 1024]);
        s.extend(header(b"././@LongLink", b'L', 9999));
        assert!(run(&s, 4096).unwrap_err().to_string().contains("9999"));
    }

    #[test]
    fn sparse_entries_are_refused() {
        assert!(run(&header(b"s", b'S', 10), 4096).is_err());
        let record = b"22 GNU.sparse.major=1\n";
        let mut s = header(b"pax", b'x', record.len() as u64);
        let mut data = record.to_vec();
        data.resize(BLOCK, 0);
        s.extend(data);
        assert!(run(&s, 4096).is_err());
    }

    #[test]
    fn garbage_is_left_to_the_reader() {
        let mut junk = vec![0xabu8; 4096];
        junk[0] = 1;
        assert!(run(&junk, 4096).is_ok());
    }

    #[test]
    fn a_size_within_a_block_of_u64_max_is_refused_not_overflowed() {
        let mut h = header(b"huge", b'0', 0);
        h[124..136].copy_from_slice(&[
            0x80, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        ]);
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        let err = run(&h, 4096).unwrap_err();
        assert!(err.to_string().contains("larger than any stream"), "{err}");
        let record = format!("29 size={}\n", u64::MAX);
        let mut s = header(b"pax", b'x', record.len() as u64);
        let mut data = record.into_bytes();
        data.resize(BLOCK, 0);
        s.extend(data);
        s.extend(header(b"huge", b'0', 0));
        assert!(run(&s, 4096).is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size(b"00000001750\0"), Some(1000));
        assert_eq!(parse_size(b"\0\0\0\0\0\0\0\0\0\0\0\0"), Some(0));
        let mut b256 = [0u8; 12];
        b256[0] = 0x80;
        b256[11] = 5;
        assert_eq!(parse_size(&b256), Some(5));
    }
}
