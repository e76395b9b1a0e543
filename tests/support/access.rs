//! Who may push where (`[auth]`): API tokens made by `hoist token`, a registry with a hoist
//! in front of it that reads them from a tokens file, the `[[auth.oidc]]` entry that trusts
//! a CI issuer ([`super::issuer`]), `Authorization` values and a push that carries one, and
//! what every refusal must leave behind: nothing tagged, no blob linked, no credential logged.

use std::path::{Path, PathBuf};

use super::archives::Image;
use super::{Answer, Hoist, Registry, request, run_hoist};

/// `hoist token --name NAME --repository R...`: the token, and the `[[token]]` entry to paste
/// into a tokens file (it holds the token's digest, never the token).
pub fn new_token(name: &str, repositories: &[&str]) -> (String, String) {
    let mut args = vec!["token", "--name", name];
    for r in repositories {
        args.extend(["--repository", r]);
    }
    let out = run_hoist(&args, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let token = text
        .lines()
        .find(|l| l.starts_with("hoist_"))
        .expect("a token line")
        .to_string();
    let entry = text.split_once("[[token]]").expect("an entry").1;
    assert!(!entry.contains(&token), "the entry holds only the digest");
    (token, format!("[[token]]{entry}"))
}

/// The config of a hoist that takes API tokens from `file`: `top` (top-level settings) first,
/// then `[auth]` with the file and `auth` (more `[auth]` settings).
pub fn tokens_config(file: &Path, top: &str, auth: &str) -> String {
    format!(
        "{top}\n[auth]\ntokens_file = {:?}\n{auth}",
        file.display().to_string()
    )
}

/// An `[[auth.oidc]]` entry trusting `issuer` for audience `hoist`: a token's
/// `repository_owner` may push under `ci/<owner>/`; `claims` (the inside of a TOML inline
/// table, e.g. `ref_protected = "true"`, or "") must be in the token.
pub fn oidc_config(issuer: &str, claims: &str) -> String {
    let claims = if claims.is_empty() {
        String::new()
    } else {
        format!("claims = {{ {claims} }}\n")
    };
    format!(
        "[[auth.oidc]]\nissuer = {issuer:?}\naudience = \"hoist\"\n{claims}repositories = [\"ci/{{repository_owner}}/**\"]\n"
    )
}

/// A registry, and a hoist in front of it that takes API tokens from a tokens file the test
/// may rewrite while hoist runs.
pub struct TokenGateway {
    pub registry: Registry,
    pub hoist: Hoist,
    /// The tokens file.
    pub file: PathBuf,
    _dir: tempfile::TempDir,
}

impl TokenGateway {
    /// `entries` (from [`new_token`]) in the tokens file; `top` and `auth` as in
    /// [`tokens_config`].
    pub fn start(entries: &[&str], top: &str, auth: &str) -> TokenGateway {
        let registry = Registry::start().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tokens.toml");
        std::fs::write(&file, entries.join("\n")).unwrap();
        let hoist = Hoist::options(&registry.url())
            .config(&tokens_config(&file, top, auth))
            .start()
            .unwrap();
        TokenGateway {
            registry,
            hoist,
            file,
            _dir: dir,
        }
    }
}

/// `Bearer TOKEN`.
pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// `Basic base64(user:password)`.
pub fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    let pair = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// A raw-body push over raw TCP ([`request`]) carrying `authorization` ("" for none).
pub fn push_as(hoist: &Hoist, path: &str, authorization: &str, body: &[u8]) -> Answer {
    let mut headers = Vec::new();
    if !authorization.is_empty() {
        headers.push(("Authorization", authorization));
    }
    request(&hoist.addr(), "PUT", path, &headers, body).expect("push request")
}

/// Nothing of `img` is tagged `tag` in `repo`, and none of its blobs (layers, config,
/// manifest) is linked there; the registry is read with `authorization` ("" for none).
pub fn assert_left_nothing(
    reg: &Registry,
    repo: &str,
    tag: &str,
    img: &Image,
    authorization: &str,
) {
    assert!(
        !reg.tags_as(repo, authorization).contains(&tag.to_string()),
        "{repo}:{tag} was tagged"
    );
    for d in img.layers.iter().chain([&img.config, &img.manifest]) {
        assert!(
            !reg.has_blob_as(repo, d, authorization),
            "{d} is linked in {repo}"
        );
    }
}

/// None of `secrets` (tokens, passwords, `Authorization` values) in hoist's stderr.
pub fn assert_no_secret(hoist: &Hoist, secrets: &[&str]) {
    let log = hoist.stderr();
    for s in secrets {
        assert!(!log.contains(s), "a credential reached the log");
    }
}
