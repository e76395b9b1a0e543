//! Parallel gzip, pigz-style: the input is cut into fixed blocks, each deflated on its own
//! pool thread with a sync flush (so blocks end on a byte boundary and simply concatenate), and
//! the pieces are emitted in order inside one gzip member, CRC-32s combined. One member, so
//! every gzip reader reads it; output depends only on input, level and block size, so the
//! same layer always gets the same digest.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex, OnceLock, mpsc};

use bytes::Bytes;

/// Bytes per block. Small enough to keep memory low per layer, large enough that the lost
/// dictionary at each boundary costs well under 1 % of ratio.
pub const BLOCK: usize = 512 << 10;

type Piece = io::Result<(Vec<u8>, crc32fast::Hasher, u64)>;

/// One block to deflate, and where to answer.
struct Job {
    level: u32,
    seq: u64,
    block: Vec<u8>,
    reply: mpsc::Sender<(u64, Piece)>,
}

/// The process-wide compression threads, one per core: concurrent pushes share them, so
/// threads and buffers do not multiply with the number of uploads.
struct Pool {
    jobs: Mutex<mpsc::Sender<Job>>,
    threads: usize,
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let threads = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .min(8);
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("hoist-gzip-{i}"))
                .spawn(move || {
                    loop {
                        let job = match rx.lock().expect("pool lock").recv() {
                            Ok(job) => job,
                            Err(_) => return,
                        };
                        let mut crc = crc32fast::Hasher::new();
                        crc.update(&job.block);
                        let piece = deflate_block(job.level, &job.block)
                            .map(|d| (d, crc, job.block.len() as u64));
                        let _ = job.reply.send((job.seq, piece));
                    }
                })
                .expect("spawning a compression thread");
        }
        Pool {
            jobs: Mutex::new(tx),
            threads,
        }
    })
}

/// A streaming gzip compressor whose blocks are deflated by the shared pool.
pub struct ParallelGzip {
    level: u32,
    reply_tx: mpsc::Sender<(u64, Piece)>,
    reply_rx: mpsc::Receiver<(u64, Piece)>,
    /// Pieces that came back ahead of their turn.
    early: BTreeMap<u64, Piece>,
    buf: Vec<u8>,
    submitted: u64,
    collected: u64,
    crc: crc32fast::Hasher,
    len: u64,
    started: bool,
}

impl ParallelGzip {
    pub fn new(level: u32) -> ParallelGzip {
        let (reply_tx, reply_rx) = mpsc::channel();
        ParallelGzip {
            level,
            reply_tx,
            reply_rx,
            early: BTreeMap::new(),
            buf: Vec::with_capacity(BLOCK),
            submitted: 0,
            collected: 0,
            crc: crc32fast::Hasher::new(),
            len: 0,
            started: false,
        }
    }

