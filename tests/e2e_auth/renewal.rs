//! Tokens that run out: a push outliving a 60 s token renews it before it expires, and a
//! token refused mid-push (401 on the manifest PUT) is fetched again and the request resent.

use std::time::Duration;

use anyhow::Result;

use crate::common::{PASSWORD, assert_no_secrets, chatty_hoist};
use crate::issuer::{TokenRequest, right_credentials, token_rig};
use crate::support;
use crate::support::archives::image;
use crate::support::fault_proxy::{Fault, Proxy, Rule, Seen};
use crate::support::push_bytes as push;

/// A push that outlives the freshness of its token: 60 s tokens (the shortest lifetime hoist
/// honours) are renewed once less than 30 s are left. The client sends at 32 KiB/s, so the
/// 1 MiB layer takes ~33 s and the requests after it need a second token, fetched before the
/// old one runs out: the registry refuses nothing after its first challenge.
#[test]
fn token_auth_short_lived_tokens() -> Result<()> {
    let (issuer, registry) = token_rig(60)?;
    let hoist = chatty_hoist(&registry.url(), &right_credentials())?;
    let img = image(12, &[1 << 20], "v1");
    let t = std::time::Instant::now();
    let a = support::push_bytes_with(
        &hoist,
        "/push/e2e/short:v1",
        &img.tar,
        &["--limit-rate", "32K"],
    )?;
    let took = t.elapsed();
    assert_eq!(a.status, 201, "{}\n{}", a.body, hoist.stderr());
    assert!(
        took > Duration::from_secs(31),
        "the push took only {took:?}"
    );
    assert_eq!(issuer.tags(&registry, "e2e/short")?, vec!["v1".to_string()]);
    let push_scope = "repository:e2e/short:pull,push".to_string();
    let grants: Vec<TokenRequest> = issuer
        .requests()
        .into_iter()
        .filter(|r| r.granted && r.scopes == [push_scope.clone()])
        .collect();
    assert!(
        grants.len() >= 2,
        "the token was never renewed: {:?}",
        issuer.requests()
    );
    let gap = grants[1].at - grants[0].at;
    assert!(
        gap >= Duration::from_secs(29) && gap < Duration::from_secs(60),
        "renewed after {gap:?}: not when less than 30 s of 60 were left"
    );
    let log = registry.access_log();
    let refused: Vec<_> = log
        .iter()
        .filter(|(_, target, status)| *status == 401 && target.starts_with("/v2/e2e/short/"))
        .collect();
    // At most the first request meets a 401 (the challenge), none when hoist's readiness
    // probe learnt it first; a renewal comes before expiry.
    assert!(
        refused.len() <= 1,
        "only the first request may meet a 401 (the challenge); a renewal comes before expiry: {refused:?}"
    );
    let mut secrets = vec![PASSWORD.to_string()];
    secrets.extend(issuer.issued());
    assert_no_secrets(&hoist, &[&a], &secrets);
    Ok(())
}

/// A token the registry stops accepting in the middle of a push (expired or revoked early):
/// the 401 makes hoist forget the cached token, fetch a new one and send the request again.
#[test]
fn token_refused_mid_push_is_renewed_and_the_request_retried() -> Result<()> {
    let (issuer, registry) = token_rig(300)?;
    let proxy = Proxy::start(&registry.url())?;
    let hoist = chatty_hoist(&proxy.url(), &right_credentials())?;
    let challenge = format!(
        r#"Bearer realm="{}",service="test-registry",scope="repository:e2e/expired:pull,push",error="invalid_token""#,
        issuer.realm()
    );
    proxy.set_rules(vec![
        Rule::new(
            "PUT",
            "/manifests/",
            Fault::error(401, "UNAUTHORIZED", &[("WWW-Authenticate", &challenge)]),
        )
        .first(1),
    ]);
    let img = image(13, &[64 << 10], "v1");
    let a = push(&hoist, "/push/e2e/expired:v1", &img.tar)?;
    assert_eq!(a.status, 201, "{}\n{}", a.body, proxy.describe());
    let log = proxy.log();
    let puts: Vec<&Seen> = log
        .iter()
        .filter(|s| s.method == "PUT" && s.target.contains("/manifests/"))
        .collect();
    assert!(puts.len() >= 2, "{}", proxy.describe());
    assert_eq!(puts[0].status, Some(401), "{}", proxy.describe());
    assert_eq!(
        (puts[1].target.as_str(), puts[1].status),
        (puts[0].target.as_str(), Some(201)),
        "the refused PUT is sent again and accepted\n{}",
        proxy.describe()
    );
    assert!(puts[1..].iter().all(|p| p.status == Some(201)));
    let scope = "repository:e2e/expired:pull,push".to_string();
    let after: Vec<TokenRequest> = issuer
        .requests()
        .into_iter()
        .filter(|r| r.granted && r.scopes == [scope.clone()] && r.at > puts[0].at)
        .collect();
    assert_eq!(
        after.len(),
        1,
        "a new token after the 401, fetched once: {:?}",
        issuer.requests()
    );
    assert!(after[0].at < puts[1].at);
    assert_eq!(
        issuer.tags(&registry, "e2e/expired")?,
        vec!["v1".to_string()]
    );
    Ok(())
}
