//! A local OIDC issuer on loopback (discovery + JWKS, keys made at test time) and the
//! attacks a verifier must refuse.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use base64::Engine;
use serde_json::{Value, json};

use super::*;

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// Keys of a test issuer.
struct Signer {
    rsa: RsaKeyPair,
    ec: EcdsaKeyPair,
}

impl Signer {
    fn new() -> Signer {
        Signer {
            rsa: RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap(),
            ec: EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap(),
        }
    }

    fn rsa_jwk(&self, kid: &str) -> Value {
        let p = self.rsa.public_key();
        json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
            "n": b64(p.modulus().big_endian_without_leading_zero()),
            "e": b64(p.exponent().big_endian_without_leading_zero())})
    }

    fn ec_jwk(&self, kid: &str) -> Value {
        let point = self.ec.public_key().as_ref();
        json!({"kty": "EC", "kid": kid, "crv": "P-256",
            "x": b64(&point[1..33]), "y": b64(&point[33..65])})
    }

    /// A JWT with this header and claims, signed as the header's `alg` says.
    fn sign(&self, header: Value, claims: Value) -> String {
        let msg = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = match header["alg"].as_str().unwrap() {
            "RS256" => {
                let mut sig = vec![0; self.rsa.public_modulus_len()];
                self.rsa
                    .sign(
                        &signature::RSA_PKCS1_SHA256,
                        &SystemRandom::new(),
                        msg.as_bytes(),
                        &mut sig,
                    )
                    .unwrap();
                sig
            }
            "ES256" => self
                .ec
                .sign(&SystemRandom::new(), msg.as_bytes())
                .unwrap()
                .as_ref()
                .to_vec(),
            "HS256" => {
                // The key-confusion attack: the issuer's public key used as an HMAC secret.
                let secret = self.rsa.public_key().as_ref();
                let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
                aws_lc_rs::hmac::sign(&key, msg.as_bytes())
                    .as_ref()
                    .to_vec()
            }
            _ => Vec::new(),
        };
        format!("{msg}.{}", b64(&sig))
    }
}

/// A running issuer: its URL, the JWKS it serves (changeable) and how often it was fetched.
struct Issuer {
    url: String,
    jwks: Arc<Mutex<Value>>,
    fetches: Arc<AtomicUsize>,
}

async fn issuer(jwks: Value) -> Issuer {
    use axum::routing::get;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let jwks = Arc::new(Mutex::new(jwks));
    let fetches = Arc::new(AtomicUsize::new(0));
    let (j, f, u) = (jwks.clone(), fetches.clone(), url.clone());
    let app = axum::Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(move || {
                let u = u.clone();
                async move { axum::Json(json!({"issuer": u, "jwks_uri": format!("{u}/jwks")})) }
            }),
        )
        .route(
            "/jwks",
            get(move || {
                let (j, f) = (j.clone(), f.clone());
                async move {
                    f.fetch_add(1, Ordering::SeqCst);
                    axum::Json(j.lock().unwrap().clone())
                }
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await });
    Issuer { url, jwks, fetches }
}

