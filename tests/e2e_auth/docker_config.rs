//! Credentials from a docker `config.json`: `registry_auth_file` with an `identitytoken`
//! exchanged at the token realm, and `$DOCKER_CONFIG` as the fallback with an `auth` entry.

use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::{Value, json};

use crate::common::{
    PASSWORD, USER, assert_no_secrets, basic_tags, basic_value, chatty_hoist, htpasswd_registry,
};
use crate::issuer::{IDENTITY_TOKEN, token_rig};
use crate::support::Registry;
use crate::support::archives::image;
use crate::support::push_bytes as push;

fn write_docker_config(dir: &Path, registry: &Registry, entry: Value) -> Result<PathBuf> {
    let file = dir.join("config.json");
    let config = json!({"auths": {registry.host(): entry}});
    std::fs::write(&file, serde_json::to_vec_pretty(&config)?)?;
    Ok(file)
}

/// `registry_auth_file` with an `identitytoken`: hoist exchanges it at the token realm as an
/// OAuth2 refresh token (POST, `grant_type=refresh_token`) and pushes with what it gets.
#[test]
fn registry_auth_file_identity_token_is_exchanged() -> Result<()> {
    let (issuer, registry) = token_rig(300)?;
    let dir = tempfile::tempdir()?;
    let file = write_docker_config(
        dir.path(),
        &registry,
        json!({"identitytoken": IDENTITY_TOKEN}),
    )?;
    let hoist = chatty_hoist(
        &registry.url(),
        &[("HOIST_REGISTRY_AUTH_FILE", file.to_str().unwrap())],
    )?;
    let img = image(14, &[64 << 10], "v1");
    let a = push(&hoist, "/push/e2e/idtok:v1", &img.tar)?;
    assert_eq!(a.status, 201, "{}\n{}", a.body, hoist.stderr());
    assert_eq!(issuer.tags(&registry, "e2e/idtok")?, vec!["v1".to_string()]);
    let reqs = issuer.requests();
    assert!(
        reqs.iter().any(|r| r.refresh
            && r.granted
            && r.scopes == ["repository:e2e/idtok:pull,push".to_string()]
            && r.service.as_deref() == Some("test-registry")),
        "no refresh-token grant for e2e/idtok: {reqs:?}"
    );
    assert!(
        reqs.iter().all(|r| r.refresh),
        "the identity token must be exchanged, never Basic credentials: {reqs:?}"
    );
    let mut secrets = vec![IDENTITY_TOKEN.to_string()];
    secrets.extend(issuer.issued());
    assert_no_secrets(&hoist, &[&a], &secrets);
    Ok(())
}

/// No credentials configured: `$DOCKER_CONFIG/config.json` is read (an `auth` entry, base64
/// `user:password`), as docker does.
#[test]
fn docker_config_env_is_the_fallback_for_credentials() -> Result<()> {
    let (registry, _htpasswd) = htpasswd_registry()?;
    let dir = tempfile::tempdir()?;
    write_docker_config(
        dir.path(),
        &registry,
        json!({"auth": basic_value(USER, PASSWORD)}),
    )?;
    let hoist = chatty_hoist(
        &registry.url(),
        &[("DOCKER_CONFIG", dir.path().to_str().unwrap())],
    )?;
    let img = image(15, &[64 << 10], "v1");
    let a = push(&hoist, "/push/e2e/dockercfg:v1", &img.tar)?;
    assert_eq!(a.status, 201, "{}\n{}", a.body, hoist.stderr());
    assert_eq!(
        basic_tags(&registry, "e2e/dockercfg"),
        vec!["v1".to_string()]
    );
    assert_no_secrets(
        &hoist,
        &[&a],
        &[PASSWORD.to_string(), basic_value(USER, PASSWORD)],
    );
    Ok(())
}
