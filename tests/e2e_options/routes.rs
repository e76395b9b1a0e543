//! What hoist serves besides pushes: the upload page and `/healthz`, the CORS preflight for
//! configured origins only, and `/metrics` counting pushes and rejections by code.

use std::process::Command;

use crate::common::oci_bytes;
use crate::support::*;

#[test]
fn upload_page_and_health_answer() {
    let reg = Registry::start().unwrap();
    let hoist = Hoist::start(&reg).unwrap();
    let page = run(Command::new("curl").args(["-sf", &format!("{}/", hoist.url)])).unwrap();
    assert!(
        page.contains("<form") && page.contains("type=\"file\""),
        "{page}"
    );
    let health =
        run(Command::new("curl").args(["-sf", &format!("{}/healthz", hoist.url)])).unwrap();
    assert_eq!(health.trim(), "ok");
}

#[test]
fn cors_preflight_allows_configured_origin_only() {
    let reg = Registry::start().unwrap();
    let hoist = Hoist::with_env(
        &reg.url(),
        &[("HOIST_CORS_ALLOW_ORIGINS", "[\"https://portal.example\"]")],
    )
    .unwrap();
    let preflight = |origin: &str| {
        run(Command::new("curl").args([
            "-s",
            "-D",
            "-",
            "-o",
            "/dev/null",
            "-X",
            "OPTIONS",
            "-H",
            &format!("Origin: {origin}"),
            "-H",
            "Access-Control-Request-Method: PUT",
            &format!("{}/push/x/y:1", hoist.url),
        ]))
        .unwrap()
        .to_ascii_lowercase()
    };
    assert!(
        preflight("https://portal.example")
            .contains("access-control-allow-origin: https://portal.example")
    );
    assert!(!preflight("https://evil.example").contains("access-control-allow-origin"));
}

#[test]
fn metrics_count_pushes_and_rejections_by_code() {
    let reg = Registry::start().unwrap();
    let hoist = Hoist::start(&reg).unwrap();
    let built = oci_bytes("metrics/app:1");
    assert_eq!(
        push_bytes(&hoist, "/push/metrics/app:1", &built.bytes)
            .unwrap()
            .status,
        201
    );
    assert_eq!(
        push_bytes(&hoist, "/push/metrics/app:1", b"not an archive")
            .unwrap()
            .status,
        415
    );
    let text = get_text(&format!("{}/metrics", hoist.url)).unwrap();
    // Whole series names and exact values: `hoist_pushes_total 1` must not match `... 10`.
    for (series, value) in [
        ("hoist_pushes_total{outcome=\"success\"}", 1.0),
        ("hoist_push_errors_total{code=\"UNSUPPORTED_FORMAT\"}", 1.0),
        ("hoist_pushes_in_flight", 0.0),
        ("hoist_blobs_total{outcome=\"uploaded\"}", 3.0),
    ] {
        assert_eq!(metric(&text, series), Some(value), "{series}\n{text}");
    }
    let received = metric(&text, "hoist_bytes_received_total").unwrap();
    assert!(
        received >= built.bytes.len() as f64,
        "bytes received {received}\n{text}"
    );
}
