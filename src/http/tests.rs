//! Router tests through `oneshot`: status codes, error bodies and headers of what admission
//! decides before any registry is contacted (the registry here is a closed loopback port).

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tower::ServiceExt;

use super::app;
use crate::config::RawConfig;

fn state(max_pushes: usize) -> super::AppState {
    let raw = RawConfig {
        registry: "http://127.0.0.1:9".into(),
        max_concurrent_pushes: max_pushes,
        cors_allow_origins: vec!["https://portal.example".into()],
        ..RawConfig::default()
    };
    crate::state(raw.validate().unwrap()).unwrap()
}

async fn send(state: super::AppState, req: Request<Body>) -> (StatusCode, serde_json::Value) {
    let resp = app(state).oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or_default())
}

fn put(uri: &str, body: &'static [u8]) -> Request<Body> {
    Request::put(uri).body(Body::from(body)).unwrap()
}

fn code(body: &serde_json::Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn health_is_ok() {
    let resp = app(state(8))
        .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_bad_url_reference_is_reference_invalid() {
    let (status, body) = send(state(8), put("/push/Bad:x", b"data")).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "REFERENCE_INVALID")
    );
    assert!(body["error"]["message"].as_str().unwrap().contains("Bad:x"));
}

#[tokio::test]
async fn an_unknown_parameter_value_is_parameter_invalid() {
    let req = put("/push/a/b:1?layer_compression=lzma", b"data");
    let (status, body) = send(state(8), req).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "PARAMETER_INVALID")
    );
}

#[tokio::test]
async fn a_declared_length_over_the_limit_is_refused_before_reading() {
    let req = Request::put("/push/a/b:1")
        .header(header::CONTENT_LENGTH, (64u64 << 30) + 1)
        .body(Body::empty())
        .unwrap();
    let (status, body) = send(state(8), req).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::PAYLOAD_TOO_LARGE, "REQUEST_TOO_LARGE")
    );
}

#[tokio::test]
async fn an_empty_body_is_unsupported() {
    let (status, body) = send(state(8), put("/push/a/b:1", b"")).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_FORMAT")
    );
}

#[tokio::test]
async fn a_multipart_body_without_a_file_part_is_unsupported() {
    let body = "--zz\r\nContent-Disposition: form-data; name=\"tag\"\r\n\r\nv1\r\n--zz--\r\n";
    let req = Request::post("/push/a/b:1")
        .header(header::CONTENT_TYPE, "multipart/form-data; boundary=zz")
        .body(Body::from(body))
        .unwrap();
    let (status, body) = send(state(8), req).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_FORMAT")
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("\"file\"")
    );
}

#[tokio::test]
async fn with_every_slot_taken_a_push_is_busy_with_retry_after() {
    let state = state(1);
    let _held = state.slots.clone().try_acquire_owned().unwrap();
    let resp = app(state)
        .oneshot(put("/push/a/b:1", b"data"))
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.headers()[header::RETRY_AFTER], "5");
}

#[tokio::test]
async fn cors_preflight_allows_only_the_configured_origin() {
    let preflight = |origin: &str| {
        Request::builder()
            .method("OPTIONS")
            .uri("/push/a/b:1")
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "PUT")
            .body(Body::empty())
            .unwrap()
    };
    let ok = app(state(8))
        .oneshot(preflight("https://portal.example"))
        .await
        .unwrap();
    assert_eq!(
        ok.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "https://portal.example"
    );
    let other = app(state(8))
        .oneshot(preflight("https://evil.example"))
        .await
        .unwrap();
    assert!(
        other
            .headers()
            .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
            .is_none()
    );
}
