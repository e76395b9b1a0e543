//! Clients that hold a push slot without sending: silent multipart requests (finding 3),
//! slow-drip uploads cut off by `limits.min_body_rate` (finding 4), and refused multipart
//! uploads answered with their error rather than reset (finding 10).

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::common::{env, push};
use crate::support;
use crate::support::archives::*;
use crate::support::{Answer, Hoist, read_answer};

// ---------------------------------------------------------------------------------------------
// 3. Silent multipart requests must not take the push slots.

/// Opens a request that declares a multipart body and sends nothing of it.
fn silent_multipart(hoist: &Hoist) -> TcpStream {
    let mut s = TcpStream::connect(hoist.addr()).expect("connect");
    write!(
        s,
        "POST /push/silent/app:t HTTP/1.1\r\nHost: hoist\r\nContent-Type: multipart/form-data; boundary=zz\r\nContent-Length: 1000000\r\n\r\n"
    )
    .unwrap();
    s
}

/// Eight requests that send `Content-Type: multipart/form-data` and nothing else no longer
/// lock everyone out (they took all eight slots before their archive started), and each is
/// answered 408 once the client idle timeout passes.
#[test]
fn eight_silent_multipart_requests_do_not_lock_everyone_out() {
    let (reg, hoist) = env(&[("HOIST_CLIENT_IDLE_TIMEOUT", "4s")]);
    let mut silent: Vec<TcpStream> = (0..8).map(|_| silent_multipart(&hoist)).collect();
    std::thread::sleep(Duration::from_millis(500));
    let a = push(
        &hoist,
        "/push/busy/app:v1",
        &Oci::valid("through").archive(),
    );
    assert_eq!(
        a.status, 201,
        "a real push got {a:?} while 8 clients sent nothing"
    );
    assert_eq!(reg.tags("busy/app"), ["v1"]);
    for s in &mut silent {
        let answer = read_answer(s).expect("the silent request is answered");
        assert_eq!((answer.status, answer.code()), (408, "BODY_TIMEOUT"));
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Slow-drip clients must not hold slots forever.

/// Sends headers and the first 1 KiB of an archive, then one byte every 2 s for at most
/// `limit`; returns the answer hoist gave, if any.
fn drip(addr: String, archive: Vec<u8>, limit: Duration) -> Option<Answer> {
    let mut s = TcpStream::connect(addr).ok()?;
    write!(
        s,
        "PUT /push/drip/app:t HTTP/1.1\r\nHost: hoist\r\nContent-Length: {}\r\n\r\n",
        archive.len()
    )
    .ok()?;
    s.write_all(&archive[..1024]).ok()?;
    s.set_read_timeout(Some(Duration::from_millis(10))).ok()?;
    let started = Instant::now();
    let mut at = 1024;
    while started.elapsed() < limit && at < archive.len() {
        let mut probe = [0u8; 1];
        if matches!(s.peek(&mut probe), Ok(n) if n > 0) {
            break;
        }
        if s.write_all(&archive[at..at + 1]).is_err() {
            break;
        }
        at += 1;
        std::thread::sleep(Duration::from_secs(2));
    }
    read_answer(&mut s)
}

/// Eight uploads dripping a byte every 2 s held every slot for as long as they liked (the
/// idle timeout restarted with each byte). Now they fall below limits.min_body_rate and are
/// answered 408 after 30 s of waiting on them; then pushes get through again.
#[test]
fn slow_drip_uploads_are_cut_off_by_the_minimum_rate() {
    let (reg, hoist) = env(&[]);
    let archive = Oci::valid("drip").archive();
    let drippers: Vec<_> = (0..8)
        .map(|_| {
            let (addr, archive) = (hoist.addr(), archive.clone());
            std::thread::spawn(move || drip(addr, archive, Duration::from_secs(60)))
        })
        .collect();
    for d in drippers {
        let answer = d
            .join()
            .unwrap()
            .expect("a dripping upload is answered within 60 s");
        assert_eq!(
            (answer.status, answer.code()),
            (408, "BODY_TIMEOUT"),
            "{answer:?}"
        );
        assert!(answer.message().contains("min_body_rate"), "{answer:?}");
    }
    let a = push(
        &hoist,
        "/push/after-drip/app:v1",
        &Oci::valid("after").archive(),
    );
    assert_eq!(a.status, 201, "{a:?}");
    assert_eq!(reg.tags("after-drip/app"), ["v1"]);
}

// ---------------------------------------------------------------------------------------------
// 10. Smaller findings.

/// A multipart push refused for its URL while the client is still sending (8 MiB, no
/// `Expect: 100-continue`, so curl sends at once): every answer is the JSON error, none a
/// reset (the body was never read, so closing the connection reset it under the client).
#[test]
fn refused_multipart_uploads_are_answered_not_reset() {
    let (_reg, hoist) = env(&[]);
    let dir = support::scratch();
    let file = support::p(&dir, "a.tar");
    let mut archive = Oci::valid("reset").archive();
    archive.extend(vec![0u8; 8 << 20]);
    std::fs::write(&file, archive).unwrap();
    for i in 0..10 {
        let out = std::process::Command::new("curl")
            .args([
                "-s",
                "-S",
                "-H",
                "Expect:",
                "--max-time",
                "60",
                "-w",
                "\n%{http_code}",
            ])
            .arg("-F")
            .arg(format!("file=@{}", file.display()))
            .arg(format!("{}/push/BAD//name:t", hoist.url))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "attempt {i}: curl failed: {stderr}");
        assert!(
            text.contains("REFERENCE_INVALID") && text.ends_with("400"),
            "attempt {i}: {text}"
        );
    }
}
