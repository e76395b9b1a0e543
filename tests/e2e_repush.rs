//! Re-pushes: a push of an archive whose blobs the registry already holds sends no layer
//! bytes, whatever the archive's form.

mod support;

use support::archives::{self, DupLink};
use support::{Hoist, Registry, push_bytes, sha256};

/// A legacy `docker save` names its layers `<v1 id>/layer.tar`, not by diffID, so hoist cannot
/// know before hashing what a layer will compress to. It remembers the diffID each name had:
/// the second push of the same archive only hashes the layers (checked against that diffID)
/// and sends none of them; every layer is `exists`.
#[test]
fn a_legacy_docker_save_pushed_again_sends_no_layer() {
    let reg = Registry::start().unwrap();
    let hoist = Hoist::start(&reg).unwrap();
    let b = archives::legacy(DupLink::Symlink);
    let first = push_bytes(&hoist, "/push/repush/legacy:v1", &b.bytes).unwrap();
    assert_eq!(first.status, 201, "{first:?}");
    let sent = first.body["bytes_sent"].as_u64().unwrap();
    assert!(sent > 1_000_000, "the first push sends the layers: {sent}");
    let again = push_bytes(&hoist, "/push/repush/legacy:v1", &b.bytes).unwrap();
    assert_eq!(again.status, 201, "{again:?}");
    let outcomes = again.outcomes();
    assert!(outcomes.iter().all(|o| o == "exists"), "{outcomes:?}");
    let resent = again.body["bytes_sent"].as_u64().unwrap();
    assert!(resent < 64 << 10, "the re-push sent {resent} bytes");
    assert_eq!(
        again.body["images"][0]["digest"],
        first.body["images"][0]["digest"]
    );
}

/// `?digest=` names the archive's sha256. Pushed again into the same repository, the same
/// bytes are replayed: hashed, not unpacked (no second "archive read" in the log), published
/// from what the first push found; the report says `replayed` and nothing is uploaded.
#[test]
fn an_archive_named_by_its_digest_is_replayed_when_pushed_again() {
    let reg = Registry::start().unwrap();
    let hoist = Hoist::start(&reg).unwrap();
    let img = archives::image(41, &[300_000, 200_000], "v1");
    let path = format!("/push/known/app:v1?digest={}", sha256(&img.tar));
    let first = push_bytes(&hoist, &path, &img.tar).unwrap();
    assert_eq!(first.status, 201, "{first:?}");
    assert!(first.body.get("replayed").is_none(), "{first:?}");
    let writes = reg.writes().len();
    let path = format!("/push/known/app:v2?digest={}", sha256(&img.tar));
    let again = push_bytes(&hoist, &path, &img.tar).unwrap();
    assert_eq!(again.status, 201, "{again:?}");
    assert_eq!(again.body["replayed"], true, "{again:?}");
    let outcomes = again.outcomes();
    assert!(outcomes.iter().all(|o| o == "exists"), "{outcomes:?}");
    let resent = again.body["bytes_sent"].as_u64().unwrap();
    assert!(
        resent < 4096,
        "the replay sent {resent} bytes (more than its manifest)"
    );
    assert_eq!(again.body["bytes_received"], img.tar.len());
    assert_eq!(
        again.body["images"][0]["digest"],
        first.body["images"][0]["digest"]
    );
    hoist.wait_for_line(&["pushed", "replayed=true"]);
    let reads = hoist.stderr().matches("archive read").count();
    assert_eq!(
        reads,
        1,
        "the replay unpacked the archive:\n{}",
        hoist.stderr()
    );
    let replay_writes: Vec<_> = reg.writes().split_off(writes);
    assert!(
        replay_writes
            .iter()
            .all(|(m, p, _)| m == "PUT" && p.contains("/manifests/")),
        "a replay writes only the tag: {replay_writes:?}"
    );
    let metrics = support::get_text(&format!("{}/metrics", hoist.url)).unwrap();
    let replays = support::metric(&metrics, "hoist_pushes_replayed_total");
    assert_eq!(replays, Some(1.0), "{metrics}");
    let (_, media_type) = reg.manifest("known/app", "v2").unwrap();
    assert!(media_type.contains("manifest"), "{media_type}");
    // Another repository is another push: read in full.
    let path = format!("/push/other/app:v1?digest={}", sha256(&img.tar));
    let elsewhere = push_bytes(&hoist, &path, &img.tar).unwrap();
    assert_eq!(elsewhere.status, 201, "{elsewhere:?}");
    assert!(elsewhere.body.get("replayed").is_none(), "{elsewhere:?}");
}

/// Bytes that are not the named digest are refused before anything is tagged, whether the
/// digest names a known archive (a replay must not publish on a claim) or not.
#[test]
fn a_body_that_is_not_its_named_digest_is_refused_untagged() {
    let reg = Registry::start().unwrap();
    let hoist = Hoist::start(&reg).unwrap();
    let img = archives::image(42, &[100_000], "v1");
    let other = archives::image(43, &[100_000], "v1");
    let named = sha256(&img.tar);
    let ok = push_bytes(
        &hoist,
        &format!("/push/claim/app:v1?digest={named}"),
        &img.tar,
    );
    assert_eq!(ok.unwrap().status, 201);
    for (tag, body) in [("replayed", &other.tar), ("fresh", &other.tar)] {
        let digest = if tag == "fresh" {
            sha256(b"not this")
        } else {
            named.clone()
        };
        let path = format!("/push/claim/app:{tag}?digest={digest}");
        let refused = push_bytes(&hoist, &path, body).unwrap();
        assert_eq!(refused.status, 400, "{refused:?}");
        assert_eq!(refused.code(), "ARCHIVE_DIGEST_MISMATCH", "{refused:?}");
        assert!(
            refused.message().contains(&sha256(body)),
            "{}",
            refused.message()
        );
        assert!(
            !reg.tags("claim/app").contains(&tag.to_string()),
            "{tag} was tagged"
        );
    }
    let bad = push_bytes(&hoist, "/push/claim/app:v9?digest=md5:abc", &img.tar).unwrap();
    assert_eq!(
        (bad.status, bad.code()),
        (400, "PARAMETER_INVALID"),
        "{bad:?}"
    );
}

/// A registry may collect blobs between two pushes: a known archive whose blobs are gone is
/// pushed in full again, not replayed into a manifest that names missing blobs.
#[test]
fn a_known_archive_whose_blobs_are_gone_is_pushed_in_full() {
    let reg = Registry::start().unwrap();
    let hoist = Hoist::start(&reg).unwrap();
    let img = archives::image(44, &[150_000], "v1");
    let path = format!("/push/gone/app:v1?digest={}", sha256(&img.tar));
    assert_eq!(push_bytes(&hoist, &path, &img.tar).unwrap().status, 201);
    let layer = &img.layers[0];
    let path_of_blob = format!("/v2/gone/app/blobs/{layer}");
    let deleted = support::request(&reg.host(), "DELETE", &path_of_blob, &[], b"").unwrap();
    assert_eq!(deleted.status, 202, "{deleted:?}");
    assert!(!reg.has_blob("gone/app", layer));
    let again = push_bytes(&hoist, &path, &img.tar).unwrap();
    assert_eq!(again.status, 201, "{again:?}");
    assert!(again.body.get("replayed").is_none(), "{again:?}");
    assert_eq!(again.outcome(layer), "uploaded");
    assert!(reg.has_blob("gone/app", layer));
}
