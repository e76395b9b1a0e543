//! CI identity tokens (OIDC JWTs) from configured issuers (GitHub Actions, GitLab CI,
//! Buildkite): the signature is checked with the issuer's published keys (RS256 or ES256
//! only), then `exp`/`nbf`/`iat`/`aud`/`iss` with a small leeway, then each rule's required
//! claims; the rules that match grant their scope templates, filled from the claims.

mod keys;

use std::collections::BTreeMap;
use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};
use url::Url;

use super::client::Client;
use super::error::AuthError;
use super::scope::Scopes;
use super::template::Template;

/// Clock skew tolerated on `exp`, `nbf` and `iat`.
pub const LEEWAY: Duration = Duration::from_secs(30);
/// Timeout of one request to an issuer (discovery or keys).
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// One `[[auth.oidc]]` rule, validated.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The `iss` tokens must carry, exactly.
    pub issuer: String,
    /// An `aud` the token must carry.
    pub audience: String,
    /// Where the keys are; `None`: discovered from the issuer.
    pub jwks_url: Option<Url>,
    /// Claims that must have exactly these values (`ref_protected = "true"`).
    pub claims: BTreeMap<String, String>,
    /// Scopes granted, filled from the claims (`ci/{repository_owner}/**`).
    pub repositories: Vec<Template>,
    /// The claim naming the client in logs and reports (default `sub`).
    pub name_claim: String,
}

/// Whether a URL may be trusted for keys: https, or plain http on loopback (tests).
pub fn secure_url(url: &Url) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d == "localhost",
            None => false,
        },
        _ => false,
    }
}

/// Every configured issuer, with its rules and its keys.
pub struct Verifier {
    issuers: Vec<(Vec<Rule>, keys::Keys)>,
}

impl Verifier {
    /// Groups the rules by issuer; no request is made until a token arrives.
    pub fn new(rules: &[Rule]) -> Result<Verifier, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .connect_timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("hoist/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let mut issuers: Vec<(Vec<Rule>, keys::Keys)> = Vec::new();
        for rule in rules {
            match issuers.iter_mut().find(|(r, _)| r[0].issuer == rule.issuer) {
                Some((r, _)) => r.push(rule.clone()),
                None => {
                    let keys =
                        keys::Keys::new(rule.issuer.clone(), rule.jwks_url.clone(), http.clone());
                    issuers.push((vec![rule.clone()], keys));
                }
            }
        }
        Ok(Verifier { issuers })
    }

    /// Shortens the kid-refetch interval (tests of key rotation).
    #[cfg(test)]
    fn set_min_refetch(&mut self, d: Duration) {
        for (_, k) in &mut self.issuers {
            k.set_min_refetch(d);
        }
    }

    /// Whether any issuer is configured.
    pub fn is_empty(&self) -> bool {
        self.issuers.is_empty()
    }

    /// The client a JWT proves, or why it proves nothing.
    pub async fn verify(&self, token: &str) -> Result<Client, AuthError> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| AuthError::unauthorized("not a valid JWT"))?;
        // Stops `alg: none` and key confusion (HS256 "signed" with a public key as secret):
        // only asymmetric algorithms, each checked against the key's own type.
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(AuthError::unauthorized(format!(
                "JWT algorithm {:?} is not accepted (RS256 or ES256 only)",
                header.alg
            )));
        }
        let issuer = unverified_issuer(token)?;
        let (rules, keys) = self
            .issuers
            .iter()
            .find(|(r, _)| r[0].issuer == issuer)
            .ok_or_else(|| AuthError::unauthorized("JWT from an issuer hoist does not trust"))?;
        let key = keys.get(header.kid.as_deref(), header.alg).await?;
        let claims = validate(token, &key.key, header.alg, rules)?;
        grant(rules, &claims)
    }
}

/// The `iss` claim before verification, only to pick the issuer's keys; the signature and
/// the `iss` itself are checked afterwards.
fn unverified_issuer(token: &str) -> Result<String, AuthError> {
    #[derive(serde::Deserialize)]
    struct Peek {
        iss: Option<String>,
    }
    jsonwebtoken::dangerous::insecure_decode_claims::<Peek>(token)
        .ok()
        .and_then(|p| p.iss)
        .ok_or_else(|| AuthError::unauthorized("JWT has no issuer (iss)"))
}

