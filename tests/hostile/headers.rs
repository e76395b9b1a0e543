//! Tar headers: PAX size smuggling, global and malformed PAX records, sparse, device, FIFO
//! and unknown entry types.

use super::bodies::before_valid_oci;
use super::env::*;
use crate::support::archives::*;

fn bad_header(case: &str, hostile: impl FnOnce(&mut Tar), codes: &[&str], names: &[&str]) {
    let mut env = Env::new();
    let body = before_valid_oci(hostile, case);
    env.reject(case, &body, 400, codes, names);
}

/// CVE-2026-33055: PAX size 1024 vs ustar size 512; the data is 1024 bytes (the PAX reading).
#[test]
fn pax_size_disagreeing_with_ustar_size_is_rejected() {
    bad_header(
        "pax-size-mismatch",
        |t| {
            t.pax(b'x', &[("size", b"1024")])
                .entry(b"pad.bin", b'0', 512, b"", &[b'p'; 1024]);
        },
        ENTRY_HEADER_INVALID,
        &["pad.bin"],
    );
}

/// TARmageddon (CVE-2025-62518): PAX size 2048, ustar size 0; the data hides a tar header that
/// a parser honouring the ustar size would read as the next entry.
#[test]
fn pax_size_with_zero_ustar_size_is_rejected() {
    let mut smuggled = header(b"index.json", b'0', 512, b"").to_vec();
    smuggled.extend_from_slice(&[b'{'; 512]);
    smuggled.extend_from_slice(&[b'A'; 1024]);
    bad_header(
        "pax-size-zero",
        |t| {
            t.pax(b'x', &[("size", b"2048")])
                .entry(b"pad.bin", b'0', 0, b"", &smuggled);
        },
        ENTRY_HEADER_INVALID,
        &["pad.bin"],
    );
}

#[test]
fn global_pax_header_is_rejected() {
    bad_header(
        "pax-global",
        |t| {
            t.pax(b'g', &[("path", b"manifest.json")]);
        },
        ENTRY_HEADER_INVALID,
        &[],
    );
}

/// A PAX `x` entry whose record's length prefix (30) is not its length (12).
fn malformed_pax(t: &mut Tar) {
    let body = b"30 size=100\n";
    t.entry(b"PaxHeaders/pad.bin", b'x', body.len() as u64, b"", body)
        .file("pad.bin", &[b'p'; 16]);
}

/// RUSTSEC-2026-0066: a PAX record whose length prefix is wrong must not be skipped silently.
/// Malformed tar (ARCHIVE_INVALID) and invalid entry header are both fair names for it. The
/// entry comes second, after `oci-layout`, so this pins the in-stream check.
#[test]
fn malformed_pax_record_is_rejected() {
    let mut env = Env::new();
    let files = Oci::valid("pax-malformed").files();
    let mut t = Tar::new();
    t.files(&files[..1]);
    malformed_pax(&mut t);
    t.files(&files[1..]);
    env.reject(
        "pax-malformed",
        &t.finish(),
        400,
        &["ENTRY_HEADER_INVALID", "ARCHIVE_INVALID"],
        &[],
    );
}

/// The same bad entry first: the first block is a well-formed ustar header, so the upload *is*
/// a tar (a malformed one), not an unsupported format.
#[test]
fn malformed_first_entry_is_not_called_unsupported_format() {
    bad_header(
        "pax-malformed-first",
        malformed_pax,
        &["ENTRY_HEADER_INVALID", "ARCHIVE_INVALID"],
        &[],
    );
}

#[test]
fn sparse_entry_is_rejected() {
    let mut b = header(b"sparse.bin", b'S', 512, b"");
    b[257..265].copy_from_slice(b"ustar  \0"); // GNU magic
    // A well-formed map: a 3.5 KiB hole, then 512 data bytes, ending at the real size.
    put_octal(&mut b[386..398], 3584); // sparse[0].offset
    put_octal(&mut b[398..410], 512); // sparse[0].numbytes
    put_octal(&mut b[483..495], 4096); // realsize
    seal(&mut b);
    bad_header(
        "sparse",
        |t| {
            t.block(&b).data(&[b's'; 512]);
        },
        ENTRY_HEADER_INVALID,
        &["sparse.bin"],
    );
}

#[test]
fn device_entry_is_rejected() {
    let mut b = header(b"console-device", b'3', 0, b"");
    put_octal(&mut b[329..337], 5);
    put_octal(&mut b[337..345], 1);
    seal(&mut b);
    bad_header(
        "device",
        |t| {
            t.block(&b);
        },
        ENTRY_HEADER_INVALID,
        &["console-device"],
    );
}

#[test]
fn fifo_entry_is_rejected() {
    bad_header(
        "fifo",
        |t| {
            t.entry(b"a-fifo", b'6', 0, b"", b"");
        },
        ENTRY_HEADER_INVALID,
        &["a-fifo"],
    );
}

#[test]
fn unknown_entry_type_is_rejected() {
    bad_header(
        "unknown-type",
        |t| {
            t.entry(b"mystery.bin", b'Z', 16, b"", &[b'm'; 16]);
        },
        ENTRY_HEADER_INVALID,
        &["mystery.bin"],
    );
}
