//! Tar and compression input held within bounds: a 512 MiB GNU long name refused at its
//! header (finding 5), an xz dictionary beyond the memory limit, a PAX sparse entry, and an
//! attacker's 4,000-character link target cut in the answer (finding 10).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::common::{env, push};
use crate::support;
use crate::support::archives::*;
use crate::support::read_answer;

// ---------------------------------------------------------------------------------------------
// 5. Tar header extensions must not be buffered whole.

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A GNU long-name entry of 512 MiB, streamed uncompressed: refused at its header, before any
/// of it is held (it raised RSS by ~500 MiB before the name-length check ran).
#[test]
fn a_512_mib_long_name_is_refused_before_it_is_buffered() {
    let (_reg, hoist) = env(&[]);
    let before = peak_rss_kib(hoist.pid());
    let size: u64 = 512 << 20;
    let mut s = TcpStream::connect(hoist.addr()).unwrap();
    write!(
        s,
        "PUT /push/longname/app:t HTTP/1.1\r\nHost: hoist\r\nContent-Length: {}\r\n\r\n",
        size + 1024
    )
    .unwrap();
    s.write_all(&header(b"././@LongLink", b'L', size, b""))
        .unwrap();
    let zeros = vec![b'a'; 1 << 20];
    let started = Instant::now();
    for _ in 0..512 {
        if s.write_all(&zeros).is_err() || started.elapsed() > Duration::from_secs(60) {
            break;
        }
    }
    let answer = read_answer(&mut s).expect("answered");
    assert_eq!(
        (answer.status, answer.code()),
        (400, "ENTRY_HEADER_INVALID"),
        "{answer:?}"
    );
    let grown = peak_rss_kib(hoist.pid()).saturating_sub(before);
    assert!(grown < 100 << 10, "hoist's peak RSS grew by {grown} KiB");
}

// ---------------------------------------------------------------------------------------------
// 10. Smaller findings.

/// An xz archive whose dictionary needs 1 GiB: refused instead of allocated.
#[test]
fn an_xz_archive_beyond_the_memory_limit_is_refused() {
    support::require_tools(&["xz"]);
    let (_reg, hoist) = env(&[]);
    let mut child = std::process::Command::new("xz")
        .args(["-z", "-c", "--lzma2=preset=0,dict=1GiB"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&Oci::valid("xz").archive())
        .unwrap();
    let mut xz = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut xz).unwrap();
    assert!(child.wait().unwrap().success());
    let a = push(&hoist, "/push/xz/app:v1", &xz);
    assert_eq!((a.status, a.code()), (400, "ARCHIVE_INVALID"), "{a:?}");
    assert!(a.message().to_lowercase().contains("memory"), "{a:?}");
}

/// A PAX 1.0 sparse entry (GNU.sparse.* records) is refused, as docs/API.md says sparse is.
#[test]
fn a_pax_sparse_entry_is_refused() {
    let (_reg, hoist) = env(&[]);
    let mut t = Tar::new();
    t.pax(
        b'x',
        &[
            ("GNU.sparse.major", b"1"),
            ("GNU.sparse.minor", b"0"),
            ("GNU.sparse.name", b"sparse.bin"),
        ],
    );
    t.file("GNUSparseFile.0/sparse.bin", b"0\n");
    t.files(&Oci::valid("sparse").files());
    let a = push(&hoist, "/push/sparse/app:v1", &t.finish());
    assert_eq!((a.status, a.code()), (400, "ENTRY_HEADER_INVALID"), "{a:?}");
    assert!(a.message().contains("sparse"), "{a:?}");
}

/// A symlink whose 4,000-character target points outside the archive: the error names it,
/// but bounded (it echoed all 4,000 characters, in the answer and the log).
#[test]
fn attacker_strings_are_cut_in_answers() {
    let (_reg, hoist) = env(&[]);
    let target = format!("../{}", "x".repeat(3996));
    let mut t = Tar::new();
    t.pax(b'x', &[("linkpath", target.as_bytes())]);
    t.symlink("escape", "placeholder");
    t.files(&Oci::valid("long-target").files());
    let a = push(&hoist, "/push/cut/app:v1", &t.finish());
    assert_eq!((a.status, a.code()), (400, "LINK_INVALID"), "{a:?}");
    let message = a.message();
    assert!(message.len() < 1200, "message of {} bytes", message.len());
    assert!(message.contains("escape"), "{message}");
}
