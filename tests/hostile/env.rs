//! The harness: one registry and one hoist per test, and the rejection contract every
//! hostile case is checked against (status, code, message, nothing tagged, no open session).

use std::time::Duration;

use crate::support::archives::Oci;
use crate::support::{Answer, Hoist, Registry, push_bytes};

/// One registry and one hoist, per test.
pub struct Env {
    pub reg: Registry,
    pub hoist: Hoist,
}

impl Env {
    /// hoist with its default settings.
    pub fn new() -> Env {
        Env::with(&[])
    }

    /// hoist started with extra environment (limits).
    pub fn with(vars: &[(&str, &str)]) -> Env {
        let reg = Registry::start().expect("registry starts");
        let hoist = Hoist::with_env(&reg.url(), vars).expect("hoist starts");
        Env { reg, hoist }
    }

    /// Pushes `body` with curl; any answer is returned.
    pub fn push(&self, path: &str, body: &[u8]) -> Answer {
        push_bytes(&self.hoist, path, body).expect("curl runs")
    }

    /// Pushes a body that must be accepted.
    pub fn accept(&self, path: &str, body: &[u8]) -> Answer {
        let ans = self.push(path, body);
        assert_eq!(ans.status, 201, "{path} should be accepted: {ans:?}");
        ans
    }

    /// Pushes `body` to `/push/hostile/<case>:t` and checks the whole rejection contract.
    pub fn reject(
        &mut self,
        case: &str,
        body: &[u8],
        status: u16,
        codes: &[&str],
        names: &[&str],
    ) -> Answer {
        let path = format!("/push/hostile/{case}:t");
        self.reject_at(
            &path,
            &format!("hostile/{case}"),
            case,
            body,
            status,
            codes,
            names,
        )
    }

    /// Like `reject`, for any push path; `repo` is where a wrongful tag would land.
    #[expect(clippy::too_many_arguments)]
    pub fn reject_at(
        &mut self,
        path: &str,
        repo: &str,
        case: &str,
        body: &[u8],
        status: u16,
        codes: &[&str],
        names: &[&str],
    ) -> Answer {
        let ans = self.push(path, body);
        self.check_rejected(case, repo, &ans, status, codes, names);
        ans
    }

    /// (a) status, (b) code, (c) message names one of `names` (if any), (d) nothing tagged,
    /// no upload session left open, (e) hoist alive and a valid push still works.
    pub fn check_rejected(
        &mut self,
        case: &str,
        repo: &str,
        ans: &Answer,
        status: u16,
        codes: &[&str],
        names: &[&str],
    ) {
        assert!(
            ans.status == status && codes.contains(&ans.code()),
            "{case}: expected {status} {codes:?}, got {} {:?}: {}",
            ans.status,
            ans.code(),
            ans.body
        );
        let message = ans.body["error"]["message"].as_str().unwrap_or("");
        assert!(
            !message.is_empty(),
            "{case}: error without a message: {}",
            ans.body
        );
        if !names.is_empty() {
            assert!(
                names.iter().any(|n| message.contains(n)),
                "{case}: message {message:?} names none of {names:?}"
            );
        }
        self.assert_nothing_tagged(case, repo);
        self.assert_no_open_uploads(case);
        self.assert_still_serves(case);
    }

    /// Neither `repo` nor any repository in the catalog carries a tag.
    pub fn assert_nothing_tagged(&self, case: &str, repo: &str) {
        assert!(
            self.reg.tags(repo).is_empty(),
            "{case}: {repo} was tagged: {:?}",
            self.reg.tags(repo)
        );
        for r in self.reg.catalog() {
            assert!(
                self.reg.tags(&r).is_empty(),
                "{case}: {r} was tagged: {:?}",
                self.reg.tags(&r)
            );
        }
    }

    /// "open upload sessions are cancelled" (docs/API.md).
    pub fn assert_no_open_uploads(&self, case: &str) {
        self.reg
            .assert_no_open_uploads(case, Duration::from_secs(10));
    }

    /// hoist is alive and a valid push to `hostile/<case>-after` is tagged.
    pub fn assert_still_serves(&mut self, case: &str) {
        assert!(self.hoist.alive(), "{case}: hoist died");
        let repo = format!("hostile/{case}-after");
        self.accept(&format!("/push/{repo}:t"), &Oci::valid("after").archive());
        assert_eq!(
            self.reg.tags(&repo),
            ["t"],
            "{case}: valid push afterwards was not tagged"
        );
    }
}

// The codes a rejection may carry (docs/API.md), for `codes`.
pub const REQUEST_TOO_LARGE: &[&str] = &["REQUEST_TOO_LARGE"];
pub const DECOMPRESSED_TOO_LARGE: &[&str] = &["DECOMPRESSED_TOO_LARGE"];
pub const TOO_MANY_ENTRIES: &[&str] = &["TOO_MANY_ENTRIES"];
pub const METADATA_TOO_LARGE: &[&str] = &["METADATA_TOO_LARGE"];
pub const ENTRY_PATH_INVALID: &[&str] = &["ENTRY_PATH_INVALID"];
pub const LINK_INVALID: &[&str] = &["LINK_INVALID"];
pub const ENTRY_HEADER_INVALID: &[&str] = &["ENTRY_HEADER_INVALID"];
pub const ARCHIVE_INVALID: &[&str] = &["ARCHIVE_INVALID"];
pub const DUPLICATE_ENTRY: &[&str] = &["DUPLICATE_ENTRY"];
pub const DIGEST_MISMATCH: &[&str] = &["DIGEST_MISMATCH"];
pub const BLOB_MISSING: &[&str] = &["BLOB_MISSING"];
pub const MANIFEST_INVALID: &[&str] = &["MANIFEST_INVALID"];
/// API.md: unparsable or ambiguous metadata JSON is MANIFEST_INVALID.
pub const BAD_JSON: &[&str] = &["MANIFEST_INVALID"];
pub const UNSUPPORTED_FORMAT: &[&str] = &["UNSUPPORTED_FORMAT"];
pub const REFERENCE_INVALID: &[&str] = &["REFERENCE_INVALID"];
pub const REFERENCE_MISSING: &[&str] = &["REFERENCE_MISSING"];
pub const REFERENCE_AMBIGUOUS: &[&str] = &["REFERENCE_AMBIGUOUS"];
