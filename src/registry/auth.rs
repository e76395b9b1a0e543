//! Authentication to the backend: anonymous, Basic, or Bearer tokens obtained by following
//! the registry's `WWW-Authenticate` challenge. Tokens are cached per scope set and renewed
//! before they expire, so a long PATCH never starts on a token about to die.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;

use super::RegistryError;
use super::credentials::Credentials;

/// How long a token endpoint may take to answer, and read.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(30);

/// A token answer is a small JSON document; anything longer is cut (and then fails to parse).
const TOKEN_BODY_MAX: usize = 64 << 10;

/// What the registry asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// Parses a `WWW-Authenticate` header value.
pub fn parse_challenge(value: &str) -> Option<Challenge> {
    let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    if scheme.eq_ignore_ascii_case("basic") {
        return Some(Challenge::Basic);
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let params = parse_params(rest);
    let realm = params.get("realm")?.clone();
    Some(Challenge::Bearer {
        realm,
        service: params.get("service").cloned(),
    })
}

/// `key="value", key2=value2` (quoted values may hold commas).
fn parse_params(s: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        let Some((key, after)) = rest.split_once('=') else {
            break;
        };
        let key = key
            .trim()
            .trim_start_matches(',')
            .trim()
            .to_ascii_lowercase();
        let after = after.trim_start();
        let (value, remaining) = if let Some(stripped) = after.strip_prefix('"') {
            match stripped.find('"') {
                Some(end) => (&stripped[..end], &stripped[end + 1..]),
                None => (stripped, ""),
            }
        } else {
            match after.find(',') {
                Some(end) => (&after[..end], &after[end..]),
                None => (after, ""),
            }
        };
        out.insert(key, value.to_string());
        rest = remaining.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

struct Token {
    value: String,
    expires: Instant,
    lifetime: Duration,
}

impl Token {
    /// Fresh enough to start a request: more than max(30 s, 10 % of its life) left.
    fn fresh(&self) -> bool {
        let margin = std::cmp::max(Duration::from_secs(30), self.lifetime / 10);
        Instant::now() + margin < self.expires
    }
}

/// Credentials and what the registry told us about how to use them.
pub struct Auth {
    credentials: Credentials,
    challenge: Mutex<Option<Challenge>>,
    tokens: Mutex<HashMap<String, Token>>,
}

impl Auth {
    pub fn new(credentials: Credentials) -> Auth {
        Auth {
            credentials,
            challenge: Mutex::new(None),
            tokens: Mutex::new(HashMap::new()),
        }
    }

    fn basic(&self) -> Option<String> {
        let Credentials::Basic { username, password } = &self.credentials else {
            return None;
        };
        let raw = format!("{username}:{}", password.0);
        Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        ))
    }

    /// Whether a challenge was learnt (for tests).
    #[cfg(test)]
    pub(super) fn challenged(&self) -> bool {
        self.challenge.lock().expect("auth lock").is_some()
    }

    /// Remembers the challenge from a 401. Returns false when nothing changed, in which case
    /// retrying with the same credentials is pointless.
    pub fn learn(&self, header: Option<&str>) -> bool {
        let Some(ch) = header.and_then(parse_challenge) else {
            return false;
        };
        let mut cur = self.challenge.lock().expect("auth lock");
        if cur.as_ref() == Some(&ch) {
            return matches!(ch, Challenge::Bearer { .. });
        }
        *cur = Some(ch);
        true
    }

    /// Drops a cached token after the registry said it is invalid.
    pub fn forget(&self, scopes: &[String]) {
        self.tokens
            .lock()
            .expect("auth lock")
            .remove(&scopes.join(" "));
    }

    /// The Authorization header for a request needing `scopes`, fetching a token if needed.
    pub async fn header(
        &self,
        http: &reqwest::Client,
        scopes: &[String],
    ) -> Result<Option<String>, RegistryError> {
        let challenge = self.challenge.lock().expect("auth lock").clone();
        match challenge {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(self.basic()),
            Some(Challenge::Bearer { realm, service }) => {
                let key = scopes.join(" ");
                if let Some(t) = self.tokens.lock().expect("auth lock").get(&key)
                    && t.fresh()
                {
                    return Ok(Some(format!("Bearer {}", t.value)));
                }
                let token = self
                    .fetch_token(http, &realm, service.as_deref(), scopes)
                    .await?;
                let header = format!("Bearer {}", token.value);
                self.tokens.lock().expect("auth lock").insert(key, token);
                Ok(Some(header))
            }
        }
    }

    async fn fetch_token(
        &self,
        http: &reqwest::Client,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
    ) -> Result<Token, RegistryError> {
        let op = format!("token request to {realm}");
        let mut req = self
            .token_request(http, realm, service, scopes)
            .map_err(|detail| RegistryError::Protocol {
                op: op.clone(),
                detail,
            })?;
        if let Some(b) = self.basic() {
            req = req.header(reqwest::header::AUTHORIZATION, b);
        }
        let resp = super::observe::timed(&op, TOKEN_TIMEOUT, req.send())
            .await
            .map_err(|_| RegistryError::Timeout {
                op: op.clone(),
                secs: TOKEN_TIMEOUT.as_secs(),
            })?
            .map_err(|e| RegistryError::Unreachable {
                op: op.clone(),
                detail: e.to_string(),
            })?;
        let status = resp.status();
        let body = tokio::time::timeout(
            TOKEN_TIMEOUT,
            super::error::read_capped(resp, TOKEN_BODY_MAX),
        )
        .await
        .unwrap_or_default();
        if status == 401 || status == 403 {
            let (_, detail) = super::error::describe_body(&body);
            return Err(RegistryError::Unauthorized { op, detail });
        }
        if !status.is_success() {
            let (code, detail) = super::error::describe_body(&body);
            return Err(RegistryError::Status {
                op,
                status: status.as_u16(),
                code,
                detail,
            });
        }
        read_token(&body).map_err(|detail| RegistryError::Protocol { op, detail })
    }

    /// GET realm?service&scope, or for docker's identity token (an OAuth2 refresh token) a
    /// form POST to the realm.
    fn token_request(
        &self,
        http: &reqwest::Client,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
    ) -> Result<reqwest::RequestBuilder, String> {
        let mut url = url::Url::parse(realm).map_err(|e| format!("bad realm: {e}"))?;
        if let Credentials::IdentityToken(token) = &self.credentials {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("grant_type", "refresh_token")
                .append_pair("refresh_token", &token.0)
                .append_pair("client_id", "hoist")
                .append_pair("scope", &scopes.join(" "));
            if let Some(s) = service {
                form.append_pair("service", s);
            }
            url.set_query(None);
            return Ok(http
                .post(url)
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(form.finish()));
        }
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = service {
                q.append_pair("service", s);
            }
            for s in scopes {
                q.append_pair("scope", s);
            }
        }
        Ok(http.get(url))
    }
}

/// The token in a token endpoint's answer, with its lifetime.
fn read_token(body: &[u8]) -> Result<Token, String> {
    #[derive(serde::Deserialize)]
    struct Answer {
        token: Option<String>,
        access_token: Option<String>,
        expires_in: Option<u64>,
    }
    let a: Answer =
        serde_json::from_slice(body).map_err(|e| format!("token answer is not JSON: {e}"))?;
    let value = a
        .token
        .or(a.access_token)
        .ok_or("token answer has no token")?;
    // The spec: default 60 s, and never trust less than 60 s.
    let lifetime = Duration::from_secs(a.expires_in.unwrap_or(60).max(60));
    Ok(Token {
        value,
        expires: Instant::now() + lifetime,
        lifetime,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn challenges() {
        assert_eq!(
            parse_challenge("Basic realm=\"basic-realm\""),
            Some(Challenge::Basic)
        );
        let c = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(
            c,
            Some(Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into())
            })
        );
        assert_eq!(parse_challenge("Negotiate abc"), None);
    }
}
