//! hoist run as a production service, at the socket and in its lifecycle: readiness
//! (registry up, down, wrong credentials, a drain), the drain deadline, the server's own
//! admission (request-head timeout, connection limit). Real registry, real hoist process,
//! loopback only; every wait is bounded. Logs and metrics: e2e_telemetry.rs.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::archives::image;
use support::*;

/// The registry's one htpasswd user.
const REGISTRY_USER: &str = "ops-user";

#[test]
fn readyz_follows_the_registry_up_then_down() {
    let mut reg = Registry::start().unwrap();
    let hoist = Hoist::verbose(&reg.url(), &[FAST_PROBES]).unwrap();
    let up = hoist.readyz_becomes(200);
    assert_eq!(up.body["status"], "ready", "{}", up.text());
    assert_eq!(get(&format!("{}/healthz", hoist.url)).unwrap().status, 200);
    reg.stop();
    let down = hoist.readyz_becomes(503);
    let body = &down.body;
    assert_eq!(body["error"]["code"], "NOT_READY", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("127.0.0.1:{}", reg.port)),
        "{message}"
    );
    // Liveness does not depend on the registry.
    assert_eq!(get(&format!("{}/healthz", hoist.url)).unwrap().status, 200);
}

#[test]
fn readyz_says_when_the_credentials_are_wrong() {
    let reg = Registry::start_htpasswd(&[(REGISTRY_USER, "right-password-1")]).unwrap();
    let wrong = Hoist::verbose(
        &reg.url(),
        &[
            FAST_PROBES,
            ("HOIST_REGISTRY_USERNAME", REGISTRY_USER),
            ("HOIST_REGISTRY_PASSWORD", "wrong-password-2"),
        ],
    )
    .unwrap();
    let a = wrong.readyz_becomes(503);
    let message = a.body["error"]["message"].as_str().unwrap().to_string();
    assert!(message.contains("credentials"), "{message}");
    assert!(!message.contains("wrong-password-2"), "{message}");
    let anonymous = Hoist::verbose(&reg.url(), &[FAST_PROBES]).unwrap();
    anonymous.readyz_becomes(503);
    let right = Hoist::verbose(
        &reg.url(),
        &[
            FAST_PROBES,
            ("HOIST_REGISTRY_USERNAME", REGISTRY_USER),
            ("HOIST_REGISTRY_PASSWORD", "right-password-1"),
        ],
    )
    .unwrap();
    right.readyz_becomes(200);
    assert!(!wrong.stderr().contains("wrong-password-2"));
}

#[test]
fn a_drain_turns_readyz_503_and_lets_the_push_in_flight_finish() {
    let reg = Registry::start().unwrap();
    let mut hoist = Hoist::verbose(&reg.url(), &[FAST_PROBES]).unwrap();
    hoist.readyz_becomes(200);
    let body = image(1, &[300_000], "drain/app:1").tar;
    let (first, rest) = body.split_at(body.len() / 2);
    let mut held = hold_upload(&hoist, "/push/drain/app:1", body.len(), first);
    std::thread::sleep(Duration::from_millis(300));
    hoist.sigterm();
    let a = hoist.readyz_becomes(503);
    assert!(a.text().contains("draining"), "{}", a.text());
    // Still serving: a probe on a new connection is answered (one request, then closed).
    assert_eq!(get(&format!("{}/healthz", hoist.url)).unwrap().status, 200);
    held.write_all(rest).unwrap();
    let answer = read_answer(&mut held).unwrap();
    assert_eq!(answer.status, 201, "{}", answer.text());
    assert_eq!(reg.tags("drain/app"), vec!["1"]);
    assert!(
        hoist.wait_exit(Duration::from_secs(10)),
        "no exit after the drain"
    );
}

