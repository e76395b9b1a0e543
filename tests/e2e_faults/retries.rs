//! Faults hoist retries, because the request's body is at hand (a HEAD, a POST, a manifest,
//! a commit): 503 and 429 with `Retry-After`, each sent again no sooner than it allows.

use std::time::{Duration, Instant};

use anyhow::Result;

use super::rig::{REPO, Rig};
use crate::support::archives::image;
use crate::support::fault_proxy::{Fault, Rule, Seen};
use crate::support::{Answer, sha256};

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
