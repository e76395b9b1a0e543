//! What CI jobs and portals see during a push: live NDJSON events, dry runs that write
//! nothing, and choosing platforms from a multi-platform archive, against a real registry.

mod support;

use serde_json::Value;

use support::archives::{self, image, image_corrupt};
use support::{Answer, Hoist, Registry, push_bytes, push_bytes_with};

fn env() -> (Registry, Hoist) {
    let reg = Registry::start().expect("registry starts");
    let hoist = Hoist::start(&reg).expect("hoist starts");
    (reg, hoist)
}

/// The NDJSON lines of an answer, parsed.
fn events(a: &Answer) -> Vec<Value> {
    let text = a
        .body
        .as_str()
        .unwrap_or_else(|| panic!("not NDJSON: {a:?}"));
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

fn names(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect()
}

const NDJSON: &str = "Accept: application/x-ndjson";

/// A push followed live: 200 and `application/x-ndjson` at once; `progress` while bytes move
/// (the client is held to 2 MB/s so the push lasts a few seconds), one `blob` per layer,
/// `image`, and `done` last with the same report a 201 carries.
#[test]
fn a_push_followed_as_ndjson_tells_progress_blobs_image_and_done() {
    let (reg, hoist) = env();
    let img = image(41, &[6 << 20], "v1");
    let a = push_bytes_with(
        &hoist,
        "/push/ndjson/app:v1",
        &img.tar,
        &["-H", NDJSON, "--limit-rate", "2M"],
    )
    .unwrap();
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.header("content-type"), Some("application/x-ndjson"));
    let events = events(&a);
    let names = names(&events);
    assert_eq!(names.last(), Some(&"done"), "{names:?}");
    let image_at = names
        .iter()
        .position(|n| *n == "image")
        .expect("an image event");
    assert!(names[..image_at].contains(&"blob"), "{names:?}");
    let progress: Vec<u64> = events
        .iter()
        .filter(|e| e["event"] == "progress")
        .map(|e| e["bytes_received"].as_u64().unwrap())
        .collect();
    assert!(progress.len() >= 2, "progress while bytes move: {names:?}");
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");
    let blob = events
        .iter()
        .find(|e| e["event"] == "blob" && e["digest"] == img.layers[0]);
    assert_eq!(blob.expect("the layer's blob event")["outcome"], "uploaded");
    let report = &events.last().unwrap()["report"];
    let (bytes, _) = reg.manifest("ndjson/app", "v1").unwrap();
    let digest = support::sha256(&bytes);
    assert_eq!(report["images"][0]["digest"], digest.as_str());
    assert_eq!(events[image_at]["digest"], digest.as_str());
    assert_eq!(reg.tags("ndjson/app"), ["v1"]);
}

/// A failing push followed live ends with `error`, carrying the code and message a failure
/// body carries; nothing is tagged. A request refused before it is admitted keeps its status.
#[test]
fn a_failing_push_followed_as_ndjson_ends_with_error() {
    let (reg, hoist) = env();
    let bad = image_corrupt(42, &[1 << 20], "v1");
    let a = push_bytes_with(&hoist, "/push/ndjson/bad:v1", &bad.tar, &["-H", NDJSON]).unwrap();
    assert_eq!(a.status, 200, "{a:?}");
    let events = events(&a);
    let last = events.last().unwrap();
    assert_eq!(last["event"], "error", "{events:?}");
    assert_eq!(last["error"]["code"], "DIGEST_MISMATCH");
    assert!(last["error"]["message"].as_str().unwrap().contains("blob"));
    assert!(reg.tags("ndjson/bad").is_empty());
    let early = push_bytes_with(&hoist, "/push/Bad:v1", &bad.tar, &["-H", NDJSON]).unwrap();
    assert_eq!((early.status, early.code()), (400, "REFERENCE_INVALID"));
}

/// `?dry_run=true` reads and verifies the whole archive and writes nothing: the registry
/// sees only reads. The report says what a push would do: `uploaded` before, `exists` once
/// pushed, `mounted` for another repository of the same registry.
#[test]
fn a_dry_run_verifies_and_writes_nothing() {
    let (reg, hoist) = env();
    let img = image(43, &[512 << 10], "v1");
    let dry = push_bytes(&hoist, "/push/dry/app:v1?dry_run=true", &img.tar).unwrap();
    assert_eq!(dry.status, 200, "{dry:?}");
    assert_eq!(dry.body["dry_run"], true);
    assert_eq!(dry.outcome(&img.layers[0]), "uploaded");
    let writes = reg.writes();
    assert!(writes.is_empty(), "a dry run wrote: {writes:?}");
    assert!(reg.tags("dry/app").is_empty());
    assert!(!reg.has_blob("dry/app", &img.layers[0]));
    let bad = image_corrupt(44, &[512 << 10], "v1");
    let a = push_bytes(&hoist, "/push/dry/bad:v1?dry_run=1", &bad.tar).unwrap();
    assert_eq!(
        (a.status, a.code()),
        (400, "DIGEST_MISMATCH"),
        "verified like a push"
    );
    assert_eq!(
        push_bytes(&hoist, "/push/dry/app:v1", &img.tar)
            .unwrap()
            .status,
        201
    );
    let again = push_bytes(&hoist, "/push/dry/app:v1?dry_run=true", &img.tar).unwrap();
    assert_eq!(again.outcome(&img.layers[0]), "exists");
    let other = push_bytes(&hoist, "/push/dry/other:v1?dry_run=true", &img.tar).unwrap();
    assert_eq!(other.outcome(&img.layers[0]), "mounted");
    assert!(!reg.has_blob("dry/other", &img.layers[0]));
}

/// `?platform=linux/arm64` from a two-platform archive: the index pushed lists only arm64
/// (rewritten, said in the report), skopeo reads it back, and amd64's own layer is not in the
/// repository. A platform the archive lacks names the ones it has; a malformed one is a
/// parameter error.
#[test]
fn a_platform_filter_pushes_only_that_platform() {
    let (reg, hoist) = env();
    let b = archives::oci_multi_platform();
    let a = push_bytes(&hoist, "/push/plat/app:v1?platform=linux/arm64", &b.bytes).unwrap();
    assert_eq!(a.status, 201, "{a:?}");
    let r = &a.body["images"][0];
    assert_eq!(r["manifest_rewritten"], true);
    let children = r["manifests"].as_array().unwrap();
    assert_eq!(children.len(), 1, "{r:#}");
    assert_eq!(children[0]["platform"], "linux/arm64");
    let raw = support::skopeo_inspect(&reg, "plat/app:v1", &["--raw"]).unwrap();
    let listed = raw["manifests"].as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["platform"]["architecture"], "arm64");
    let amd64 = b
        .images
        .iter()
        .find(|i| i.platform.as_deref() == Some("linux/amd64"))
        .unwrap();
    assert!(
        !reg.has_blob("plat/app", &amd64.layer_digests[1]),
        "amd64's own layer was pushed"
    );
    let missing = push_bytes(&hoist, "/push/plat/app:v2?platform=linux/s390x", &b.bytes).unwrap();
    assert_eq!(
        (missing.status, missing.code()),
        (400, "PLATFORM_MISSING"),
        "{missing:?}"
    );
    assert!(missing.message().contains("linux/amd64"), "{missing:?}");
    let malformed = push_bytes(&hoist, "/push/plat/app:v2?platform=Linux", &b.bytes).unwrap();
    assert_eq!(
        (malformed.status, malformed.code()),
        (400, "PARAMETER_INVALID")
    );
    assert_eq!(reg.tags("plat/app"), ["v1"]);
}