#[test]
fn the_drain_deadline_cancels_a_stalled_push_and_tags_nothing() {
    let reg = Registry::start().unwrap();
    let mut hoist = Hoist::verbose(
        &reg.url(),
        &[("HOIST_DRAIN_TIMEOUT", "1s"), ("HOIST_LOG_FORMAT", "json")],
    )
    .unwrap();
    let body = image(2, &[600_000], "stall/app:1").tar;
    let mut held = hold_upload(&hoist, "/push/stall/app:1", body.len(), &body[..400_000]);
    wait_until(Duration::from_secs(10), || reg.uploads_with_data() > 0).expect("an upload");
    let signalled = Instant::now();
    hoist.sigterm();
    assert!(
        hoist.wait_exit(Duration::from_secs(15)),
        "no exit at the drain deadline"
    );
    let took = signalled.elapsed();
    assert!(
        took >= Duration::from_millis(900),
        "exited before the deadline: {took:?}"
    );
    let mut rest = Vec::new();
    let _ = held.read_to_end(&mut rest);
    assert!(reg.tags("stall/app").is_empty());
    // hoist cancelled the session before it exited.
    assert!(
        reg.access_log()
            .iter()
            .any(|(method, target, _)| method == "DELETE"
                && target.starts_with("/v2/stall/app/blobs/uploads/")),
        "no DELETE"
    );
    assert_eq!(
        reg.uploads_with_data(),
        0,
        "an upload session kept its data"
    );
    hoist.wait_for_line(&["push finished", "CANCELLED"]);
    let lines = hoist.json_lines();
    let summary = lines
        .iter()
        .find(|l| l["message"] == "push finished")
        .expect("a summary line for the cancelled push");
    assert_eq!(summary["code"], "CANCELLED", "{summary}");
    assert_eq!(summary["status"], 499, "{summary}");
    assert!(summary["bytes_sent"].as_u64().unwrap() > 0, "{summary}");
}

#[test]
fn a_half_sent_request_head_is_closed_after_header_read_timeout() {
    let reg = Registry::start().unwrap();
    let hoist = Hoist::verbose(&reg.url(), &[("HOIST_HEADER_READ_TIMEOUT", "1s")]).unwrap();
    let mut half = TcpStream::connect(hoist.addr()).unwrap();
    half.write_all(b"PUT /push/slow/app:1 HTTP/1.1\r\nHost: x\r\nContent-Le")
        .unwrap();
    let mut silent = TcpStream::connect(hoist.addr()).unwrap();
    let started = Instant::now();
    for s in [&mut half, &mut silent] {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut buf = Vec::new();
        // Closed by hoist: EOF (maybe after a 408), or a reset; never the read timeout.
        match s.read_to_end(&mut buf) {
            Ok(_) => {
                let text = String::from_utf8_lossy(&buf);
                assert!(
                    text.is_empty() || text.starts_with("HTTP/1.1 408"),
                    "{text}"
                );
            }
            Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
        }
    }
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(900), "closed early: {took:?}");
    assert!(took < Duration::from_secs(5), "closed late: {took:?}");
    // A well-behaved client still gets through.
    assert_eq!(get(&format!("{}/healthz", hoist.url)).unwrap().status, 200);
}

#[test]
fn connections_past_max_connections_wait_until_one_closes() {
    let reg = Registry::start().unwrap();
    let hoist = Hoist::verbose(
        &reg.url(),
        &[
            ("HOIST_MAX_CONNECTIONS", "2"),
            ("HOIST_HEADER_READ_TIMEOUT", "30s"),
            ("HOIST_ADMIN_LISTEN", "127.0.0.1:0"),
        ],
    )
    .unwrap();
    let admin = hoist.admin.clone().expect("admin listener");
    let first = TcpStream::connect(hoist.addr()).unwrap();
    let _second = TcpStream::connect(hoist.addr()).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let mut third = TcpStream::connect(hoist.addr()).unwrap();
    third
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    third
        .set_read_timeout(Some(Duration::from_millis(1500)))
        .unwrap();
    let mut byte = [0u8; 1];
    let waited = third.read(&mut byte);
    assert!(
        waited.is_err(),
        "a third connection was served past max_connections=2"
    );
    // The admin listener has slots of its own: probes get through while the port is full.
    assert_eq!(get(&format!("http://{admin}/healthz")).unwrap().status, 200);
    let metrics = get(&format!("http://{admin}/metrics")).unwrap().text();
    assert!(
        metrics.contains("hoist_http_connection_limit_reached_total"),
        "{metrics}"
    );
    drop(first);
    let answer = read_answer_within(&mut third, Duration::from_secs(10)).unwrap();
    assert_eq!(answer.status, 200);
}
