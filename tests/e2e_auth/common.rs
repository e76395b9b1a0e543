//! What every auth test shares: the test's credentials, hoist at trace level, registry
//! read-backs with credentials, the htpasswd registry, and the checks that no secret leaks
//! and that a failed push cancels its upload session.

use std::process::Command;
use std::time::Duration;

use anyhow::Result;
use base64::Engine;
use serde_json::Value;

use crate::support::archives::image_corrupt;
use crate::support::{Answer, Hoist, Registry, push_bytes as push};

pub const USER: &str = "hoist-bot";
pub const PASSWORD: &str = "Tr0ub4dor-e2e-S3cret-913";
pub const WRONG_PASSWORD: &str = "wr0ng-e2e-Passw0rd-771";

pub fn basic_value(user: &str, password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

/// None of `secrets` in hoist's stderr nor in its answer.
pub fn assert_no_secrets(hoist: &Hoist, answers: &[&Answer], secrets: &[String]) {
    let stderr = hoist.stderr();
    for s in secrets {
        assert!(
            !stderr.contains(s.as_str()),
            "a secret ({}…) is in hoist's stderr",
            &s[..s.len().min(6)]
        );
        for a in answers {
            assert!(
                !a.body.to_string().contains(s.as_str()),
                "a secret ({}…) is in hoist's answer",
                &s[..s.len().min(6)]
            );
        }
    }
}

/// GET a registry URL as JSON with an Authorization header (`curl -u` or a bearer token).
pub fn get_json_auth(url: &str, auth: &[&str]) -> Option<Value> {
    let out = Command::new("curl")
        .arg("-sf")
        .args(auth)
        .arg(url)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

pub fn tag_list(v: Option<Value>) -> Vec<String> {
    v.and_then(|v| v["tags"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|t| t.as_str().map(String::from))
        .collect()
}

/// hoist as chatty as it gets (`hoist=trace`): a secret in any of its log lines shows up in
/// its captured stderr.
pub fn chatty_hoist(registry_url: &str, env: &[(&str, &str)]) -> Result<Hoist> {
    Hoist::options(registry_url)
        .envs(env)
        .log("hoist=trace,info")
        .start()
}

/// A push that fails after a layer's session was opened and its bytes sent (DIGEST_MISMATCH)
/// cancels that session: the registry answered 2xx to a DELETE on it (docs/API.md: "open
/// upload sessions are cancelled").
pub fn assert_failed_push_cancels_session(
    registry: &Registry,
    hoist: &Hoist,
    repo: &str,
) -> Result<()> {
    let bad = image_corrupt(20, &[64 << 10], "v1");
    let a = push(hoist, &format!("/push/{repo}:v1"), &bad.tar)?;
    assert_eq!(
        (a.status, a.code()),
        (400, "DIGEST_MISMATCH"),
        "{}\n{}",
        a.body,
        hoist.stderr()
    );
    let sessions = registry.cancels_within(repo, Duration::from_secs(3));
    assert!(!sessions.is_empty(), "no upload session was opened");
    let log = std::fs::read_to_string(registry.dir.path().join("registry.log")).unwrap_or_default();
    let deletes: Vec<&str> = log.lines().filter(|l| l.contains("DELETE")).collect();
    assert!(
        sessions.iter().all(|(_, d)| matches!(d, Some(200..=299))),
        "upload sessions of {repo} not cancelled after a failed push (uuid, DELETE status): {sessions:?}\nregistry log, DELETE lines:\n{}",
        deletes.join("\n")
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// htpasswd (Basic).

pub fn htpasswd_registry() -> Result<(Registry, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("htpasswd");
    // distribution's htpasswd is bcrypt only; cost 4 keeps the test fast.
    let hash = bcrypt::hash_with_result(PASSWORD, 4)?.format_for_version(bcrypt::Version::TwoY);
    std::fs::write(&file, format!("{USER}:{hash}\n"))?;
    let registry = Registry::start_with(&format!(
        "auth:\n  htpasswd:\n    realm: basic-realm\n    path: {}\n",
        file.display()
    ))?;
    Ok((registry, dir))
}

pub fn basic_tags(registry: &Registry, repo: &str) -> Vec<String> {
    let creds = format!("{USER}:{PASSWORD}");
    tag_list(get_json_auth(
        &format!("{}/v2/{repo}/tags/list", registry.url()),
        &["-u", &creds],
    ))
}
