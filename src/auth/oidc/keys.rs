//! An issuer's signing keys: discovered (`/.well-known/openid-configuration` → `jwks_uri`)
//! or configured, fetched with a timeout and a size cap, cached, refetched when they age or
//! when a token names a `kid` the cache lacks — at most once per `MIN_REFETCH`, so a stream
//! of made-up kids cannot make hoist hammer the issuer.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use url::Url;

use super::super::AuthError;
use super::secure_url;

/// Keys older than this are refetched before use (kept if the refetch fails).
const MAX_AGE: Duration = Duration::from_secs(3600);
/// A kid the cache lacks causes a refetch at most this often.
const MIN_REFETCH: Duration = Duration::from_secs(30);
/// Largest discovery document or key set read.
const MAX_BODY: usize = 512 << 10;

/// A usable verification key.
#[derive(Clone)]
pub(super) struct Key {
    pub key: DecodingKey,
    pub alg: Algorithm,
}

struct Cached {
    keys: HashMap<String, Key>,
    /// Keys without a kid (used only when a token has none and exactly one fits).
    unnamed: Vec<Key>,
    fetched: Instant,
}

/// One issuer's keys.
pub(super) struct Keys {
    issuer: String,
    jwks_url: Option<Url>,
    http: reqwest::Client,
    cached: RwLock<Option<Arc<Cached>>>,
    /// Serialises fetches; holds when the last one was tried.
    fetching: tokio::sync::Mutex<Option<Instant>>,
    /// `MIN_REFETCH`, shorter in tests.
    min_refetch: Duration,
}

impl Keys {
    pub(super) fn new(issuer: String, jwks_url: Option<Url>, http: reqwest::Client) -> Keys {
        Keys {
            issuer,
            jwks_url,
            http,
            cached: RwLock::new(None),
            fetching: tokio::sync::Mutex::new(None),
            min_refetch: MIN_REFETCH,
        }
    }

    /// The key for a token's `kid` and `alg`, fetching or refetching the set as needed.
    pub(super) async fn get(&self, kid: Option<&str>, alg: Algorithm) -> Result<Key, AuthError> {
        if let Some(c) = self.current()
            && c.fetched.elapsed() < MAX_AGE
            && let Some(k) = pick(&c, kid, alg)
        {
            return Ok(k);
        }
        let mut last = self.fetching.lock().await;
        // Another request may have fetched while this one waited.
        let cached = self.current();
        if let Some(c) = &cached
            && c.fetched.elapsed() < MAX_AGE
            && let Some(k) = pick(c, kid, alg)
        {
            return Ok(k);
        }
        if last.is_some_and(|t| t.elapsed() < self.min_refetch) {
            // Fetched (or tried) moments ago: answer from what is at hand, do not refetch.
            return match &cached {
                Some(c) => pick(c, kid, alg).ok_or_else(|| unknown_kid(kid)),
                None => Err(AuthError::Unavailable {
                    issuer: self.issuer.clone(),
                    detail: "its keys could not be fetched; retried at most every 30 s".into(),
                }),
            };
        }
        *last = Some(Instant::now());
        match self.fetch().await {
            Ok(fetched) => {
                let fetched = Arc::new(fetched);
                *self.cached.write().expect("keys lock") = Some(fetched.clone());
                pick(&fetched, kid, alg).ok_or_else(|| unknown_kid(kid))
            }
            Err(detail) => {
                tracing::warn!(issuer = %self.issuer, %detail, "fetching the issuer's keys failed");
                // Serve from the old set rather than fail every push while the issuer is down.
                match cached.as_deref().and_then(|c| pick(c, kid, alg)) {
                    Some(k) => Ok(k),
                    None => Err(AuthError::Unavailable {
                        issuer: self.issuer.clone(),
                        detail,
                    }),
                }
            }
        }
    }

    /// Shortens the refetch interval (tests of key rotation).
    #[cfg(test)]
    pub(super) fn set_min_refetch(&mut self, d: Duration) {
        self.min_refetch = d;
    }

    fn current(&self) -> Option<Arc<Cached>> {
        self.cached.read().expect("keys lock").clone()
    }

