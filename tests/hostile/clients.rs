//! Clients that go away: a push held open mid-layer, a client that disconnects and one that
//! half-closes; sessions are cancelled and nothing is tagged.

use std::io::Write;
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

use super::bodies::MIB;
use super::env::Env;
use crate::support::archives::*;
use crate::support::{self, Hoist, read_answer};

/// A valid image whose layer is ~1 MiB of incompressible bytes, so that cutting the body in
/// half lands inside a blob hoist is uploading.
fn big_oci(seed: &str) -> Vec<u8> {
    let tar = Tar::new()
        .file("big.bin", &noise(0x5eed, MIB as usize))
        .file("seed.txt", seed.as_bytes())
        .finish();
    Oci::from_layer_tar(tar).archive()
}

/// Sends request headers claiming 10 MB and half of a valid archive.
fn send_half(hoist: &Hoist, path: &str) -> TcpStream {
    let body = big_oci("half");
    let mut s = TcpStream::connect(hoist.addr()).expect("connect to hoist");
    let head = format!(
        "PUT {path} HTTP/1.1\r\nHost: hoist\r\nContent-Type: application/octet-stream\r\nContent-Length: 10000000\r\n\r\n"
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&body[..body.len() / 2]).unwrap();
    s.flush().unwrap();
    s
}

/// Waits (10 s at most) until the registry's storage holds an open upload session.
fn wait_for_open_session(env: &Env, case: &str) -> Vec<String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let open = env.reg.open_uploads();
        if !open.is_empty() {
            return open;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{case}: no upload session was ever opened, so the checks below would prove nothing"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The "no open upload sessions" check is not vacuous: it sees the session of a push held
/// in the middle of its layer, and sees it closed once the push completes.
#[test]
fn open_upload_check_sees_a_live_session() {
    let env = Env::new();
    let body = big_oci("live");
    let half = body.len() / 2;
    let mut s = support::hold_upload(
        &env.hoist,
        "/push/hostile/live:t",
        body.len(),
        &body[..half],
    );
    let open = wait_for_open_session(&env, "live");
    assert!(
        open.iter().any(|p| p.contains("hostile/live/_uploads/")),
        "{open:?}"
    );
    s.write_all(&body[half..]).unwrap();
    let ans = read_answer(&mut s).expect("hoist answered");
    assert_eq!(ans.status, 201, "{ans:?}");
    env.reg
        .assert_no_open_uploads("live", Duration::from_secs(10));
    assert_eq!(env.reg.tags("hostile/live"), ["t"]);
}

/// A client that disconnects while its layer is being uploaded: once the session is open,
/// the client goes away; the session must be cancelled and nothing tagged.
#[test]
fn client_disconnecting_mid_upload_cancels_its_session() {
    let mut env = Env::new();
    let s = send_half(&env.hoist, "/push/hostile/disconnect:t");
    wait_for_open_session(&env, "disconnect");
    drop(s);
    env.assert_nothing_tagged("disconnect", "hostile/disconnect");
    env.assert_no_open_uploads("disconnect");
    let cancels = env
        .reg
        .cancels_within("hostile/disconnect", Duration::from_secs(5));
    assert!(
        !cancels.is_empty() && cancels.iter().all(|(_, d)| matches!(d, Some(200..=299))),
        "sessions and their DELETE status: {cancels:?}"
    );
    env.assert_still_serves("disconnect");
}

/// A client that half-closes its connection before the body it announced is complete is
/// answered 400 BODY_INCOMPLETE (it can still read), nothing is tagged and no session stays.
#[test]
fn half_closed_upload_is_answered_body_incomplete() {
    let mut env = Env::new();
    let mut s = send_half(&env.hoist, "/push/hostile/half-closed:t");
    wait_for_open_session(&env, "half-closed");
    s.shutdown(Shutdown::Write).unwrap();
    let ans = read_answer(&mut s).expect("hoist answered the half-closed upload");
    drop(s);
    env.check_rejected(
        "half-closed",
        "hostile/half-closed",
        &ans,
        400,
        &["BODY_INCOMPLETE"],
        &[],
    );
}
