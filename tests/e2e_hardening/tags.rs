//! Tags and query parameters: 100,000 tags refused at once (finding 7), tags all or nothing
//! (finding 8), one extra tag for two images refused as ambiguous (finding 9), and an
//! unknown `layer_compression` named as the parameter at fault.

use std::time::Instant;

use serde_json::json;

use crate::common::{env, push};
use crate::support;
use crate::support::archives::*;
use crate::support::fault_proxy::{Fault, Proxy, Rule};
use crate::support::{Hoist, Registry};

// ---------------------------------------------------------------------------------------------
// 7. Tags are bounded.

/// 100,000 tags in one multipart `tag` part: answered at once (no answer within 60 s
/// before); and more than limits.tags in the query is refused before the archive is read.
#[test]
fn a_hundred_thousand_tags_are_refused_at_once() {
    let (reg, hoist) = env(&[]);
    let dir = support::scratch();
    let tags: Vec<String> = (0..100_000).map(|i| format!("t{i}")).collect();
    let tag_file = support::p(&dir, "tags.txt");
    std::fs::write(&tag_file, tags.join(",")).unwrap();
    let archive = support::p(&dir, "a.tar");
    std::fs::write(&archive, Oci::valid("tags").archive()).unwrap();
    let tag_field = format!("<{}", tag_file.display());
    let started = Instant::now();
    let a = support::push_multipart(&hoist, "/push/tags/app", &archive, &[("tag", &tag_field)])
        .unwrap();
    assert_eq!(
        (a.status, a.code()),
        (413, "PREAMBLE_TOO_LARGE"),
        "{a:?} after {:?}",
        started.elapsed()
    );
    let query: String = (0..65).map(|i| format!("tag=q{i}&")).collect();
    let a = push(
        &hoist,
        &format!("/push/tags/app?{query}"),
        &Oci::valid("tags").archive(),
    );
    assert_eq!((a.status, a.code()), (400, "TOO_MANY_TAGS"), "{a:?}");
    assert!(reg.tags("tags/app").is_empty());
}

// ---------------------------------------------------------------------------------------------
// 8. Tags are all or nothing.

/// The second of two tags fails (the registry answers 500): the first tag, which named an
/// older image, is put back, and the error says so.
#[test]
fn a_failing_second_tag_puts_the_first_one_back() {
    let reg = Registry::start().unwrap();
    let proxy = Proxy::start(&reg.url()).unwrap();
    let hoist = Hoist::with_env(&proxy.url(), &[("HOIST_RETRIES", "0")]).unwrap();
    // Images without a ref name of their own, so the push writes exactly the tags asked.
    let unnamed = |seed: &str| {
        let mut oci = Oci::valid(seed);
        oci.index["manifests"][0]["annotations"] = json!({});
        oci.archive()
    };
    let old = push(&hoist, "/push/alltags/app:a", &unnamed("old"));
    assert_eq!(old.status, 201, "{old:?}");
    let (_, old_digest) = reg.manifest("alltags/app", "a").unwrap();
    proxy.set_rules(vec![Rule::new(
        "PUT",
        "/manifests/b",
        Fault::error(500, "UNKNOWN", &[]),
    )]);
    let a = push(&hoist, "/push/alltags/app?tag=a&tag=b", &unnamed("new"));
    assert_eq!((a.status, a.code()), (502, "REGISTRY_ERROR"), "{a:?}");
    assert!(a.message().contains("restored"), "{a:?}");
    let (_, now) = reg.manifest("alltags/app", "a").unwrap();
    assert_eq!(now, old_digest, "tag a was left on the new image");
    assert_eq!(reg.tags("alltags/app"), ["a"]);
}

// ---------------------------------------------------------------------------------------------
// 9. The report must not lie.

/// Two images of one archive pushed to one repository with `?tag=x`: only the last would keep
/// x, while the report claimed it for both. Now it is refused as ambiguous.
#[test]
fn one_extra_tag_for_two_images_in_one_repository_is_ambiguous() {
    let (reg, hoist) = env(&[]);
    let (a, b) = (Oci::valid("two-a"), Oci::valid("two-b"));
    let mut files = a.files();
    files.pop();
    let mut rest = b.files();
    rest.pop();
    files.extend(rest.into_iter().skip(1));
    let mut second = b.index["manifests"][0].clone();
    second["annotations"]["org.opencontainers.image.ref.name"] = json!("2.0");
    let mut index = a.index.clone();
    index["manifests"].as_array_mut().unwrap().push(second);
    files.push(("index.json".into(), serde_json::to_vec(&index).unwrap()));
    let answer = push(&hoist, "/push/two/app?tag=x", &tar_of(&files));
    assert_eq!(
        (answer.status, answer.code()),
        (400, "REFERENCE_AMBIGUOUS"),
        "{answer:?}"
    );
    assert!(answer.message().contains("two/app:x"), "{answer:?}");
    assert!(reg.tags("two/app").is_empty());
}

// ---------------------------------------------------------------------------------------------
// Codes that say which limit or parameter was at fault.

/// A query parameter with a value hoist does not take names the parameter (it was
/// REFERENCE_INVALID, as if a name were wrong).
#[test]
fn an_unknown_layer_compression_is_parameter_invalid() {
    let (reg, hoist) = env(&[]);
    let a = push(
        &hoist,
        "/push/param/app:v1?layer_compression=lzma",
        &Oci::valid("p").archive(),
    );
    assert_eq!((a.status, a.code()), (400, "PARAMETER_INVALID"), "{a:?}");
    assert!(a.message().contains("layer_compression"), "{a:?}");
    assert!(reg.tags("param/app").is_empty());
}
