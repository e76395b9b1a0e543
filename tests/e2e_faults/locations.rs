//! Upload Locations hoist must refuse: one on another host, and one on an allowed upload host
//! over plain http. Neither is ever contacted.

use anyhow::Result;

use super::rig::Rig;
use crate::support::archives::image;
use crate::support::fault_proxy::{Fault, Rule};

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
