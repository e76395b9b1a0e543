//! A registry hoist cannot reach: a refused connect, and one that hangs until
//! `connect_timeout` (a blackholed address). Both are REGISTRY_UNAVAILABLE.

use std::time::{Duration, Instant};

use anyhow::Result;

use super::rig::REPO;
use crate::support::archives::image;
use crate::support::{Hoist, free_port, push_bytes, tail};

#[test]
fn unreachable_registry_is_registry_unavailable() -> Result<()> {
    let port = free_port()?;
    let hoist = Hoist::with_env(
        &format!("http://127.0.0.1:{port}"),
        &[("HOIST_RETRIES", "1"), ("HOIST_CONNECT_TIMEOUT", "2s")],
    )?;
    let img = image(12, &[64 << 10], "v1");
    let t = Instant::now();
    let a = push_bytes(&hoist, &format!("/push/{REPO}:v1"), &img.tar)?;
    assert_eq!(
        (a.status, a.code()),
        (503, "REGISTRY_UNAVAILABLE"),
        "{}\n{}",
        a.body,
        tail(&hoist.stderr(), 20)
    );
    assert!(t.elapsed() < Duration::from_secs(20));
    Ok(())
}

/// Fills a loopback listener's accept queue (nobody accepts), so a further connect gets no
/// SYN-ACK and hangs: a blackholed registry, without leaving 127.0.0.0/8. Returns the port
/// and the connections holding the queue full (bounded: at most 4096 tries, 30 s).
fn blackholed_port() -> Result<(u16, std::net::TcpListener, Vec<std::net::TcpStream>)> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let mut held = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while held.len() < 4096 && Instant::now() < deadline {
        match std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(300)) {
            Ok(s) => held.push(s),
            Err(_) => return Ok((addr.port(), listener, held)),
        }
    }
    anyhow::bail!(
        "the accept queue of {addr} never filled ({} connections)",
        held.len()
    )
}

/// A registry whose connect hangs is given up on after `connect_timeout` (2 s here), not
/// after the 120 s idle timeout; the push fails as the registry's fault and tags nothing.
#[test]
fn connect_timeout_gives_up_on_a_blackholed_registry() -> Result<()> {
    let (port, _listener, _held) = blackholed_port()?;
    let hoist = Hoist::with_env(
        &format!("http://127.0.0.1:{port}"),
        &[("HOIST_RETRIES", "0"), ("HOIST_CONNECT_TIMEOUT", "2s")],
    )?;
    let img = image(24, &[64 << 10], "v1");
    let t = Instant::now();
    let a = push_bytes(&hoist, &format!("/push/{REPO}:v1"), &img.tar)?;
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(1900),
        "answered after {took:?}: the connect was not blackholed, the test proves nothing"
    );
    assert!(
        took < Duration::from_secs(15),
        "answered after {took:?}: connect_timeout (2 s) not honoured"
    );
    assert!(
        (a.status, a.code()) == (503, "REGISTRY_UNAVAILABLE"),
        "{}\n{}",
        a.body,
        tail(&hoist.stderr(), 20)
    );
    Ok(())
}

/// docs/API.md: a registry that "could not be reached" is REGISTRY_UNAVAILABLE (503); a
/// connect that times out is exactly that, and the message must not blame the idle timeout.
#[test]
fn connect_timeout_is_registry_unavailable() -> Result<()> {
    let (port, _listener, _held) = blackholed_port()?;
    let hoist = Hoist::with_env(
        &format!("http://127.0.0.1:{port}"),
        &[("HOIST_RETRIES", "0"), ("HOIST_CONNECT_TIMEOUT", "2s")],
    )?;
    let img = image(26, &[64 << 10], "v1");
    let a = push_bytes(&hoist, &format!("/push/{REPO}:v1"), &img.tar)?;
    assert_eq!(
        (a.status, a.code()),
        (503, "REGISTRY_UNAVAILABLE"),
        "{}\n{}",
        a.body,
        tail(&hoist.stderr(), 20)
    );
    assert!(
        !a.message().contains("120 s"),
        "the message blames the idle timeout: {}",
        a.message()
    );
    Ok(())
}
