//! Reference, tag, platform and digest parsing: any string is answered (never a panic), and
//! what the distribution grammar generates is accepted as written.

use std::str::FromStr;

use hoist::oci::Digest;
use hoist::oci::reference::{
    parse_image_name, parse_ref_name, parse_target, valid_platform, valid_repository, valid_tag,
};
use proptest::prelude::*;

use super::memory::budget;

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`, the grammar of one path component.
const COMPONENT: &str = "[a-z0-9]{1,8}((\\.|_|__|-{1,3})[a-z0-9]{1,8}){0,3}";
const TAG: &str = "[a-zA-Z0-9_][a-zA-Z0-9._-]{0,40}";

fn repository() -> impl Strategy<Value = String> {
    prop::collection::vec(COMPONENT, 1..5).prop_map(|parts| parts.join("/"))
}

proptest! {
    #[test]
    fn any_string_is_answered(s in "\\PC{0,300}") {
        let _b = budget(1 << 20);
        let _ = parse_target(&s);
        let _ = parse_image_name(&s);
        let _ = parse_ref_name(&s);
        let _ = valid_platform(&s);
        let _ = valid_tag(&s);
        let _ = Digest::from_str(&s);
    }

    #[test]
    fn any_bytes_near_the_grammar_are_answered(s in "[a-zA-Z0-9:/@._ -]{0,300}") {
        let _b = budget(1 << 20);
        if let Ok((repository, tag)) = parse_target(&s) {
            prop_assert!(valid_repository(&repository), "{repository:?} from {s:?}");
            if let Some(tag) = tag {
                prop_assert!(valid_tag(&tag), "{tag:?} from {s:?}");
            }
        }
    }

    #[test]
    fn generated_targets_are_accepted_as_written(repo in repository(), tag in prop::option::of(TAG)) {
        prop_assume!(repo.len() <= 255);
        let spec = match &tag {
            Some(t) => format!("{repo}:{t}"),
            None => repo.clone(),
        };
        let (got_repo, got_tag) = parse_target(&spec).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(got_repo, repo);
        prop_assert_eq!(got_tag, tag);
    }

    #[test]
    fn upper_case_and_bad_separators_are_refused(repo in repository(), bad in "[A-Z]|\\.\\.|___|//|/-|-/") {
        let spec = format!("{repo}{bad}x");
        prop_assert!(parse_target(&spec).is_err(), "{spec:?} accepted");
    }

    #[test]
    fn digests_take_only_lower_hex_of_the_right_length(hex in "[0-9a-fA-F]{60,68}") {
        let parsed = Digest::from_str(&format!("sha256:{hex}"));
        let valid = hex.len() == 64 && !hex.bytes().any(|b| b.is_ascii_uppercase());
        prop_assert_eq!(parsed.is_ok(), valid, "{}", hex);
    }
}
