//! A registry that stops answering (a PATCH, a manifest PUT) is given up on at the idle
//! timeout; a registry that reads slowly, or a client that sends slowly, is not a stall.

use std::time::{Duration, Instant};

use anyhow::Result;

use super::rig::{ONE_AT_A_TIME, REPO, Rig, two_layers};
use crate::support::archives::image;
use crate::support::fault_proxy::{Fault, Rule};
use crate::support::push_bytes_with;

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
