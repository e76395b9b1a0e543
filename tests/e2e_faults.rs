//! Fault injection between hoist and a real registry: a small HTTP/1.1 proxy on a loopback port
//! forwards to `docker-registry`, rewrites `Location` back to itself, and answers chosen
//! requests (by method, path and occurrence) with a fault instead: 503 + `Retry-After`, a 500
//! or a dropped connection in the middle of a PATCH body, a stall, a `Location` on another host,
//! an nginx HTML error page, or a body read slowly. Each case checks what hoist answers, that no
//! tag was written (read from the registry directly), that an open upload session was cancelled,
//! and that a clean push afterwards succeeds and skips what was committed.

mod support;

use std::time::{Duration, Instant};

use anyhow::Result;

use support::archives::{Image, image};
use support::fault_proxy::{Fault, Proxy, Rule, Seen};
use support::{Answer, Hoist, Registry, free_port, push_bytes, push_bytes_with, sha256, tail};

const REPO: &str = "e2e/faults";

// ---------------------------------------------------------------------------------------------
// The rig and shared checks.

struct Rig {
    registry: Registry,
    proxy: Proxy,
    hoist: Hoist,
}

impl Rig {
    fn start(env: &[(&str, &str)]) -> Result<Rig> {
        let registry = Registry::start()?;
        let proxy = Proxy::start(&registry.url())?;
        let hoist = Hoist::options(&proxy.url())
            .envs(env)
            .log("hoist=trace,info")
            .start()?;
        Ok(Rig {
            registry,
            proxy,
            hoist,
        })
    }

    fn push(&self, img: &Image) -> Result<Answer> {
        push_bytes(&self.hoist, &format!("/push/{REPO}:v1"), &img.tar)
    }

    fn context(&self, a: &Answer) -> String {
        format!(
            "answer: {} {}\nproxy saw:\n  {}\nhoist stderr (tail):\n{}",
            a.status,
            a.body,
            self.proxy.describe(),
            tail(&self.hoist.stderr(), 30)
        )
    }

    /// Nothing tagged, read from the registry itself (not through the proxy).
    fn assert_no_tag(&self, a: &Answer) {
        let tags = self.registry.tags(REPO);
        assert!(
            tags.is_empty(),
            "a failed push wrote tags {tags:?}\n{}",
            self.context(a)
        );
    }

