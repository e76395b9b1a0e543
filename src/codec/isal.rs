//! Level-1 deflate through ISA-L (Intel's storage acceleration library, by the maintained
//! `isal-rs` binding): about 1.9 times zlib-rs's speed per core here (`cargo bench --bench
//! pipeline`), with smaller output (the benchmark image's layers: 473 MB against 528 MB).
//!
//! `pgzip` needs every block to end with a sync flush (not final, byte-aligned) so that blocks
//! concatenate into one gzip member. The binding's safe API writes only whole streams, so each
//! piece of at most 64 KiB is deflated as a whole stream, which ISA-L writes as one dynamic
//! block (at level 1 it ends a block after 64 Ki tokens, and a piece has no more), and is then
//! made a sync-flushed one: its final bit is cleared, and an empty stored block follows its
//! end-of-block code, which is found from the block's own Huffman table. A piece ISA-L stores
//! (incompressible) is written as stored blocks; one that is otherwise not one dynamic block
//! whose end is certain (fixed codes for a short last piece) is deflated by zlib-rs. Either way
//! the bytes depend only on the input: the same layer gets the same digest every time
//! (`tests::output_is_pinned`).

use std::io;

/// The most input one piece holds: one ISA-L block.
const PIECE: usize = 64 << 10;

/// Appends `block`, deflated at level 1 and ended by a sync flush.
pub(super) fn deflate_sync(block: &[u8], out: &mut Vec<u8>) -> io::Result<()> {
    for piece in block.chunks(PIECE) {
        match deflate_piece(piece, out) {
            Piece::Deflated => {}
            Piece::Incompressible => store(piece, out),
            Piece::Other => super::pgzip::zlib_deflate_sync(1, piece, out)?,
        }
    }
    Ok(())
}

/// What became of a piece given to ISA-L.
#[derive(Debug, PartialEq)]
enum Piece {
    /// Appended, deflated and sync-flushed.
    Deflated,
    /// Not appended: ISA-L stored it (deflate would have made it larger).
    Incompressible,
    /// Not appended: not one dynamic block whose end is certain.
    Other,
}

/// Appends `piece` as stored blocks, not final (they end on a byte boundary by themselves).
fn store(piece: &[u8], out: &mut Vec<u8>) {
    for part in piece.chunks(u16::MAX as usize) {
        let len = part.len() as u16;
        out.push(0);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(part);
    }
}

/// Appends `piece` deflated by ISA-L and sync-flushed, where its output is one dynamic block
/// whose end is certain; otherwise leaves `out` as it was and says why.
fn deflate_piece(piece: &[u8], out: &mut Vec<u8>) -> Piece {
    let start = out.len();
    out.resize(start + piece.len() + piece.len() / 8 + 1024, 0);
    let level = isal::CompressionLevel::One;
    let written = isal::compress_into(piece, &mut out[start..], level, isal::Codec::Deflate);
    let stream = written.ok().filter(|&n| n > 0).map(|n| start..start + n);
    // BTYPE 00: ISA-L chose to store the piece.
    if stream.clone().is_some_and(|s| out[s.start] & 0b110 == 0) {
        out.truncate(start);
        return Piece::Incompressible;
    }
    match stream.and_then(|s| Some((s.end, sync_flush(&mut out[s])?))) {
        Some((end, tail)) => {
            out.truncate(end);
            out.extend_from_slice(tail);
            Piece::Deflated
        }
        None => {
            out.truncate(start);
            Piece::Other
        }
    }
}

/// Turns a deflate stream of one final dynamic block into a sync-flushed, non-final one:
/// clears the final bit and returns the bytes to append (an empty stored block).
fn sync_flush(stream: &mut [u8]) -> Option<&'static [u8]> {
    // BFINAL = 1, BTYPE = 2 (dynamic): the first block is the last, so the only one.
    if stream.first()? & 0b111 != 0b101 {
        return None;
    }
    let eob = end_of_block_code(stream)?;
    let end = eob_end(stream, &eob)?;
    stream[0] &= !1;
    // The stored block's 3 header bits fit in the padding, or take one more byte.
    Some(if stream.len() * 8 - end >= 3 {
        &[0, 0, 0xff, 0xff]
    } else {
        &[0, 0, 0, 0xff, 0xff]
    })
}