    /// Takes input; returns the compressed pieces that are ready, in order.
    pub fn push(&mut self, mut input: &[u8]) -> io::Result<Vec<Bytes>> {
        let mut out = Vec::new();
        if !self.started {
            self.started = true;
            // gzip header: deflate, no flags, no mtime, unknown OS: the same for every run.
            out.push(Bytes::from_static(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]));
        }
        while !input.is_empty() {
            let take = (BLOCK - self.buf.len()).min(input.len());
            self.buf.extend_from_slice(&input[..take]);
            input = &input[take..];
            if self.buf.len() == BLOCK {
                let block = std::mem::replace(&mut self.buf, Vec::with_capacity(BLOCK));
                self.submit(block, &mut out)?;
            }
        }
        Ok(out)
    }

    /// Ends the stream: the last block, an empty final deflate block, the trailer.
    pub fn finish(mut self) -> io::Result<Vec<Bytes>> {
        let mut out = self.push(&[])?;
        if !self.buf.is_empty() {
            let block = std::mem::take(&mut self.buf);
            self.submit(block, &mut out)?;
        }
        while self.collected < self.submitted {
            self.collect(&mut out)?;
        }
        let mut tail = vec![0x03, 0x00];
        tail.extend_from_slice(&self.crc.clone().finalize().to_le_bytes());
        tail.extend_from_slice(&(self.len as u32).to_le_bytes());
        out.push(Bytes::from(tail));
        Ok(out)
    }

    fn submit(&mut self, block: Vec<u8>, out: &mut Vec<Bytes>) -> io::Result<()> {
        let pool = pool();
        // At most two blocks per pool thread in flight: bounded memory, every thread busy.
        while self.submitted - self.collected >= 2 * pool.threads as u64 {
            self.collect(out)?;
        }
        let job = Job {
            level: self.level,
            seq: self.submitted,
            block,
            reply: self.reply_tx.clone(),
        };
        pool.jobs
            .lock()
            .expect("pool lock")
            .send(job)
            .map_err(|_| io::Error::other("compression pool stopped"))?;
        self.submitted += 1;
        Ok(())
    }

    fn collect(&mut self, out: &mut Vec<Bytes>) -> io::Result<()> {
        let piece = loop {
            if let Some(p) = self.early.remove(&self.collected) {
                break p;
            }
            let (seq, p) = self
                .reply_rx
                .recv()
                .map_err(|_| io::Error::other("compression pool stopped"))?;
            if seq == self.collected {
                break p;
            }
            self.early.insert(seq, p);
        };
        let (deflated, crc, len) = piece?;
        self.crc.combine(&crc);
        self.len += len;
        self.collected += 1;
        out.push(Bytes::from(deflated));
        Ok(())
    }
}

/// Raw deflate of one block, ended with a sync flush (byte-aligned, not final): ISA-L for
/// level 1 where the build has it, zlib-rs otherwise.
fn deflate_block(level: u32, block: &[u8]) -> io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(block.len() / 2 + 1024);
    #[cfg(feature = "isal")]
    if level == 1 {
        super::isal::deflate_sync(block, &mut out)?;
        return Ok(out);
    }
    zlib_deflate_sync(level, block, &mut out)?;
    Ok(out)
}

/// Appends `input` deflated by zlib-rs and ended with a sync flush.
pub(super) fn zlib_deflate_sync(level: u32, input: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    let mut c = flate2::Compress::new(flate2::Compression::new(level), false);
    out.reserve(input.len() / 2 + 1024);
    loop {
        let consumed = c.total_in() as usize;
        c.compress_vec(&input[consumed..], out, flate2::FlushCompress::Sync)
            .map_err(io::Error::other)?;
        if c.total_in() as usize == input.len() && out.len() < out.capacity() {
            return Ok(());
        }
        out.reserve(out.capacity().max(4096));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn compress(data: &[u8], piece: usize) -> Vec<u8> {
        let mut z = ParallelGzip::new(1);
        let mut out = Vec::new();
        for c in data.chunks(piece) {
            for b in z.push(c).unwrap() {
                out.extend_from_slice(&b);
            }
        }
        for b in z.finish().unwrap() {
            out.extend_from_slice(&b);
        }
        out
    }

    #[test]
    fn round_trips_through_a_single_member_reader() {
        let data: Vec<u8> = (0..(3 * BLOCK + 12345) as u32)
            .map(|i| ((i * 31) % 251) as u8 ^ (i >> 13) as u8)
            .collect();
        let gz = compress(&data, 100_000);
        // GzDecoder reads exactly one member: the whole output must be one.
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut back)
            .unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn output_depends_only_on_input() {
        let data: Vec<u8> = (0..(2 * BLOCK + 7) as u32)
            .map(|i| (i % 97) as u8)
            .collect();
        assert_eq!(compress(&data, 4096), compress(&data, 1 << 20));
    }

    #[test]
    fn empty_input_is_a_valid_gzip() {
        let gz = compress(&[], 10);
        let mut back = Vec::new();
        flate2::read::GzDecoder::new(&gz[..])
            .read_to_end(&mut back)
            .unwrap();
        assert!(back.is_empty());
        let gz = std::process::Command::new("gzip")
            .arg("-t")
            .stdin(std::process::Stdio::piped())
            .spawn();
        if let Ok(mut child) = gz {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(&compress(b"hello", 10))
                .unwrap();
            assert!(
                child.wait().unwrap().success(),
                "gzip -t rejects the output"
            );
        }
    }
}
