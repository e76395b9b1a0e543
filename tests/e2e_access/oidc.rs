//! CI identity tokens from a local OIDC issuer: good ones push under their owner's
//! repositories, and every attack on them is refused, says why and leaves nothing behind.

use serde_json::{Value, json};

use crate::small_image;
use crate::support::access::{
    assert_left_nothing, assert_no_secret, basic, bearer, oidc_config, push_as,
};
use crate::support::issuer::{Issuer, Signer, claims, now};
use crate::support::{Hoist, Registry};

/// The JWS header of a good token: RS256 with the issuer's RSA key.
fn rs256() -> Value {
    json!({"alg": "RS256", "typ": "JWT", "kid": "rsa-1"})
}

#[test]
fn ci_identity_tokens_from_a_local_issuer() {
    let reg = Registry::start().unwrap();
    let signer = Signer::new();
    let issuer = Issuer::start(signer.jwks());
    let hoist = Hoist::options(&reg.url())
        .config(&oidc_config(&issuer.url, "ref_protected = \"true\""))
        .start()
        .unwrap();
    let good = ci_tokens_push_under_their_owner(&hoist, &signer, &issuer.url);
    let attacks = oidc_attacks(&signer, &issuer.url);
    forged_ci_tokens_are_refused(&reg, &hoist, &attacks);
    let jwts: Vec<&str> = attacks
        .iter()
        .map(|(_, j, _)| j.as_str())
        .chain(good.iter().map(String::as_str))
        .collect();
    assert_no_secret(&hoist, &jwts);
}

/// Good tokens (RS256 as Bearer, ES256 as a Basic password) push under `ci/<owner>/`, not
/// under another owner's; the tokens, for the log check.
fn ci_tokens_push_under_their_owner(hoist: &Hoist, signer: &Signer, issuer: &str) -> [String; 2] {
    let good = signer.sign(rs256(), &claims(issuer, "acme"));
    let img = small_image(30, 64 << 10);
    let ok = push_as(hoist, "/push/ci/acme/app:v1", &bearer(&good), &img.tar);
    assert_eq!(ok.status, 201, "{}", ok.text());
    assert_eq!(ok.body["client"], "repo:acme/app:ref:refs/heads/main");
    let es = signer.sign(
        json!({"alg": "ES256", "kid": "ec-1"}),
        &claims(issuer, "acme"),
    );
    let ok = push_as(
        hoist,
        "/push/ci/acme/app:v2",
        &basic("gitlab-ci-token", &es),
        &img.tar,
    );
    assert_eq!(ok.status, 201, "{}", ok.text());
    let denied = push_as(hoist, "/push/ci/other/app:v1", &bearer(&good), &img.tar);
    assert_eq!((denied.status, denied.code()), (403, "DENIED"));
    [good, es]
}

/// Each attack is a 401 that says why, never echoes the token, and leaves nothing behind.
fn forged_ci_tokens_are_refused(reg: &Registry, hoist: &Hoist, attacks: &[Attack]) {
    for (i, (what, jwt, why)) in attacks.iter().enumerate() {
        let img = small_image(100 + i as u64, 16 << 10);
        let tag = format!("bad-{i}");
        let path = format!("/push/ci/acme/app:{tag}");
        let a = push_as(hoist, &path, &bearer(jwt), &img.tar);
        assert_eq!(
            (a.status, a.code()),
            (401, "UNAUTHORIZED"),
            "{what}: {}",
            a.text()
        );
        assert!(a.text().contains(why), "{what}: {}", a.text());
        assert!(
            !a.text().contains(jwt.as_str()),
            "{what}: the answer echoes the token"
        );
        assert_left_nothing(reg, "ci/acme/app", &tag, &img, "");
    }
}

/// A token a CI identity check must refuse: (what, the token, what the refusal says).
type Attack = (&'static str, String, &'static str);

fn oidc_attacks(signer: &Signer, issuer: &str) -> Vec<Attack> {
    let mut all = claim_attacks(signer, issuer);
    all.extend(signature_attacks(signer, issuer));
    all.extend(owner_attacks(signer, issuer));
    all
}

/// Well signed, wrong claims: expired, another audience, an untrusted issuer, a required
/// claim missing.
fn claim_attacks(signer: &Signer, issuer: &str) -> Vec<Attack> {
    let with = |key: &str, value: Value| {
        let mut v = claims(issuer, "acme");
        v[key] = value;
        v
    };
    let mut without = claims(issuer, "acme");
    without.as_object_mut().unwrap().remove("ref_protected");
    let sign = |c: &Value| signer.sign(rs256(), c);
    vec![
        ("expired", sign(&with("exp", json!(now() - 600))), "expired"),
        (
            "wrong audience",
            sign(&with("aud", json!("someone-else"))),
            "audience",
        ),
        (
            "wrong issuer",
            sign(&with("iss", json!("https://evil.example"))),
            "does not trust",
        ),
        ("missing required claim", sign(&without), "ref_protected"),
    ]
}

/// Good claims, a signature hoist must not accept: another issuer's key, an unknown kid,
/// `alg: none`, HS256 keyed with the public key (key confusion).
fn signature_attacks(signer: &Signer, issuer: &str) -> Vec<Attack> {
    let c = claims(issuer, "acme");
    let header = |alg: &str, kid: &str| json!({"alg": alg, "kid": kid});
    vec![
        (
            "another issuer's key",
            Signer::new().sign(rs256(), &c),
            "signature",
        ),
        (
            "unknown kid",
            signer.sign(header("RS256", "rsa-9"), &c),
            "unknown kid",
        ),
        (
            "alg none",
            signer.sign(header("none", "rsa-1"), &c),
            "not a valid JWT",
        ),
        (
            "HS256 with the public key",
            signer.sign(header("HS256", "rsa-1"), &c),
            "RS256 or ES256 only",
        ),
    ]
}

/// A `repository_owner` that would reach outside `ci/<owner>/` or is no path component.
fn owner_attacks(signer: &Signer, issuer: &str) -> Vec<Attack> {
    let owners = [
        ("owner *", "*"),
        ("owner with /", "acme/prod"),
        ("owner ..", ".."),
        ("owner upper case", "Acme"),
    ];
    owners
        .into_iter()
        .map(|(what, owner)| {
            let jwt = signer.sign(rs256(), &claims(issuer, owner));
            (what, jwt, "repository path component")
        })
        .collect()
}