fn rule(issuer: &str) -> Rule {
    Rule {
        issuer: issuer.into(),
        audience: "hoist".into(),
        jwks_url: None,
        claims: [("ref_protected".to_string(), "true".to_string())].into(),
        repositories: vec![Template::parse("ci/{repository_owner}/**").unwrap()],
        name_claim: "sub".into(),
    }
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn claims(iss: &str) -> Value {
    json!({"iss": iss, "aud": "hoist", "sub": "repo:acme/app:ref:refs/heads/main",
        "iat": now() - 10, "nbf": now() - 10, "exp": now() + 300,
        "repository_owner": "acme", "ref_protected": "true"})
}

fn with(mut v: Value, key: &str, value: Value) -> Value {
    v[key] = value;
    v
}

struct Setup {
    signer: Signer,
    issuer: Issuer,
    verifier: Verifier,
}

async fn setup() -> Setup {
    let signer = Signer::new();
    let issuer = issuer(json!({"keys": [signer.rsa_jwk("rsa-1"), signer.ec_jwk("ec-1")]})).await;
    let verifier = Verifier::new(&[rule(&issuer.url)]).unwrap();
    Setup {
        signer,
        issuer,
        verifier,
    }
}

fn rs(kid: &str) -> Value {
    json!({"alg": "RS256", "typ": "JWT", "kid": kid})
}

async fn refused(s: &Setup, token: &str, why: &str) {
    let err = s.verifier.verify(token).await.expect_err(why);
    assert_eq!(err.code(), "UNAUTHORIZED", "{why}: {err}");
    assert!(err.to_string().contains(why), "{why}: {err}");
    assert!(
        !err.to_string().contains(token),
        "errors never echo the token"
    );
}

#[tokio::test]
async fn rs256_and_es256_tokens_from_the_issuer_are_accepted() {
    let s = setup().await;
    let c = s
        .verifier
        .verify(&s.signer.sign(rs("rsa-1"), claims(&s.issuer.url)))
        .await
        .unwrap();
    assert_eq!(c.name, "repo:acme/app:ref:refs/heads/main");
    assert!(c.may_push("ci/acme/app"));
    assert!(!c.may_push("ci/other/app"));
    assert!(!c.may_push("ci/acme"));
    let es = json!({"alg": "ES256", "kid": "ec-1"});
    let c = s
        .verifier
        .verify(&s.signer.sign(es, claims(&s.issuer.url)))
        .await
        .unwrap();
    assert!(c.may_push("ci/acme/x/y"));
    // aud as a list, required claim as a JSON boolean
    let t = with(
        with(claims(&s.issuer.url), "aud", json!(["other", "hoist"])),
        "ref_protected",
        json!(true),
    );
    assert!(
        s.verifier
            .verify(&s.signer.sign(rs("rsa-1"), t))
            .await
            .is_ok()
    );
    assert_eq!(
        s.issuer.fetches.load(Ordering::SeqCst),
        1,
        "keys are cached"
    );
}

#[tokio::test]
async fn time_audience_and_issuer_are_checked() {
    let s = setup().await;
    let iss = s.issuer.url.clone();
    let sign = |c: Value| s.signer.sign(rs("rsa-1"), c);
    refused(
        &s,
        &sign(with(claims(&iss), "exp", json!(now() - 120))),
        "expired",
    )
    .await;
    refused(
        &s,
        &sign(with(claims(&iss), "nbf", json!(now() + 300))),
        "not valid yet",
    )
    .await;
    refused(
        &s,
        &sign(with(claims(&iss), "iat", json!(now() + 300))),
        "issued in the future",
    )
    .await;
    let no_iat = {
        let mut c = claims(&iss);
        c.as_object_mut().unwrap().remove("iat");
        c
    };
    refused(&s, &sign(no_iat), "no issue time").await;
    refused(
        &s,
        &sign(with(claims(&iss), "aud", json!("someone-else"))),
        "audience",
    )
    .await;
    refused(
        &s,
        &sign(with(claims(&iss), "iss", json!("https://evil.example"))),
        "does not trust",
    )
    .await;
    // Within the leeway a little clock skew is fine.
    assert!(
        s.verifier
            .verify(&sign(with(claims(&iss), "exp", json!(now() - 5))))
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_token_signed_by_another_key_is_refused() {
    let s = setup().await;
    let other = Signer::new();
    refused(
        &s,
        &other.sign(rs("rsa-1"), claims(&s.issuer.url)),
        "signature",
    )
    .await;
}

#[tokio::test]
async fn alg_none_and_hs256_with_the_public_key_are_refused() {
    let s = setup().await;
    let none = s.signer.sign(
        json!({"alg": "none", "kid": "rsa-1"}),
        claims(&s.issuer.url),
    );
    refused(&s, &none, "JWT").await;
    let hs = s.signer.sign(
        json!({"alg": "HS256", "kid": "rsa-1"}),
        claims(&s.issuer.url),
    );
    refused(&s, &hs, "RS256 or ES256 only").await;
    // An ES256 header on the RSA key: the key's type decides, not the header.
    let mixed = s.signer.sign(
        json!({"alg": "ES256", "kid": "rsa-1"}),
        claims(&s.issuer.url),
    );
    refused(&s, &mixed, "unknown kid").await;
}

#[tokio::test]
async fn required_claims_and_claim_values_are_literal() {
    let s = setup().await;
    let iss = s.issuer.url.clone();
    let sign = |c: Value| s.signer.sign(rs("rsa-1"), c);
    let missing = {
        let mut c = claims(&iss);
        c.as_object_mut().unwrap().remove("ref_protected");
        c
    };
    refused(&s, &sign(missing), "ref_protected").await;
    refused(
        &s,
        &sign(with(claims(&iss), "ref_protected", json!("false"))),
        "ref_protected",
    )
    .await;
    let no_owner = {
        let mut c = claims(&iss);
        c.as_object_mut().unwrap().remove("repository_owner");
        c
    };
    refused(&s, &sign(no_owner), "no claim \"repository_owner\"").await;
    for evil in ["*", "**", "acme/prod", "..", "../prod", "Acme", ""] {
        let t = sign(with(claims(&iss), "repository_owner", json!(evil)));
        refused(&s, &t, "cannot name a repository path component").await;
    }
}

#[tokio::test]
async fn unknown_kids_refetch_the_keys_but_at_a_bounded_rate() {
    let mut s = setup().await;
    s.verifier.set_min_refetch(Duration::from_millis(500));
    let iss = s.issuer.url.clone();
    assert!(
        s.verifier
            .verify(&s.signer.sign(rs("rsa-1"), claims(&iss)))
            .await
            .is_ok()
    );
    assert_eq!(s.issuer.fetches.load(Ordering::SeqCst), 1);
    // A stream of made-up kids right after a fetch causes no fetch at all.
    for i in 0..20 {
        let t = s.signer.sign(rs(&format!("bogus-{i}")), claims(&iss));
        refused(&s, &t, "unknown kid").await;
    }
    assert_eq!(s.issuer.fetches.load(Ordering::SeqCst), 1);
    // The issuer rotates in a new key: after the interval, its kid makes hoist refetch.
    let rotated = Signer::new();
    s.issuer.jwks.lock().unwrap()["keys"]
        .as_array_mut()
        .unwrap()
        .push(rotated.rsa_jwk("rsa-2"));
    tokio::time::sleep(Duration::from_millis(600)).await;
    let c = s
        .verifier
        .verify(&rotated.sign(rs("rsa-2"), claims(&iss)))
        .await;
    assert!(c.is_ok(), "{c:?}");
    assert_eq!(s.issuer.fetches.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn an_unreachable_issuer_is_unavailable_not_unauthorized() {
    let signer = Signer::new();
    // A loopback port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let verifier = Verifier::new(&[rule(&url)]).unwrap();
    let err = verifier
        .verify(&signer.sign(rs("rsa-1"), claims(&url)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "AUTH_UNAVAILABLE", "{err}");
}

#[tokio::test]
async fn a_discovery_document_for_another_issuer_is_refused() {
    let s = setup().await;
    // Configure the issuer under another spelling that discovery will not confirm.
    let alias = s.issuer.url.replace("127.0.0.1", "localhost");
    let verifier = Verifier::new(&[rule(&alias)]).unwrap();
    let err = verifier
        .verify(&s.signer.sign(rs("rsa-1"), claims(&alias)))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "AUTH_UNAVAILABLE", "{err}");
    assert!(err.to_string().contains("names issuer"), "{err}");
}
