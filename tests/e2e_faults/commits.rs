//! Faults on the requests around a PATCH: a blob's commit (`PUT ?digest=`) that keeps failing,
//! for a streamed layer and for the config, and a mount the registry refuses.

use std::time::Duration;

use anyhow::Result;

use super::rig::{ONE_AT_A_TIME, REPO, Rig};
use crate::support::archives::image;
use crate::support::fault_proxy::{Fault, Rule};
use crate::support::push_bytes;

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
