//! Token auth against the issuer: a push, a mount from the staging repository with one
//! token for both scopes, a re-push; wrong or missing credentials answered
//! REGISTRY_UNAUTHORIZED; a failed push cancelling its session (the `delete` action).

use anyhow::Result;

use crate::common::{
    PASSWORD, USER, WRONG_PASSWORD, assert_failed_push_cancels_session, assert_no_secrets,
    basic_value, chatty_hoist, get_json_auth,
};
use crate::issuer::{right_credentials, token_rig};
use crate::support::archives::image;
use crate::support::push_bytes as push;

#[test]
fn token_auth_push_mount_and_repush() -> Result<()> {
    let (issuer, registry) = token_rig(300)?;
    // The registry really wants a token, and takes one the issuer signed.
    assert!(get_json_auth(&format!("{}/v2/", registry.url()), &[]).is_none());
    let hoist = chatty_hoist(&registry.url(), &right_credentials())?;

    // 1. A push to a named repository.
    let img = image(10, &[128 << 10], "v1");
    let a = push(&hoist, "/push/e2e/tok:v1", &img.tar)?;
    assert_eq!(a.status, 201, "{}\n{}", a.body, hoist.stderr());
    assert_eq!(issuer.tags(&registry, "e2e/tok")?, vec!["v1".to_string()]);
    let reqs = issuer.requests();
    assert!(
        reqs.iter().any(|r| r.granted
            && r.scopes.iter().any(|s| s == "repository:e2e/tok:pull,push")
            && r.service.as_deref() == Some("test-registry")),
        "no token request for repository:e2e/tok:pull,push: {reqs:?}"
    );

    // 2. The same image under names from the archive: streamed into the staging repository,
    //    then mounted into the target.
    let staged = image(10, &[128 << 10], "e2e/tok-a:v1");
    let b = push(&hoist, "/push", &staged.tar)?;
    assert_eq!(b.status, 201, "{}\n{}", b.body, hoist.stderr());
    assert_eq!(issuer.tags(&registry, "e2e/tok-a")?, vec!["v1".to_string()]);

    // 3. Again under a second repository: the layer is already in the staging repository,
    //    so it must not be sent again (mounted, with a `from` pull scope).
    let second = image(10, &[128 << 10], "e2e/tok-b:v1");
    let c = push(&hoist, "/push", &second.tar)?;
    assert_eq!(c.status, 201, "{}\n{}", c.body, hoist.stderr());
    assert_eq!(
        c.outcome(&second.layers[0]),
        "mounted",
        "the layer is in the staging repository: it must be mounted, not sent\n{}",
        c.body
    );
    assert_eq!(issuer.tags(&registry, "e2e/tok-b")?, vec!["v1".to_string()]);
    let reqs = issuer.requests();
    assert!(
        reqs.iter().any(|r| r.granted
            && r.scopes
                == [
                    "repository:e2e/tok-b:pull,push".to_string(),
                    "repository:hoist-staging:pull".to_string()
                ]),
        "a mount needs one token with the target's push and the `from` repository's pull scope: {reqs:?}"
    );

    // 4. A re-push of the first image: every blob exists.
    let d = push(&hoist, "/push/e2e/tok:v1", &img.tar)?;
    assert_eq!(d.status, 201, "{}\n{}", d.body, hoist.stderr());
    let blobs = d.body["images"][0]["blobs"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(blobs.len(), 2, "{}", d.body);
    for bl in &blobs {
        assert_eq!(bl["outcome"], "exists", "re-push: {}", d.body);
    }

    let mut secrets = vec![PASSWORD.to_string(), basic_value(USER, PASSWORD)];
    secrets.extend(issuer.issued());
    assert_no_secrets(&hoist, &[&a, &b, &c, &d], &secrets);
    Ok(())
}

#[test]
fn token_auth_wrong_or_missing_credentials_is_unauthorized() -> Result<()> {
    let (issuer, registry) = token_rig(300)?;
    let img = image(11, &[64 << 10], "v1");

    let wrong = chatty_hoist(
        &registry.url(),
        &[
            ("HOIST_REGISTRY_USERNAME", USER),
            ("HOIST_REGISTRY_PASSWORD", WRONG_PASSWORD),
        ],
    )?;
    let a = push(&wrong, "/push/e2e/tok:v1", &img.tar)?;
    assert_eq!(
        (a.status, a.code()),
        (502, "REGISTRY_UNAUTHORIZED"),
        "{}\n{}",
        a.body,
        wrong.stderr()
    );
    assert!(
        a.message().contains("credentials"),
        "the message should mention credentials: {}",
        a.message()
    );
    assert!(issuer.requests().iter().any(|r| !r.granted));
    assert!(issuer.tags(&registry, "e2e/tok")?.is_empty());
    assert_no_secrets(
        &wrong,
        &[&a],
        &[
            WRONG_PASSWORD.to_string(),
            basic_value(USER, WRONG_PASSWORD),
        ],
    );

    let anonymous = chatty_hoist(&registry.url(), &[])?;
    let b = push(&anonymous, "/push/e2e/tok:v1", &img.tar)?;
    assert_eq!(
        (b.status, b.code()),
        (502, "REGISTRY_UNAUTHORIZED"),
        "{}\n{}",
        b.body,
        anonymous.stderr()
    );
    assert!(issuer.tags(&registry, "e2e/tok")?.is_empty());
    Ok(())
}

#[test]
fn token_auth_failed_push_cancels_its_upload_session() -> Result<()> {
    // distribution wants the `delete` action for DELETE on an upload session.
    let (issuer, registry) = token_rig(300)?;
    let hoist = chatty_hoist(&registry.url(), &right_credentials())?;
    let result = assert_failed_push_cancels_session(&registry, &hoist, "e2e/tok");
    if result.is_err() || std::thread::panicking() {
        eprintln!("token requests: {:?}", issuer.requests());
    }
    result
}
