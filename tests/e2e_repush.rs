//! Re-pushes: a push of an archive whose blobs the registry already holds sends no layer
//! bytes, whatever the archive's form.

mod support;

use support::archives::{self, DupLink};
use support::{Hoist, Registry, push_bytes};

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
