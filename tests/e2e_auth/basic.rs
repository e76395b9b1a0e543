//! htpasswd (Basic) auth: a push with the right credentials (and a re-push that finds
//! everything there), a failed push cancelling its session, a wrong password and no
//! credentials answered REGISTRY_UNAUTHORIZED with nothing tagged.

use anyhow::Result;

use crate::common::{
    PASSWORD, USER, WRONG_PASSWORD, assert_failed_push_cancels_session, assert_no_secrets,
    basic_tags, basic_value, chatty_hoist, get_json_auth, htpasswd_registry,
};
use crate::support::archives::image;
use crate::support::push_bytes as push;

#[test]
fn basic_auth_right_credentials_push() -> Result<()> {
    let (registry, _dir) = htpasswd_registry()?;
    // The registry really wants credentials.
    assert!(get_json_auth(&format!("{}/v2/_catalog", registry.url()), &[]).is_none());
    let hoist = chatty_hoist(
        &registry.url(),
        &[
            ("HOIST_REGISTRY_USERNAME", USER),
            ("HOIST_REGISTRY_PASSWORD", PASSWORD),
        ],
    )?;
    let img = image(1, &[64 << 10], "v1");
    let a = push(&hoist, "/push/e2e/basic:v1", &img.tar)?;
    assert_eq!(a.status, 201, "{}\n{}", a.body, hoist.stderr());
    assert_eq!(basic_tags(&registry, "e2e/basic"), vec!["v1".to_string()]);
    assert_eq!(a.outcome(&img.layers[0]), "uploaded");
    // A second push: everything is already there.
    let again = push(&hoist, "/push/e2e/basic:v1", &img.tar)?;
    assert_eq!(again.status, 201, "{}", again.body);
    assert_eq!(again.outcome(&img.layers[0]), "exists");
    assert_eq!(again.outcome(&img.config), "exists");
    assert_no_secrets(
        &hoist,
        &[&a, &again],
        &[PASSWORD.to_string(), basic_value(USER, PASSWORD)],
    );
    Ok(())
}

#[test]
fn basic_auth_failed_push_cancels_its_upload_session() -> Result<()> {
    let (registry, _dir) = htpasswd_registry()?;
    let hoist = chatty_hoist(
        &registry.url(),
        &[
            ("HOIST_REGISTRY_USERNAME", USER),
            ("HOIST_REGISTRY_PASSWORD", PASSWORD),
        ],
    )?;
    assert_failed_push_cancels_session(&registry, &hoist, "e2e/basic")
}

#[test]
fn basic_auth_wrong_password_is_unauthorized() -> Result<()> {
    let (registry, _dir) = htpasswd_registry()?;
    let hoist = chatty_hoist(
        &registry.url(),
        &[
            ("HOIST_REGISTRY_USERNAME", USER),
            ("HOIST_REGISTRY_PASSWORD", WRONG_PASSWORD),
        ],
    )?;
    let img = image(2, &[64 << 10], "v1");
    let a = push(&hoist, "/push/e2e/basic:v1", &img.tar)?;
    assert_eq!(
        (a.status, a.code()),
        (502, "REGISTRY_UNAUTHORIZED"),
        "{}\n{}",
        a.body,
        hoist.stderr()
    );
    assert!(
        a.message().contains("credentials"),
        "the message should mention credentials: {}",
        a.message()
    );
    assert!(basic_tags(&registry, "e2e/basic").is_empty());
    assert_no_secrets(
        &hoist,
        &[&a],
        &[
            WRONG_PASSWORD.to_string(),
            basic_value(USER, WRONG_PASSWORD),
        ],
    );
    Ok(())
}

#[test]
fn basic_auth_without_credentials_is_unauthorized() -> Result<()> {
    let (registry, _dir) = htpasswd_registry()?;
    let hoist = chatty_hoist(&registry.url(), &[])?;
    let img = image(3, &[64 << 10], "v1");
    let a = push(&hoist, "/push/e2e/basic:v1", &img.tar)?;
    assert_eq!(
        (a.status, a.code()),
        (502, "REGISTRY_UNAUTHORIZED"),
        "{}\n{}",
        a.body,
        hoist.stderr()
    );
    assert!(basic_tags(&registry, "e2e/basic").is_empty());
    Ok(())
}
