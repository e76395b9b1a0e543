//! Final answers, not retried: a proxy's HTML error page (quoted as text), a 403 (DENIED), a
//! 404 for an upload session the registry lost.

use std::time::Duration;

use anyhow::Result;

use super::rig::{ONE_AT_A_TIME, Rig, two_layers};
use crate::support::archives::image;
use crate::support::fault_proxy::{Fault, Rule};

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
