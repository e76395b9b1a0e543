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

    /// The upload session whose PATCH met the fault was cancelled.
    fn assert_patch_session_cancelled(&self, a: &Answer) {
        self.assert_session_cancelled(a, "PATCH");
    }

    /// The upload session whose `method` request met the fault was cancelled: hoist sent a
    /// DELETE on its URL, the registry answered it 2xx, and its storage holds no open session.
    fn assert_session_cancelled(&self, a: &Answer, method: &str) {
        let log = self.proxy.log();
        let faulted = log
            .iter()
            .find(|s| s.method == method && s.fault.is_some())
            .unwrap_or_else(|| panic!("no {method} met the fault\n{}", self.context(a)));
        let path = faulted.path().to_string();
        // The DELETE is best effort and may come just after the answer.
        let deadline = Instant::now() + Duration::from_secs(5);
        let delete = loop {
            let deletes: Vec<Seen> = self
                .proxy
                .log()
                .into_iter()
                .filter(|s| s.method == "DELETE" && s.path() == path && s.status.is_some())
                .collect();
            if let Some(d) = deletes.last() {
                break d.clone();
            }
            if Instant::now() > deadline {
                panic!(
                    "the upload session {path} was not cancelled (no DELETE)\n{}",
                    self.context(a)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(
            matches!(delete.status, Some(200..=299)),
            "the DELETE on {path} was answered {:?}, not 2xx: the session is still open\n{}",
            delete.status,
            self.context(a)
        );
        self.registry
            .assert_no_open_uploads(method, Duration::from_secs(5));
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
        "faults served to {method}\n{}",
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

/// `registry_upload_hosts` lets an upload Location leave the registry's host only over
/// https: an allowed host named by a plain-http Location is still refused, and never contacted.
#[test]
fn allowed_upload_host_is_still_refused_over_plain_http() -> Result<()> {
    let canary = std::net::TcpListener::bind("127.0.0.2:0")?;
    canary.set_nonblocking(true)?;
    let host = format!("127.0.0.2:{}", canary.local_addr()?.port());
    let allowed = format!(r#"["{host}"]"#);
    let rig = Rig::start(&[("HOIST_REGISTRY_UPLOAD_HOSTS", &allowed)])?;
    let img = image(27, &[64 << 10], "v1");
    rig.proxy.set_rules(vec![Rule::new(
        "POST",
        "/blobs/uploads/",
        Fault::ForeignLocation(format!("http://{host}")),
    )]);
    let a = rig.push(&img)?;
    assert_eq!(
        (a.status, a.code()),
        (502, "REGISTRY_ERROR"),
        "{}",
        rig.context(&a)
    );
    assert!(
        a.message().contains("registry_upload_hosts"),
        "{}",
        a.message()
    );
    assert!(
        matches!(canary.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "hoist connected to the plain-http upload host {host}"
    );
    rig.assert_no_tag(&a);
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

// ---------------------------------------------------------------------------------------------
// Answers the retry policy must tell apart: 429 is retried, 403 and 404 are not.

#[test]
fn retry_after_429_on_blob_head() -> Result<()> {
    let rig = Rig::start(&[])?;
    let img = image(13, &[64 << 10], "v1");
    let too_many = Fault::error(429, "TOOMANYREQUESTS", &[("Retry-After", "1")]);
    rig.proxy
        .set_rules(vec![Rule::new("HEAD", "/blobs/sha256:", too_many).first(1)]);
    let a = rig.push(&img)?;
    assert_eq!(a.status, 201, "{}", rig.context(&a));
    assert_retried(&rig, &a, "HEAD", 1);
    assert_eq!(rig.registry.tags(REPO), vec!["v1".to_string()]);
    Ok(())
}

/// docs/API.md: `DENIED` (502) is the registry denying the operation. A 403 is final: no
/// retry, nothing tagged, no session left open.
#[test]
fn registry_403_is_denied() -> Result<()> {
    let rig = Rig::start(&[])?;
    let img = image(14, &[64 << 10], "v1");
    rig.proxy.set_rules(vec![Rule::new(
        "POST",
        "/blobs/uploads/",
        Fault::error(403, "DENIED", &[]),
    )]);
    let a = rig.push(&img)?;
    assert_eq!(
        (a.status, a.code()),
        (502, "REGISTRY_DENIED"),
        "{}",
        rig.context(&a)
    );
    assert!(
        a.message().contains("injected DENIED"),
        "the registry's message should be quoted: {}",
        a.message()
    );
    let posts = rig
        .proxy
        .log()
        .iter()
        .filter(|s| s.method == "POST")
        .count();
    assert_eq!(posts, 1, "a 403 must not be retried\n{}", rig.context(&a));
    rig.assert_no_tag(&a);
    rig.registry
        .assert_no_open_uploads("denied", Duration::from_secs(5));
    Ok(())
}

/// A PATCH answered `404 BLOB_UPLOAD_UNKNOWN` (the registry lost the session): a registry
/// error quoting the registry's code, the session cancelled, a clean push afterwards works.
#[test]
fn unknown_upload_session_is_a_registry_error() -> Result<()> {
    let rig = Rig::start(&[ONE_AT_A_TIME])?;
    let img = two_layers(15);
    rig.proxy.set_rules(vec![
        Rule::new(
            "PATCH",
            "/blobs/uploads/",
            Fault::error(404, "BLOB_UPLOAD_UNKNOWN", &[]),
        )
        .skip(1)
        .first(1),
    ]);
    let a = rig.push(&img)?;
    assert_eq!(
        (a.status, a.code()),
        (502, "REGISTRY_ERROR"),
        "{}",
        rig.context(&a)
    );
    assert!(
        a.message().contains("BLOB_UPLOAD_UNKNOWN"),
        "the registry's code should be quoted: {}",
        a.message()
    );
    rig.assert_no_tag(&a);
    rig.assert_patch_session_cancelled(&a);
    rig.assert_clean_push_skips_committed(&img)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Faults on the requests around a PATCH: the commit (`PUT ?digest=`) and a mount.

#[test]
fn retry_after_503_on_blob_commit_put() -> Result<()> {
    let rig = Rig::start(&[])?;
    let img = image(16, &[256 << 10], "v1");
    rig.proxy.set_rules(vec![
        Rule::new("PUT", "/blobs/uploads/", Fault::unavailable()).first(1),
    ]);
    let a = rig.push(&img)?;
    assert_eq!(a.status, 201, "{}", rig.context(&a));
    assert_retried(&rig, &a, "PUT", 1);
    assert!(
        rig.proxy
            .log()
            .iter()
            .any(|s| s.method == "PUT" && s.target.contains("digest=")),
        "the commit carries ?digest=\n{}",
        rig.context(&a)
    );
    assert_eq!(rig.registry.tags(REPO), vec!["v1".to_string()]);
    assert!(rig.registry.has_blob(REPO, &img.layers[0]));
    Ok(())
}

/// A streamed layer whose commit keeps failing: the push fails and its session is cancelled.
#[test]
fn failing_blob_commit_put_cancels_the_session() -> Result<()> {
    let rig = Rig::start(&[("HOIST_RETRIES", "1")])?;
    let img = image(17, &[256 << 10], "v1");
    rig.proxy.set_rules(vec![Rule::new(
        "PUT",
        "/blobs/uploads/",
        Fault::error(500, "UNKNOWN", &[]),
    )]);
    let a = rig.push(&img)?;
    assert_eq!(
        (a.status, a.code()),
        (502, "REGISTRY_ERROR"),
        "{}",
        rig.context(&a)
    );
    rig.assert_no_tag(&a);
    rig.assert_session_cancelled(&a, "PUT");
    rig.assert_clean_push_skips_committed(&img)?;
    Ok(())
}

/// The config blob (held in memory, uploaded with `put_blob`) whose commit keeps failing:
/// every session opened for it is cancelled, none is left open in the registry.
#[test]
fn failing_config_commit_put_leaves_no_session_open() -> Result<()> {
    let rig = Rig::start(&[("HOIST_RETRIES", "1"), ONE_AT_A_TIME])?;
    let img = image(18, &[64 << 10], "v1");
    // The layer's commit goes through; every later blob commit (the config's) fails.
    rig.proxy.set_rules(vec![
        Rule::new("PUT", "/blobs/uploads/", Fault::error(500, "UNKNOWN", &[])).skip(1),
    ]);
    let a = rig.push(&img)?;
    assert_eq!(
        (a.status, a.code()),
        (502, "REGISTRY_ERROR"),
        "{}",
        rig.context(&a)
    );
    rig.assert_no_tag(&a);
    rig.registry
        .assert_no_open_uploads("config commit", Duration::from_secs(5));
    Ok(())
}

/// A mount the registry refuses (Harbor answers 401 for a project that does not exist). A
/// streamed blob is mounted only after its bytes were hashed (mounting first would link a
/// blob into the target on the strength of a name alone), so by then its bytes are gone:
/// the push fails with a retryable REGISTRY_ERROR, tags nothing and leaves no session, and
/// pushing again sends the layer.
#[test]
fn refused_mount_fails_once_then_the_layer_is_uploaded() -> Result<()> {
    let rig = Rig::start(&[])?;
    let img = image(19, &[256 << 10], "v1");
    // First into another repository, so hoist knows where the layer is and tries a mount.
    let first = push_bytes(&rig.hoist, "/push/e2e/faults-src:v1", &img.tar)?;
    assert_eq!(first.status, 201, "{}", rig.context(&first));
    rig.proxy.set_rules(vec![Rule::new(
        "POST",
        "mount=",
        Fault::error(401, "UNAUTHORIZED", &[]),
    )]);
    let a = rig.push(&img)?;
    assert_eq!(
        (a.status, a.code()),
        (502, "REGISTRY_ERROR"),
        "{}",
        rig.context(&a)
    );
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("push again"),
        "{}",
        rig.context(&a)
    );
    let log = rig.proxy.log();
    assert!(
        log.iter().any(|s| s.method == "POST"
            && s.target.contains("mount=")
            && s.target.contains("from=e2e%2Ffaults-src")
            && s.fault.is_some()),
        "hoist should have tried to mount from e2e/faults-src\n{}",
        rig.context(&a)
    );
    assert!(rig.registry.tags(REPO).is_empty(), "nothing is tagged");
    rig.registry
        .assert_no_open_uploads("refused mount", Duration::from_secs(5));
    let again = rig.push(&img)?;
    assert_eq!(again.status, 201, "{}", rig.context(&again));
    assert_eq!(
        again.outcome(&img.layers[0]),
        "uploaded",
        "{}",
        rig.context(&again)
    );
    assert_eq!(rig.registry.tags(REPO), vec!["v1".to_string()]);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Chunked mode (`upload_chunk_bytes`): a chunk is in memory, so a refused one is sent again.

const CHUNKS_64K: (&str, &str) = ("HOIST_UPLOAD_CHUNK_BYTES", "65536");

#[test]
fn chunked_upload_retries_a_refused_chunk() -> Result<()> {
    let rig = Rig::start(&[CHUNKS_64K])?;
    let img = image(20, &[256 << 10], "v1");
    rig.proxy.set_rules(vec![
        Rule::new("PATCH", "/blobs/uploads/", Fault::unavailable())
            .skip(2)
            .first(1),
    ]);
    let a = rig.push(&img)?;
    assert_eq!(a.status, 201, "{}", rig.context(&a));
    let log = rig.proxy.log();
    let faulted = log
        .iter()
        .find(|s| s.method == "PATCH" && s.fault.is_some())
        .expect("a chunk met the fault");
    let range = faulted.header("content-range").unwrap_or("").to_string();
    assert!(!range.is_empty(), "chunk without Content-Range");
    let resent: Vec<&Seen> = log
        .iter()
        .filter(|s| {
            s.method == "PATCH"
                && s.fault.is_none()
                && s.at > faulted.at
                && s.header("content-range") == Some(range.as_str())
        })
        .collect();
    assert_eq!(
        resent.len(),
        1,
        "the refused chunk {range} should be sent again once\n{}",
        rig.context(&a)
    );
    assert!(resent[0].at - faulted.at >= Duration::from_millis(900));
    assert_eq!(resent[0].status, Some(202));
    assert_eq!(rig.registry.tags(REPO), vec!["v1".to_string()]);
    assert!(rig.registry.has_blob(REPO, &img.layers[0]));
    Ok(())
}

#[test]
fn chunked_upload_with_a_failing_chunk_cancels_the_session() -> Result<()> {
    let rig = Rig::start(&[CHUNKS_64K, ("HOIST_RETRIES", "1")])?;
    let img = image(21, &[256 << 10], "v1");
    rig.proxy.set_rules(vec![
        Rule::new(
            "PATCH",
            "/blobs/uploads/",
            Fault::error(500, "UNKNOWN", &[]),
        )
        .skip(1),
    ]);
    let a = rig.push(&img)?;
    assert_eq!(
        (a.status, a.code()),
        (502, "REGISTRY_ERROR"),
        "{}",
        rig.context(&a)
    );
    rig.assert_no_tag(&a);
    rig.assert_patch_session_cancelled(&a);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Backpressure: a registry that stops reading holds the client back.

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

// ---------------------------------------------------------------------------------------------
// A registry that breaks the protocol mid-body.

/// A registry that answers `202` to a PATCH before its body ended leaves hoist with a blob
/// whose bytes never all went out: the registry broke the protocol, so the answer is 502
/// REGISTRY_ERROR (it was INTERNAL, which means a bug in hoist); nothing is tagged and the
/// session is cancelled.
#[test]
fn patch_answered_before_its_body_ended_is_a_registry_error() -> Result<()> {
    let rig = Rig::start(&[])?;
    let img = image(23, &[16 << 20], "v1");
    rig.proxy.set_rules(vec![Rule::new(
        "PATCH",
        "/blobs/uploads/",
        Fault::AcceptMidBody { after: 256 << 10 },
    )]);
    let a = rig.push(&img)?;
    assert_eq!(
        (a.status, a.code()),
        (502, "REGISTRY_ERROR"),
        "{}",
        rig.context(&a)
    );
    assert!(
        a.body["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("before the blob's body ended"),
        "{}",
        rig.context(&a)
    );
    rig.assert_no_tag(&a);
    rig.assert_patch_session_cancelled(&a);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// connect_timeout.

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
