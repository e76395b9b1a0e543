//! A local OIDC issuer on loopback, as a CI system runs one: keys made at test time (RSA and
//! P-256), discovery and JWKS served by a small thread, JWTs signed by hand so that tests can
//! also make the malformed ones (`alg: none`, HS256 with the public key as secret).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use base64::Engine;
use serde_json::{Value, json};

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// Seconds since the epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An issuer's keys.
pub struct Signer {
    rsa: RsaKeyPair,
    ec: EcdsaKeyPair,
}

impl Default for Signer {
    fn default() -> Self {
        Signer::new()
    }
}

impl Signer {
    pub fn new() -> Signer {
        Signer {
            rsa: RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap(),
            ec: EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap(),
        }
    }

    /// The JWKS with the RSA key as `kid` `rsa-1` and the EC key as `ec-1`.
    pub fn jwks(&self) -> Value {
        let p = self.rsa.public_key();
        let point = self.ec.public_key().as_ref();
        json!({"keys": [
            {"kty": "RSA", "kid": "rsa-1", "use": "sig", "alg": "RS256",
             "n": b64(p.modulus().big_endian_without_leading_zero()),
             "e": b64(p.exponent().big_endian_without_leading_zero())},
            {"kty": "EC", "kid": "ec-1", "crv": "P-256",
             "x": b64(&point[1..33]), "y": b64(&point[33..65])},
        ]})
    }

    /// A JWT with this header and these claims, signed as the header's `alg` says
    /// (`HS256`: keyed with the RSA public key, the key-confusion attack; else unsigned).
    pub fn sign(&self, header: Value, claims: &Value) -> String {
        let msg = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let rng = SystemRandom::new();
        let sig = match header["alg"].as_str().unwrap_or("") {
            "RS256" => {
                let mut sig = vec![0; self.rsa.public_modulus_len()];
                self.rsa
                    .sign(&signature::RSA_PKCS1_SHA256, &rng, msg.as_bytes(), &mut sig)
                    .unwrap();
                sig
            }
            "ES256" => self
                .ec
                .sign(&rng, msg.as_bytes())
                .unwrap()
                .as_ref()
                .to_vec(),
            "HS256" => {
                let key = aws_lc_rs::hmac::Key::new(
                    aws_lc_rs::hmac::HMAC_SHA256,
                    self.rsa.public_key().as_ref(),
                );
                aws_lc_rs::hmac::sign(&key, msg.as_bytes())
                    .as_ref()
                    .to_vec()
            }
            _ => Vec::new(),
        };
        format!("{msg}.{}", b64(&sig))
    }
}

/// A running issuer: discovery at `/.well-known/openid-configuration`, keys at `/jwks`.
pub struct Issuer {
    /// `http://127.0.0.1:PORT`, the `iss` its tokens carry.
    pub url: String,
    /// How many times the keys were fetched.
    pub fetches: Arc<AtomicUsize>,
}

impl Issuer {
    /// Serves `jwks` on a loopback port from a thread that lives as long as the test.
    pub fn start(jwks: Value) -> Issuer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let fetches = Arc::new(AtomicUsize::new(0));
        let (f, u) = (fetches.clone(), url.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().take(10_000) {
                let Ok(mut s) = stream else { continue };
                let mut buf = [0u8; 4096];
                let n = s.read(&mut buf).unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]);
                let body = if req.starts_with("GET /.well-known/openid-configuration") {
                    json!({"issuer": u, "jwks_uri": format!("{u}/jwks")}).to_string()
                } else if req.starts_with("GET /jwks") {
                    f.fetch_add(1, Ordering::SeqCst);
                    jwks.to_string()
                } else {
                    let _ = s.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                    continue;
                };
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Issuer { url, fetches }
    }
}

/// Claims a CI job's token would carry, valid now.
pub fn claims(iss: &str, owner: &str) -> Value {
    json!({"iss": iss, "aud": "hoist", "sub": format!("repo:{owner}/app:ref:refs/heads/main"),
        "iat": now() - 10, "nbf": now() - 10, "exp": now() + 300,
        "repository_owner": owner, "ref_protected": "true"})
}