    async fn fetch(&self) -> Result<Cached, String> {
        let url = match &self.jwks_url {
            Some(u) => u.clone(),
            None => self.discover().await?,
        };
        let set: JwkSet = serde_json::from_slice(&self.get_json(&url).await?)
            .map_err(|e| format!("{url} is not a JWK set: {e}"))?;
        let mut cached = Cached {
            keys: HashMap::new(),
            unnamed: Vec::new(),
            fetched: Instant::now(),
        };
        for jwk in &set.keys {
            let Some(key) = usable(jwk) else { continue };
            match &jwk.common.key_id {
                Some(kid) => {
                    cached.keys.insert(kid.clone(), key);
                }
                None => cached.unnamed.push(key),
            }
        }
        tracing::info!(issuer = %self.issuer, keys = cached.keys.len() + cached.unnamed.len(), "issuer keys fetched");
        Ok(cached)
    }

    /// The `jwks_uri` of the issuer's discovery document, which must name the same issuer.
    async fn discover(&self) -> Result<Url, String> {
        #[derive(serde::Deserialize)]
        struct Discovery {
            issuer: String,
            jwks_uri: String,
        }
        let base = self.issuer.trim_end_matches('/');
        let url = Url::parse(&format!("{base}/.well-known/openid-configuration"))
            .map_err(|e| e.to_string())?;
        let doc: Discovery = serde_json::from_slice(&self.get_json(&url).await?)
            .map_err(|e| format!("{url} is not an OpenID discovery document: {e}"))?;
        // Stops a discovery document (or a proxy) from vouching for another issuer's keys.
        if doc.issuer.trim_end_matches('/') != base {
            return Err(format!(
                "{url} names issuer {:?}, not {:?}",
                doc.issuer, self.issuer
            ));
        }
        let jwks = Url::parse(&doc.jwks_uri).map_err(|e| format!("bad jwks_uri: {e}"))?;
        // Keys fetched over plain http could be swapped on the way.
        if !secure_url(&jwks) {
            return Err(format!(
                "jwks_uri {jwks} is not https (plain http is accepted only on loopback)"
            ));
        }
        Ok(jwks)
    }

    /// GETs a JSON document, reading at most `MAX_BODY` bytes.
    async fn get_json(&self, url: &Url) -> Result<Vec<u8>, String> {
        let mut resp = self
            .http
            .get(url.clone())
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        if !resp.status().is_success() {
            return Err(format!("GET {url}: status {}", resp.status()));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| format!("GET {url}: {e}"))? {
            // Stops an issuer (or whoever answers for it) from making hoist hold a huge body.
            if body.len() + chunk.len() > MAX_BODY {
                return Err(format!("GET {url}: answer larger than {MAX_BODY} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// A JWK hoist may verify with: a signing RSA key (RS256) or P-256 key (ES256). HMAC
/// (`oct`) keys are never used, so a public key cannot turn into an HMAC secret.
fn usable(jwk: &Jwk) -> Option<Key> {
    if matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature) {
        return None;
    }
    let alg = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Algorithm::ES256,
        _ => return None,
    };
    if let Some(declared) = jwk.common.key_algorithm
        && Algorithm::try_from(declared).ok() != Some(alg)
    {
        return None;
    }
    let key = DecodingKey::from_jwk(jwk).ok()?;
    Some(Key { key, alg })
}

/// The key a token names, if its algorithm fits the key's type.
fn pick(c: &Cached, kid: Option<&str>, alg: Algorithm) -> Option<Key> {
    match kid {
        Some(kid) => c.keys.get(kid).filter(|k| k.alg == alg).cloned(),
        None => {
            let mut fit = c
                .unnamed
                .iter()
                .chain(c.keys.values())
                .filter(|k| k.alg == alg);
            let one = fit.next()?;
            fit.next().is_none().then(|| one.clone())
        }
    }
}

fn unknown_kid(kid: Option<&str>) -> AuthError {
    AuthError::unauthorized(match kid {
        Some(_) => "JWT signed with a key the issuer does not list (unknown kid)",
        None => "JWT names no key (kid) and the issuer has several",
    })
}