    /// The upload session whose PATCH met the fault was cancelled with a DELETE on its URL.
    fn assert_patch_session_cancelled(&self, a: &Answer) {
        let log = self.proxy.log();
        let faulted = log
            .iter()
            .find(|s| s.method == "PATCH" && s.fault.is_some())
            .unwrap_or_else(|| panic!("no PATCH met the fault\n{}", self.context(a)));
        let path = upload_path(&faulted.target);
        // The DELETE is best effort and may come just after the answer.
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if self
                .proxy
                .log()
                .iter()
                .any(|s| s.method == "DELETE" && upload_path(&s.target) == path)
            {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "the upload session {path} was not cancelled (no DELETE)\n{}",
                    self.context(a)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A clean push afterwards: 201, the tag, and every blob the registry already had is
    /// reported `exists` (not sent again), the others `uploaded`.
    fn assert_clean_push_skips_committed(&self, img: &Image) -> Result<Answer> {
        self.proxy.set_rules(Vec::new());
        let blobs: Vec<&String> = img.layers.iter().chain([&img.config]).collect();
        let committed: Vec<bool> = blobs
            .iter()
            .map(|d| self.registry.has_blob(REPO, d))
            .collect();
        let a = self.push(img)?;
        assert_eq!(a.status, 201, "clean push failed\n{}", self.context(&a));
        for (d, had) in blobs.iter().zip(&committed) {
            let want = if *had { "exists" } else { "uploaded" };
            assert_eq!(
                a.outcome(d),
                want,
                "blob {d} (committed before: {had})\n{}",
                self.context(&a)
            );
        }
        let patches = self
            .proxy
            .log()
            .iter()
            .filter(|s| s.method == "PATCH")
            .count();
        let expected = committed.iter().filter(|c| !**c).count();
        assert_eq!(
            patches,
            expected,
            "one PATCH per blob not yet committed\n{}",
            self.context(&a)
        );
        assert_eq!(self.registry.tags(REPO), vec!["v1".to_string()]);
        Ok(a)
    }
}

fn upload_path(target: &str) -> &str {
    target.split('?').next().unwrap_or(target)
}

/// The faulted request was sent again, no sooner than `Retry-After: 1` allows.
fn assert_retried(rig: &Rig, a: &Answer, method: &str, faults: usize) {
    let log = rig.proxy.log();
    let faulted: Vec<&Seen> = log
        .iter()
        .filter(|s| s.method == method && s.fault.is_some())
        .collect();
    assert_eq!(
        faulted.len(),
        faults,
        "503s served to {method}\n{}",
        rig.context(a)
    );
    let first = faulted[0];
    let retries: Vec<&Seen> = log
        .iter()
        .filter(|s| s.method == method && s.target == first.target && s.at > first.at)
        .collect();
    assert!(
        retries.len() >= faults,
        "{method} {} was not retried\n{}",
        first.target,
        rig.context(a)
    );
    let success = retries
        .iter()
        .find(|s| s.fault.is_none())
        .unwrap_or_else(|| {
            panic!("no retried {method} went through\n{}", rig.context(a));
        });
    assert!(
        matches!(success.status, Some(200..=299) | Some(404)),
        "retried {method}: {:?}",
        success.status
    );
    let gap = retries[0].at - first.at;
    assert!(
        gap >= Duration::from_millis(900),
        "retry after {gap:?}: Retry-After: 1 not honoured\n{}",
        rig.context(a)
    );
}

// ---------------------------------------------------------------------------------------------
// Retries where the body is at hand.

#[test]
fn retry_after_503_on_blob_head() -> Result<()> {
    let rig = Rig::start(&[])?;
    let img = image(1, &[256 << 10], "v1");
    rig.proxy.set_rules(vec![
        Rule::new("HEAD", "/blobs/sha256:", Fault::unavailable()).first(1),
    ]);
    let a = rig.push(&img)?;
    eprintln!("hoist answered {} {}", a.status, a.body);
    assert_eq!(a.status, 201, "{}", rig.context(&a));
    assert_retried(&rig, &a, "HEAD", 1);
    assert_eq!(rig.registry.tags(REPO), vec!["v1".to_string()]);
    assert_eq!(a.outcome(&img.layers[0]), "uploaded");
    Ok(())
}

#[test]
fn retry_after_503_on_upload_post() -> Result<()> {
    let rig = Rig::start(&[])?;
    let img = image(2, &[256 << 10], "v1");
    rig.proxy.set_rules(vec![
        Rule::new("POST", "/blobs/uploads/", Fault::unavailable()).first(2),
    ]);
    let t = Instant::now();
    let a = rig.push(&img)?;
    eprintln!("hoist answered {} {}", a.status, a.body);
    assert_eq!(a.status, 201, "{}", rig.context(&a));
    assert_retried(&rig, &a, "POST", 2);
    assert!(
        t.elapsed() >= Duration::from_millis(1800),
        "two Retry-After: 1 waits"
    );
    assert_eq!(rig.registry.tags(REPO), vec!["v1".to_string()]);
    assert!(rig.registry.has_blob(REPO, &img.layers[0]));
    assert!(rig.registry.has_blob(REPO, &img.config));
    Ok(())
}

#[test]
fn retry_after_503_on_manifest_put() -> Result<()> {
    let rig = Rig::start(&[])?;
    let img = image(3, &[256 << 10], "v1");
    rig.proxy.set_rules(vec![
        Rule::new("PUT", "/manifests/", Fault::unavailable()).first(1),
    ]);
    let a = rig.push(&img)?;
    eprintln!("hoist answered {} {}", a.status, a.body);
    assert_eq!(a.status, 201, "{}", rig.context(&a));
    assert_retried(&rig, &a, "PUT", 1);
    assert_eq!(rig.registry.tags(REPO), vec!["v1".to_string()]);
    let digest = a.body["images"][0]["digest"].as_str().unwrap_or("");
    let (bytes, _) = rig.registry.manifest(REPO, "v1")?;
    assert_eq!(sha256(&bytes), digest);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Failures once a streamed body is gone: a clear error, nothing tagged, session cancelled.

/// Two 1 MiB layers pushed one at a time, so the first is committed before the second fails.
fn two_layers(seed: u64) -> Image {
    image(seed, &[1 << 20, 1 << 20], "v1")
}

const ONE_AT_A_TIME: (&str, &str) = ("HOIST_MAX_INFLIGHT_BLOBS", "1");

#[test]
fn error_500_in_the_middle_of_a_patch() -> Result<()> {
    let rig = Rig::start(&[ONE_AT_A_TIME])?;
    let img = two_layers(4);
    rig.proxy.set_rules(vec![
        Rule::new(
            "PATCH",
            "/blobs/uploads/",
            Fault::ReplyMidBody {
                after: 64 << 10,
                status: 500,
            },
        )
        .skip(1)
        .first(1),
    ]);
    let a = rig.push(&img)?;
    eprintln!("hoist answered {} {}", a.status, a.body);
    assert_eq!(a.status, 502, "{}", rig.context(&a));
    assert_eq!(a.code(), "REGISTRY_ERROR", "{}", rig.context(&a));
    assert!(
        a.message().contains("can be retried"),
        "message should say the push can be retried\n{}",
        rig.context(&a)
    );
    rig.assert_no_tag(&a);
    rig.assert_patch_session_cancelled(&a);
    assert!(
        rig.registry.has_blob(REPO, &img.layers[0]),
        "the first layer should have been committed before the second failed"
    );
    rig.assert_clean_push_skips_committed(&img)?;
    Ok(())
}

#[test]
fn connection_dropped_in_the_middle_of_a_patch() -> Result<()> {
    let rig = Rig::start(&[ONE_AT_A_TIME])?;
    let img = two_layers(5);
    rig.proxy.set_rules(vec![
        Rule::new(
            "PATCH",
            "/blobs/uploads/",
            Fault::DropMidBody { after: 64 << 10 },
        )
        .skip(1)
        .first(1),
    ]);
    let a = rig.push(&img)?;
    eprintln!("hoist answered {} {}", a.status, a.body);
    assert_eq!(a.status, 502, "{}", rig.context(&a));
    assert_eq!(a.code(), "REGISTRY_ERROR", "{}", rig.context(&a));
    assert!(
        a.message().contains("can be retried"),
        "message should say the push can be retried\n{}",
        rig.context(&a)
    );
    rig.assert_no_tag(&a);
    rig.assert_patch_session_cancelled(&a);
    assert!(rig.registry.has_blob(REPO, &img.layers[0]));
    rig.assert_clean_push_skips_committed(&img)?;
    Ok(())
}

#[test]
fn stalled_patch_times_out() -> Result<()> {
    let rig = Rig::start(&[("HOIST_IDLE_TIMEOUT", "2s"), ONE_AT_A_TIME])?;
    let img = two_layers(6);
    rig.proxy.set_rules(vec![
        Rule::new("PATCH", "/blobs/uploads/", Fault::Stall)
            .skip(1)
            .first(1),
    ]);
    let t = Instant::now();
    let a = rig.push(&img)?;
    eprintln!("hoist answered {} {}", a.status, a.body);
    let took = t.elapsed();
    assert!(took < Duration::from_secs(20), "took {took:?}");
    rig.assert_no_tag(&a);
    rig.assert_patch_session_cancelled(&a);
    assert_eq!(
        (a.status, a.code()),
        (504, "REGISTRY_TIMEOUT"),
        "a registry that stalls past the idle timeout is REGISTRY_TIMEOUT (docs/API.md)\n{}",
        rig.context(&a)
    );
    rig.assert_clean_push_skips_committed(&img)?;
    Ok(())
}

#[test]
fn stalled_manifest_put_times_out() -> Result<()> {
    let rig = Rig::start(&[("HOIST_IDLE_TIMEOUT", "2s"), ("HOIST_RETRIES", "1")])?;
    let img = image(7, &[256 << 10], "v1");
    rig.proxy
        .set_rules(vec![Rule::new("PUT", "/manifests/", Fault::Stall)]);
    let t = Instant::now();
    let a = rig.push(&img)?;
    eprintln!("hoist answered {} {}", a.status, a.body);
    let took = t.elapsed();
    assert_eq!(a.status, 504, "{}", rig.context(&a));
    assert_eq!(a.code(), "REGISTRY_TIMEOUT", "{}", rig.context(&a));
    assert!(
        took >= Duration::from_secs(4),
        "two 2 s waits, took {took:?}"
    );
    assert!(took < Duration::from_secs(20), "took {took:?}");
    let puts = rig
        .proxy
        .log()
        .iter()
        .filter(|s| s.method == "PUT" && s.target.contains("/manifests/"))
        .count();
    assert_eq!(puts, 2, "one try and one retry\n{}", rig.context(&a));
    rig.assert_no_tag(&a);
    // The blobs were committed: the clean push sends none again.
    rig.assert_clean_push_skips_committed(&img)?;
    Ok(())
}

#[test]
fn slow_but_steady_patch_is_not_a_stall() -> Result<()> {
    // The registry reads the body slowly (≈3 s for 512 KiB) but never pauses for long: with a
    // 2 s idle timeout this is progress, not a stall.
    let rig = Rig::start(&[("HOIST_IDLE_TIMEOUT", "2s")])?;
    let img = image(8, &[512 << 10], "v1");
    rig.proxy.set_rules(vec![Rule::new(
        "PATCH",
        "/blobs/uploads/",
        Fault::Throttle {
            chunk: 32 << 10,
            pause: Duration::from_millis(200),
        },
    )]);
    let a = rig.push(&img)?;
    eprintln!("hoist answered {} {}", a.status, a.body);
    assert_eq!(
        a.status,
        201,
        "a steadily progressing PATCH longer than the idle timeout must not fail\n{}",
        rig.context(&a)
    );
    assert_eq!(rig.registry.tags(REPO), vec!["v1".to_string()]);
    Ok(())
}

#[test]
fn slow_client_upload_is_not_a_registry_stall() -> Result<()> {
    // The client sends its archive at 256 KiB/s (≈4 s for 1 MiB); the registry is fast (the
    // proxy only forwards). The PATCH body is the client's bytes, so it lasts as long as the
    // upload does: that is the client's pace, not a registry stall.
    let rig = Rig::start(&[("HOIST_IDLE_TIMEOUT", "2s")])?;
    let img = image(9, &[1 << 20], "v1");
    let a = push_bytes_with(
        &rig.hoist,
        &format!("/push/{REPO}:v1"),
        &img.tar,
        &["--limit-rate", "256K"],
    )?;
    assert_eq!(
        a.status,
        201,
        "a slow client must not look like a stalled registry\n{}",
        rig.context(&a)
    );
    assert_eq!(rig.registry.tags(REPO), vec!["v1".to_string()]);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Answers hoist must refuse or explain.

#[test]
fn location_on_another_host_is_refused() -> Result<()> {
    let rig = Rig::start(&[])?;
    // A listener on the foreign address shows whether hoist ever went there.
    let canary = std::net::TcpListener::bind("127.0.0.2:0")?;
    canary.set_nonblocking(true)?;
    let foreign = format!("http://127.0.0.2:{}", canary.local_addr()?.port());
    let img = image(10, &[256 << 10], "v1");
    rig.proxy.set_rules(vec![Rule::new(
        "POST",
        "/blobs/uploads/",
        Fault::ForeignLocation(foreign.clone()),
    )]);
    let a = rig.push(&img)?;
    eprintln!("hoist answered {} {}", a.status, a.body);
    assert_eq!(a.status, 502, "{}", rig.context(&a));
    assert_eq!(a.code(), "REGISTRY_ERROR", "{}", rig.context(&a));
    assert!(
        a.message().contains("Location"),
        "the message should name the Location\n{}",
        rig.context(&a)
    );
    assert!(
        matches!(canary.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "hoist connected to the foreign Location {foreign}"
    );
    rig.assert_no_tag(&a);
    assert!(
        !rig.proxy.log().iter().any(|s| s.method == "PATCH"),
        "no PATCH may follow a refused Location\n{}",
        rig.context(&a)
    );
    rig.assert_clean_push_skips_committed(&img)?;
    Ok(())
}

const NGINX_502: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.24.0</center>\r\n</body>\r\n</html>\r\n";

#[test]
fn html_error_page_is_quoted_as_text() -> Result<()> {
    let rig = Rig::start(&[])?;
    let img = image(11, &[256 << 10], "v1");
    rig.proxy.set_rules(vec![
        Rule::new(
            "PATCH",
            "/blobs/uploads/",
            Fault::Reply {
                status: 502,
                headers: vec![
                    ("Content-Type".into(), "text/html".into()),
                    ("Server".into(), "nginx/1.24.0".into()),
                ],
                body: NGINX_502.into(),
            },
        )
        .first(1),
    ]);
    let a = rig.push(&img)?;
    eprintln!("hoist answered {} {}", a.status, a.body);
    assert_eq!(a.status, 502, "{}", rig.context(&a));
    assert_eq!(a.code(), "REGISTRY_ERROR", "{}", rig.context(&a));
    let msg = a.message();
    assert!(
        msg.contains("502 Bad Gateway") && msg.contains("nginx"),
        "the page's text should be quoted: {msg}"
    );
    for tag in ["<html", "<head", "<h1", "</", "<hr", "<center"] {
        assert!(!msg.contains(tag), "raw HTML {tag:?} in the message: {msg}");
    }
    rig.assert_no_tag(&a);
    rig.assert_patch_session_cancelled(&a);
    rig.assert_clean_push_skips_committed(&img)?;
    Ok(())
}

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
