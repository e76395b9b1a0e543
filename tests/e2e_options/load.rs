//! hoist under load and over time: pushes past `max_concurrent_pushes` shed with 503 BUSY,
//! a client that goes quiet answered 408, SIGTERM letting a push in flight finish, and a
//! process that does not grow over repeated pushes.

use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::oci_bytes;
use crate::support::archives;
use crate::support::*;

#[test]
fn pushes_over_the_limit_are_shed_with_busy() {
    let reg = Registry::start().unwrap();
    let hoist = Hoist::with_env(&reg.url(), &[("HOIST_MAX_CONCURRENT_PUSHES", "1")]).unwrap();
    let built = oci_bytes("busy/app:1");
    let half = &built.bytes[..built.bytes.len() / 2];
    let held = hold_upload(&hoist, "/push/busy/held:1", built.bytes.len(), half);
    // Give the server a moment to take the held push's slot (bounded wait).
    let deadline = Instant::now() + Duration::from_secs(10);
    let shed = loop {
        let a = push_bytes(&hoist, "/push/busy/app:1", &built.bytes).unwrap();
        if a.status == 503 || Instant::now() > deadline {
            break a;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(shed.status, 503, "{}", shed.body);
    assert_eq!(shed.code(), "BUSY");
    assert_eq!(
        shed.header("retry-after"),
        Some("5"),
        "BUSY says when to retry: {:?}",
        shed.headers
    );
    drop(held);
    // The slot comes back once the held push has failed.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let a = push_bytes(&hoist, "/push/busy/app:1", &built.bytes).unwrap();
        if a.status == 201 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "slot never came back: {}",
            a.body
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(reg.tags("busy/held").is_empty());
}

#[test]
fn a_client_that_goes_quiet_gets_408_and_nothing_is_tagged() {
    let reg = Registry::start().unwrap();
    let hoist = Hoist::with_env(&reg.url(), &[("HOIST_CLIENT_IDLE_TIMEOUT", "1s")]).unwrap();
    let built = oci_bytes("quiet/app:1");
    let half = &built.bytes[..built.bytes.len() / 2];
    let mut s = hold_upload(&hoist, "/push/quiet/app:1", built.bytes.len(), half);
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("BODY_TIMEOUT"), "{answer}");
    assert!(reg.tags("quiet/app").is_empty());
}

#[test]
fn sigterm_lets_a_push_in_flight_finish_then_exits() {
    let reg = Registry::start().unwrap();
    let mut hoist = Hoist::start(&reg).unwrap();
    let built = oci_bytes("drain/app:1");
    let (first, rest) = built.bytes.split_at(built.bytes.len() / 2);
    let mut s = hold_upload(&hoist, "/push/drain/app:1", built.bytes.len(), first);
    std::thread::sleep(Duration::from_millis(300));
    run(Command::new("kill").args(["-TERM", &hoist.pid().to_string()])).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(hoist.alive(), "hoist exited with a push in flight");
    s.write_all(rest).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    assert_eq!(reg.tags("drain/app"), vec!["1"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while hoist.alive() {
        assert!(
            Instant::now() < deadline,
            "hoist did not exit after draining"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn repeated_pushes_do_not_grow_the_process() {
    let reg = Registry::start().unwrap();
    let hoist = Hoist::start(&reg).unwrap();
    // The legacy fixture has a 1.5 MB layer that hoist gzips on the way: every push runs
    // the whole pipeline (decode, walk, compression pool, upload) into a new repository.
    let built = archives::legacy(archives::DupLink::Symlink);
    let gz = built.gzipped();
    let mut after_warmup = 0;
    for i in 0..30 {
        let a = push_bytes(&hoist, &format!("/push/soak/r{i}:1"), &gz).unwrap();
        assert_eq!(a.status, 201, "{}", a.body);
        if i == 4 {
            after_warmup = rss_kib(hoist.pid());
        }
    }
    let end = rss_kib(hoist.pid());
    assert!(
        end < after_warmup + 16 * 1024,
        "RSS grew from {after_warmup} KiB after 5 pushes to {end} KiB after 30"
    );
}