/// Signature, then the registered claims; returns all claims.
fn validate(
    token: &str,
    key: &jsonwebtoken::DecodingKey,
    alg: Algorithm,
    rules: &[Rule],
) -> Result<Map<String, Value>, AuthError> {
    let mut v = Validation::new(alg);
    v.leeway = LEEWAY.as_secs();
    v.validate_nbf = true;
    v.set_issuer(&[&rules[0].issuer]);
    let audiences: Vec<&str> = rules.iter().map(|r| r.audience.as_str()).collect();
    v.set_audience(&audiences);
    v.set_required_spec_claims(&["exp", "iss", "aud"]);
    let data = jsonwebtoken::decode::<Map<String, Value>>(token, key, &v)
        .map_err(|e| AuthError::unauthorized(describe(e.kind())))?;
    let claims = data.claims;
    let now = jsonwebtoken::get_current_timestamp();
    match claims.get("iat").and_then(Value::as_u64) {
        Some(iat) if iat <= now + LEEWAY.as_secs() => Ok(claims),
        Some(_) => Err(AuthError::unauthorized("JWT issued in the future (iat)")),
        None => Err(AuthError::unauthorized("JWT has no issue time (iat)")),
    }
}

fn describe(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::ExpiredSignature => "JWT expired (exp)".into(),
        ErrorKind::ImmatureSignature => "JWT not valid yet (nbf)".into(),
        ErrorKind::InvalidAudience => "JWT audience (aud) is not one hoist accepts".into(),
        ErrorKind::InvalidIssuer => "JWT issuer (iss) is not one hoist trusts".into(),
        ErrorKind::InvalidSignature => "JWT signature does not verify".into(),
        ErrorKind::InvalidAlgorithm => "JWT algorithm does not fit the key".into(),
        ErrorKind::MissingRequiredClaim(c) => format!("JWT has no {c} claim"),
        ErrorKind::InvalidClaimFormat(c) => format!("JWT claim {c} is malformed"),
        _ => "not a valid JWT".into(),
    }
}

/// A claim as text: strings as they are, booleans and numbers spelled out (CI providers
/// send `"true"`, but a JSON `true` means the same); nothing else.
fn claim_text(claims: &Map<String, Value>, name: &str) -> Option<String> {
    match claims.get(name)? {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The scopes of every rule whose audience and required claims match.
fn grant(rules: &[Rule], claims: &Map<String, Value>) -> Result<Client, AuthError> {
    let audiences = audiences(claims);
    let mut scopes = Vec::new();
    let mut why = None;
    for rule in rules {
        if !audiences.iter().any(|a| a == &rule.audience) {
            continue;
        }
        if let Some((claim, _)) = rule
            .claims
            .iter()
            .find(|(k, want)| claim_text(claims, k).as_ref() != Some(*want))
        {
            why.get_or_insert(format!(
                "JWT claim {claim:?} does not have the value hoist requires"
            ));
            continue;
        }
        let filled: Result<Vec<_>, _> = rule
            .repositories
            .iter()
            .map(|t| t.fill(|c| claim_text(claims, c)))
            .collect();
        match filled {
            Ok(s) => scopes.extend(s),
            Err(e) => {
                why.get_or_insert(e.to_string());
            }
        }
    }
    if scopes.is_empty() {
        return Err(AuthError::unauthorized(why.unwrap_or_else(|| {
            "no [[auth.oidc]] rule accepts this JWT".into()
        })));
    }
    let name_claim = &rules[0].name_claim;
    let name: String = claim_text(claims, name_claim)
        .unwrap_or_else(|| "oidc".into())
        .chars()
        .filter(|c| !c.is_control())
        .take(200)
        .collect();
    Ok(Client {
        name,
        scopes: Scopes(scopes),
        registry: None,
        anonymous: false,
    })
}

fn audiences(claims: &Map<String, Value>) -> Vec<String> {
    match claims.get("aud") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests;
