use std::io::Read;

use super::*;
use crate::oci::digest::Digest;

/// Text-like bytes: compressible, so ISA-L writes a dynamic block.
fn text(len: usize) -> Vec<u8> {
    let words = [
        "layer ",
        "digest ",
        "manifest ",
        "blob ",
        "tar ",
        "sha256 ",
        "\n",
    ];
    let mut seed = 7u64;
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        out.extend_from_slice(words[(seed >> 33) as usize % words.len()].as_bytes());
        out.extend_from_slice(format!("{}", seed >> 50).as_bytes());
    }
    out.truncate(len);
    out
}

/// Bytes no compressor shrinks: ISA-L writes them stored, so zlib-rs takes them.
fn noise(len: usize) -> Vec<u8> {
    let mut seed = 11u64;
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

fn inflate_raw(deflated: &[u8]) -> Vec<u8> {
    let mut back = Vec::new();
    flate2::read::DeflateDecoder::new(deflated)
        .read_to_end(&mut back)
        .unwrap();
    back
}

/// A sync-flushed stream made final, as `pgzip` ends a member: an empty fixed-code block.
fn ended(mut deflated: Vec<u8>) -> Vec<u8> {
    deflated.extend_from_slice(&[0x03, 0x00]);
    deflated
}

#[test]
fn a_compressible_piece_is_deflated_by_isal_and_sync_flushed() {
    let piece = text(PIECE);
    let mut out = Vec::new();
    assert_eq!(deflate_piece(&piece, &mut out), Piece::Deflated);
    assert_eq!(
        &out[out.len() - 4..],
        &[0, 0, 0xff, 0xff],
        "no sync flush at the end"
    );
    assert_eq!(out[0] & 1, 0, "the block is still marked final");
    assert!(
        out.len() < piece.len() / 2,
        "{} bytes of {}",
        out.len(),
        piece.len()
    );
    assert_eq!(inflate_raw(&ended(out)), piece);
}

#[test]
fn an_incompressible_piece_is_stored_and_a_tiny_one_left_to_zlib() {
    let mut out = vec![1, 2, 3];
    assert_eq!(
        deflate_piece(&noise(PIECE), &mut out),
        Piece::Incompressible
    );
    assert_eq!(out, [1, 2, 3], "a refused piece left bytes behind");
    // ISA-L writes fixed codes for a few bytes: their end cannot be told from padding.
    assert_eq!(deflate_piece(b"hello hello hello", &mut out), Piece::Other);
    assert_eq!(out, [1, 2, 3]);
    let mut stored = Vec::new();
    deflate_sync(&noise(PIECE), &mut stored).unwrap();
    assert_eq!(
        stored.len(),
        PIECE + 2 * 5,
        "two stored blocks (at most 65535 bytes each)"
    );
    assert_eq!(inflate_raw(&ended(stored)), noise(PIECE));
}

#[test]
fn pieces_of_every_kind_concatenate_into_one_stream() {
    // Pieces of all three kinds: compressible (ISA-L), incompressible (stored), and a short
    // last one that ISA-L writes with fixed codes (zlib-rs).
    let mut block = text(2 * PIECE);
    block.extend(noise(PIECE));
    block.extend(b"hello hello hello");
    let kinds: Vec<Piece> = block
        .chunks(PIECE)
        .map(|piece| deflate_piece(piece, &mut Vec::new()))
        .collect();
    let expected = [
        Piece::Deflated,
        Piece::Deflated,
        Piece::Incompressible,
        Piece::Other,
    ];
    assert_eq!(kinds, expected);
    let mut out = Vec::new();
    deflate_sync(&block, &mut out).unwrap();
    assert_eq!(&out[out.len() - 4..], &[0, 0, 0xff, 0xff]);
    assert_eq!(inflate_raw(&ended(out)), block);
}

#[test]
fn the_end_of_block_code_is_read_from_the_blocks_own_table() {
    // Two inputs with different statistics get different tables; each end is found.
    for piece in [text(PIECE), text(5000), b"ab".repeat(20_000)] {
        let mut out = vec![0; PIECE * 2];
        let level = isal::CompressionLevel::One;
        let n = isal::compress_into(&piece, &mut out, level, isal::Codec::Deflate).unwrap();
        let stream = &out[..n];
        let eob = end_of_block_code(stream).expect("a dynamic block");
        assert!((1..=15).contains(&eob.len()));
        let end = eob_end(stream, &eob).expect("its end");
        assert!(
            end > n * 8 - 8 && end <= n * 8,
            "{end} is not in the last byte"
        );
    }
}

#[test]
fn an_end_that_two_places_fit_is_refused() {
    // Code "1": only bit 0 fits. Code "0": every zero bit of the padding fits.
    assert_eq!(eob_end(&[0b0000_0001], &[true]), Some(1));
    assert_eq!(eob_end(&[0b0000_0001], &[false]), None);
}

#[test]
fn output_is_pinned() {
    // The bytes of a layer are its digest: a change in ISA-L, in its code paths for this
    // CPU (AVX-512, AVX2, SSE give the same here) or in this module must show up here, not as
    // layers that change digest between pushes.
    let mut block = text(400_000);
    block.extend(noise(70_000));
    let mut out = Vec::new();
    deflate_sync(&block, &mut out).unwrap();
    assert_eq!(inflate_raw(&ended(out.clone())), block);
    assert_eq!(
        Digest::sha256_of(&out).to_string(),
        "sha256:11b45822c9c23c8a1c6c79c789a49bf8bd79548e83ef166e86299364bdcc9e9b"
    );
}
