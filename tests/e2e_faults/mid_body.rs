//! Failures once a streamed body is gone: a PATCH met with a 500, a dropped connection or an
//! early `202` in the middle of its body. A clear error, nothing tagged, the session
//! cancelled.

use anyhow::Result;

use super::rig::{ONE_AT_A_TIME, REPO, Rig, two_layers};
use crate::support::archives::image;
use crate::support::fault_proxy::{Fault, Rule};

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
