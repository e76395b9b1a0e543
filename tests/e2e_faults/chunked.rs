//! Chunked mode (`upload_chunk_bytes`): a chunk is in memory, so a refused one is sent again;
//! one that keeps failing ends the push and cancels its session.

use std::time::Duration;

use anyhow::Result;

use super::rig::{REPO, Rig};
use crate::support::archives::image;
use crate::support::fault_proxy::{Fault, Rule, Seen};

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
