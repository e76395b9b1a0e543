//! Finding 1: a layer of another repository must not reach an archive by mount, neither by
//! naming an entry after its digest nor by listing a layer staged for someone else.

use crate::common::{env, named, push};
use crate::support::archives::*;

// ---------------------------------------------------------------------------------------------
// 1. A foreign layer must not leak by mount.

/// An entry named `blobs/sha256/<D>`, D a layer of another repository, holding junk: the push
/// fails DIGEST_MISMATCH and D is not linked into the target (it was mounted before hashing).
#[test]
fn a_blob_named_after_a_foreign_layer_is_not_mounted() {
    let (reg, hoist) = env(&[]);
    let victim = Oci::valid("victim");
    let d = victim.layer_digest(0);
    assert_eq!(
        push(&hoist, "/push/victim/app:v1", &victim.archive()).status,
        201
    );
    let mut files = Oci::valid("attacker").files();
    files.insert(1, (blob_path(&d), noise(7, 8192)));
    let a = push(&hoist, "/push/attacker/app:v1", &tar_of(&files));
    assert_eq!((a.status, a.code()), (400, "DIGEST_MISMATCH"), "{a:?}");
    assert!(
        !reg.has_blob("attacker/app", &d),
        "the victim's layer was linked into attacker/app by its name alone"
    );
    assert!(reg.tags("attacker/app").is_empty());
}

/// With `/push`, a layer another client uploaded sits in the shared staging repository. An
/// archive that only names it (its manifest lists it, the archive leaves it out) must not get
/// it mounted into its own repository.
#[test]
fn a_staged_layer_is_not_lent_to_an_archive_that_lacks_it() {
    let (reg, hoist) = env(&[]);
    let victim = named(Oci::valid("staged-victim"), "victim/app:v1");
    let d = victim.layer_digest(0);
    assert_eq!(push(&hoist, "/push", &victim.archive()).status, 201);
    let mut attacker = named(Oci::valid("staged-attacker"), "attacker/app:v1");
    attacker.layers = victim.layers.clone();
    attacker.config = victim.config.clone();
    attacker.relink();
    let files: Vec<_> = attacker
        .files()
        .into_iter()
        .filter(|(path, _)| *path != blob_path(&d))
        .collect();
    let a = push(&hoist, "/push", &tar_of(&files));
    assert_eq!((a.status, a.code()), (400, "BLOB_MISSING"), "{a:?}");
    assert!(
        !reg.has_blob("attacker/app", &d),
        "staged layer was lent out"
    );
    assert!(reg.tags("attacker/app").is_empty());
}