/// Where the block's end-of-block code ends: the one bit position in the last byte after which
/// only zero padding follows and before which the code stands. `None` if more than one fits.
fn eob_end(stream: &[u8], eob: &[bool]) -> Option<usize> {
    let end = stream.len() * 8;
    let mut fits = (end.saturating_sub(7)..=end).filter(|&p| {
        p >= eob.len()
            && (p..end).all(|i| !bit(stream, i))
            && eob
                .iter()
                .enumerate()
                .all(|(k, &b)| bit(stream, p - eob.len() + k) == b)
    });
    let first = fits.next()?;
    fits.next().is_none().then_some(first)
}

fn bit(stream: &[u8], i: usize) -> bool {
    stream[i / 8] >> (i % 8) & 1 == 1
}

/// The end-of-block code of the dynamic block at the start of `stream`, in stream order
/// (RFC 1951 3.2.7: the header's code lengths, then canonical codes).
fn end_of_block_code(stream: &[u8]) -> Option<Vec<bool>> {
    let mut bits = Bits { stream, pos: 3 };
    let literals = bits.take(5)? as usize + 257;
    let distances = bits.take(5)? as usize + 1;
    let code_lengths = bits.take(4)? as usize + 4;
    const ORDER: [usize; 19] = [
        16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
    ];
    let mut lengths_code = [0u8; 19];
    for &symbol in &ORDER[..code_lengths] {
        lengths_code[symbol] = bits.take(3)? as u8;
    }
    let lengths_code = Table7::new(&canonical(&lengths_code));
    let mut lengths = Vec::with_capacity(literals + distances);
    while lengths.len() < literals + distances {
        match bits.decode(&lengths_code)? {
            len @ 0..=15 => lengths.push(len as u8),
            16 => {
                let previous = *lengths.last()?;
                (0..3 + bits.take(2)?).for_each(|_| lengths.push(previous));
            }
            17 => (0..3 + bits.take(3)?).for_each(|_| lengths.push(0)),
            _ => (0..11 + bits.take(7)?).for_each(|_| lengths.push(0)),
        }
    }
    let (code, len) = *canonical(lengths.get(..literals)?).get(256)?;
    (len > 0).then(|| (0..len).rev().map(|i| code >> i & 1 == 1).collect())
}

/// The canonical Huffman code (code, length) of each symbol, from the symbols' code lengths.
fn canonical(lengths: &[u8]) -> Vec<(u32, u8)> {
    let mut count = [0u32; 16];
    lengths.iter().for_each(|&l| count[l as usize] += 1);
    count[0] = 0;
    let mut next = [0u32; 16];
    for len in 1..16 {
        next[len] = (next[len - 1] + count[len - 1]) << 1;
    }
    let mut code = |&l: &u8| {
        let c = next[l as usize];
        next[l as usize] += 1;
        (c, l)
    };
    lengths
        .iter()
        .map(|l| if *l == 0 { (0, 0) } else { code(l) })
        .collect()
}

/// A deflate stream read bit by bit, least significant bit of each byte first.
struct Bits<'a> {
    stream: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    /// An `n`-bit number, least significant bit first.
    fn take(&mut self, n: usize) -> Option<u32> {
        let value = self.peek(n);
        self.pos += n;
        (self.pos <= self.stream.len() * 8).then_some(value)
    }

    /// The next `n` bits without taking them; bits past the end read as zeros.
    fn peek(&self, n: usize) -> u32 {
        (0..n).fold(0, |value, i| {
            let bit = bit_at(self.stream, self.pos + i).unwrap_or(false);
            value | (bit as u32) << i
        })
    }

    /// One symbol of a Huffman code of at most 7 bits.
    fn decode(&mut self, table: &Table7) -> Option<usize> {
        let (symbol, len) = table.0[self.peek(7) as usize]?;
        self.pos += len as usize;
        (self.pos <= self.stream.len() * 8).then_some(symbol as usize)
    }
}

/// A Huffman code of at most 7 bits (the code-length code) as a table: the next 7 bits of the
/// stream, least significant first, give the symbol and its code's length.
struct Table7([Option<(u8, u8)>; 128]);

impl Table7 {
    fn new(codes: &[(u32, u8)]) -> Table7 {
        let mut table = [None; 128];
        for (symbol, &(code, len)) in codes.iter().enumerate() {
            if len == 0 || len > 7 {
                continue;
            }
            // Codes are packed most significant bit first: the first bit read is the top one.
            let first = (0..len).fold(0, |r, i| r | (code >> (len - 1 - i) & 1) << i) as usize;
            for rest in 0..1 << (7 - len) {
                table[first | rest << len] = Some((symbol as u8, len));
            }
        }
        Table7(table)
    }
}

fn bit_at(stream: &[u8], i: usize) -> Option<bool> {
    (i / 8 < stream.len()).then(|| bit(stream, i))
}

#[cfg(test)]
mod tests;
