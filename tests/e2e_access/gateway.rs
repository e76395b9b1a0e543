//! The gateway's defences beyond who the client is: pass-through of each client's own
//! registry credentials, the browser (Origin) defence, the per-client limit, and the refusal
//! to run an open gateway off loopback.

use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::access::{
    TokenGateway, assert_left_nothing, assert_no_secret, basic, bearer, new_token, push_as,
};
use crate::support::{Hoist, Registry, hold_request, read_answer, request};
use crate::{push_until, small_image};

#[test]
fn pass_through_pushes_with_each_clients_own_registry_credentials() {
    let reg = Registry::start_htpasswd(&[("alice", "alice-pw"), ("bob", "bob-pw")]).unwrap();
    let hoist = Hoist::options(&reg.url())
        .config("[auth]\nmode = \"registry\"\n")
        .start()
        .unwrap();
    let alice = basic("alice", "alice-pw");
    let img = small_image(40, 64 << 10);
    let ok = push_as(&hoist, "/push/alice/app:v1", &alice, &img.tar);
    assert_eq!(ok.status, 201, "{}", ok.text());
    assert_eq!(ok.body["client"], "alice");
    assert_eq!(reg.tags_as("alice/app", &alice), ["v1"]);
    // The registry refuses the client's own credentials: the client's 401, not a 502.
    let other = small_image(41, 64 << 10);
    let wrong = basic("alice", "wrong");
    let bad = push_as(&hoist, "/push/alice/app:v2", &wrong, &other.tar);
    assert_eq!(
        (bad.status, bad.code()),
        (401, "UNAUTHORIZED"),
        "{}",
        bad.text()
    );
    assert!(bad.header("www-authenticate").is_some());
    assert_left_nothing(&reg, "alice/app", "v2", &other, &alice);
    let none = push_as(&hoist, "/push/alice/app:v2", "", &other.tar);
    assert_eq!((none.status, none.code()), (401, "UNAUTHORIZED"));
    assert_left_nothing(&reg, "alice/app", "v2", &other, &alice);
    let bob = push_as(
        &hoist,
        "/push/bob/app:v1",
        &basic("bob", "bob-pw"),
        &img.tar,
    );
    assert_eq!(bob.status, 201, "{}", bob.text());
    assert_eq!(bob.body["client"], "bob");
    assert_no_secret(&hoist, &["alice-pw", "bob-pw", &alice]);
}

#[test]
fn a_browser_request_from_a_foreign_origin_is_refused_before_its_body() {
    let reg = Registry::start().unwrap();
    let hoist = Hoist::options(&reg.url())
        .config("cors_allow_origins = [\"https://portal.example\"]\n")
        .start()
        .unwrap();
    let form = [
        ("Content-Type", "multipart/form-data; boundary=x"),
        ("Origin", "https://evil.example"),
    ];
    let mut s = hold_request(&hoist, "POST", "/push/web/app:v1", &form, 50_000_000, b"");
    let a = read_answer(&mut s).expect("an answer before the body");
    assert_eq!((a.status, a.code()), (403, "ORIGIN_DENIED"), "{}", a.text());
    let img = small_image(50, 16 << 10);
    assert_left_nothing(&reg, "web/app", "v1", &img, "");
    // hoist's own upload page, and the configured portal, may push; curl sends no Origin.
    let own = format!("http://{}", hoist.addr());
    for (origin, tag) in [(own.as_str(), "own"), ("https://portal.example", "portal")] {
        let path = format!("/push/web/app:{tag}");
        let a = request(&hoist.addr(), "PUT", &path, &[("Origin", origin)], &img.tar).unwrap();
        assert_eq!(a.status, 201, "{origin}: {}", a.text());
    }
    assert_eq!(reg.tags("web/app"), ["own", "portal"]);
}

#[test]
fn an_open_gateway_off_loopback_refuses_to_start() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hoist"))
        .args([
            "serve",
            "--listen",
            "0.0.0.0:0",
            "--registry",
            "http://127.0.0.1:1",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "hoist kept running");
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!status.success());
    assert!(out.stdout.is_empty(), "it never listened");
    assert!(
        err.contains("anonymous = true") && err.contains("tokens_file"),
        "{err}"
    );
}

/// Whether hoist has answered on this connection (without waiting long for it).
fn answered(s: &TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let mut b = [0u8; 1];
    let got = matches!(s.peek(&mut b), Ok(n) if n > 0);
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    got
}

#[test]
fn one_client_cannot_take_every_slot() {
    let (a, a_entry) = new_token("a", &["team-a/**"]);
    let (b, b_entry) = new_token("b", &["team-b/**"]);
    let top = "max_concurrent_pushes = 4";
    let g = TokenGateway::start(&[&a_entry, &b_entry], top, "max_pushes_per_client = 1\n");
    let img = small_image(60, 16 << 10);
    let auth = bearer(&a);
    let deadline = Instant::now() + Duration::from_secs(20);
    // A's first push is admitted and then held: its head and a few bytes, no more. If it
    // lost the race to one of the pushes below (and was itself answered 429), open it again.
    let (busy, held) = loop {
        assert!(Instant::now() < deadline, "no 429 within 20 s");
        let headers = [("Authorization", auth.as_str())];
        let (path, first) = ("/push/team-a/held:v1", &img.tar[..512]);
        let held = hold_request(&g.hoist, "PUT", path, &headers, img.tar.len(), first);
        std::thread::sleep(Duration::from_millis(200));
        if answered(&held) {
            continue;
        }
        let r = push_as(&g.hoist, "/push/team-a/app:v1", &auth, &img.tar);
        if r.status == 429 && !answered(&held) {
            break (r, held);
        }
    };
    assert_eq!(
        (busy.status, busy.code()),
        (429, "TOO_MANY_REQUESTS"),
        "{}",
        busy.text()
    );
    assert!(busy.header("retry-after").is_some());
    let other = push_as(&g.hoist, "/push/team-b/app:v1", &bearer(&b), &img.tar);
    assert_eq!(
        other.status,
        201,
        "other clients are not held up: {}",
        other.text()
    );
    drop(held);
    let within = Duration::from_secs(10);
    let freed = push_until(&g.hoist, "/push/team-a/app:v1", &auth, &img, 201, within);
    assert_eq!(freed, 201);
}
