//! Backpressure: a registry that stops reading a PATCH holds the client back (hoist does not
//! swallow its body), and the push is answered at the idle timeout.

use std::time::{Duration, Instant};

use anyhow::Result;

use super::rig::{REPO, Rig};
use crate::support::Answer;
use crate::support::archives::{Image, image};
use crate::support::fault_proxy::{Fault, Rule};

/// A client sending a 48 MiB layer through hoist, counting what it managed to write.
struct SlowDrain {
    stream: std::net::TcpStream,
    written: std::sync::Arc<std::sync::atomic::AtomicU64>,
    sender: Option<std::thread::JoinHandle<()>>,
    total: u64,
}

impl SlowDrain {
    fn start(rig: &Rig, img: &Image) -> Result<SlowDrain> {
        use std::io::Write;
        use std::sync::atomic::Ordering;
        let total = img.tar.len();
        let mut stream = std::net::TcpStream::connect(rig.hoist.addr())?;
        write!(
            stream,
            "PUT /push/{REPO}:v1 HTTP/1.1\r\nHost: hoist\r\nContent-Length: {total}\r\n\r\n"
        )?;
        let written = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut writer = stream.try_clone()?;
        writer.set_write_timeout(Some(Duration::from_secs(90)))?;
        let (count, body) = (written.clone(), img.tar.clone());
        let sender = std::thread::spawn(move || {
            for piece in body.chunks(64 << 10) {
                if writer.write_all(piece).is_err() {
                    return;
                }
                count.fetch_add(piece.len() as u64, Ordering::SeqCst);
            }
        });
        Ok(SlowDrain {
            stream,
            written,
            sender: Some(sender),
            total: total as u64,
        })
    }

    fn written(&self) -> u64 {
        self.written.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for SlowDrain {
    fn drop(&mut self) {
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
        if let Some(s) = self.sender.take() {
            let _ = s.join();
        }
    }
}

fn stop_reading_after_1mib(rig: &Rig) {
    rig.proxy.set_rules(vec![Rule::new(
        "PATCH",
        "/blobs/uploads/",
        Fault::StallMidBody { after: 1 << 20 },
    )]);
}

/// The registry stops reading a PATCH after 1 MiB of a 48 MiB layer. hoist must not swallow
/// the client's body meanwhile (memory stays bounded): the client gets to send only what the
/// pipeline's buffers and the sockets hold, and nothing is tagged.
#[test]
fn registry_that_stops_reading_holds_the_client_back() -> Result<()> {
    // A stall longer than the window watched, so the push is still waiting on the registry.
    let rig = Rig::start(&[("HOIST_IDLE_TIMEOUT", "30s")])?;
    let img = image(22, &[48 << 20], "v1");
    stop_reading_after_1mib(&rig);
    let client = SlowDrain::start(&rig, &img)?;
    // Time enough for hoist to have swallowed the 48 MiB body, were it to.
    std::thread::sleep(Duration::from_secs(6));
    let (sent, total) = (client.written(), client.total);
    drop(client);
    eprintln!("client had sent {sent} of {total} bytes after 6 s");
    let proxied = rig
        .proxy
        .log()
        .iter()
        .filter(|s| s.method == "PATCH")
        .map(|s| s.body_bytes)
        .sum::<u64>();
    assert_eq!(
        proxied,
        1 << 20,
        "the registry read 1 MiB\n{}",
        rig.proxy.describe()
    );
    assert!(
        sent < total / 2,
        "hoist took {sent} of {total} bytes while the registry read 1 MiB: no backpressure"
    );
    rig.assert_no_tag(&Answer::new(0, serde_json::Value::Null));
    Ok(())
}

/// The same stall, with a client that waits: the answer is REGISTRY_TIMEOUT, given once the
/// registry took nothing for `idle_timeout` (2 s here), not much later.
#[test]
fn registry_that_stops_reading_is_answered_at_the_idle_timeout() -> Result<()> {
    let rig = Rig::start(&[("HOIST_IDLE_TIMEOUT", "2s")])?;
    let img = image(25, &[48 << 20], "v1");
    stop_reading_after_1mib(&rig);
    let t = Instant::now();
    let client = SlowDrain::start(&rig, &img)?;
    // A client still sending when hoist answers may see a reset instead of the answer, so
    // the end of the push is read from hoist's log: "push failed code=...".
    let deadline = Instant::now() + Duration::from_secs(60);
    let line = loop {
        if let Some(l) = rig
            .hoist
            .stderr()
            .lines()
            .find(|l| l.contains("push failed"))
        {
            break l.to_string();
        }
        assert!(Instant::now() < deadline, "the push never ended");
        std::thread::sleep(Duration::from_millis(100));
    };
    let took = t.elapsed();
    drop(client);
    eprintln!("the push ended after {took:?}: {line}");
    let none = Answer::new(0, serde_json::Value::Null);
    assert!(line.contains("REGISTRY_TIMEOUT"), "{line}");
    rig.assert_no_tag(&none);
    rig.assert_patch_session_cancelled(&none);
    assert!(
        took < Duration::from_secs(12),
        "the push ended after {took:?}, idle_timeout is 2 s\n{}",
        rig.context(&none)
    );
    Ok(())
}
