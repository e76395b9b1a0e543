//! hoist's own credentials for the registry, and reading them from a docker `config.json`.

use std::path::Path;

use serde::Deserialize;
use url::Url;

use crate::secret::Secret;

/// How hoist authenticates to the registry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Credentials {
    #[default]
    Anonymous,
    Basic {
        username: String,
        password: Secret,
    },
    /// An OAuth2 refresh token (docker `identitytoken`), exchanged at the token realm.
    IdentityToken(Secret),
}

/// Why a docker `config.json` gave no credentials.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {detail}")]
    Invalid { path: String, detail: String },
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: std::collections::HashMap<String, Entry>,
}

#[derive(Deserialize)]
struct Entry {
    auth: Option<String>,
    identitytoken: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

/// Reads the entry for `registry` from a docker `config.json` (`auths` keyed by host, with or
/// without a scheme). A file without an entry for this registry means anonymous.
pub fn from_docker_config(path: &Path, registry: &Url) -> Result<Credentials, CredentialsError> {
    let shown = path.display().to_string();
    let invalid = |detail: String| CredentialsError::Invalid {
        path: shown.clone(),
        detail,
    };
    let text = std::fs::read(path).map_err(|source| CredentialsError::Read {
        path: shown.clone(),
        source,
    })?;
    let file: DockerConfig = serde_json::from_slice(&text).map_err(|e| invalid(e.to_string()))?;
    let host = match registry.port() {
        Some(p) => format!("{}:{p}", registry.host_str().unwrap_or("")),
        None => registry.host_str().unwrap_or("").to_string(),
    };
    let entry = file.auths.iter().find(|(k, _)| {
        let k = k
            .trim_start_matches("https://")
            .trim_start_matches("http://");
        k.split('/').next() == Some(host.as_str())
    });
    let Some((_, e)) = entry else {
        return Ok(Credentials::Anonymous);
    };
    if let Some(t) = e.identitytoken.as_ref().filter(|t| !t.is_empty()) {
        return Ok(Credentials::IdentityToken(Secret(t.clone())));
    }
    if let Some(a) = &e.auth {
        let (username, password) = decode_auth(a)
            .ok_or_else(|| invalid(format!("auth for {host} is not base64 of user:password")))?;
        return Ok(Credentials::Basic {
            username,
            password: Secret(password),
        });
    }
    if let (Some(u), Some(p)) = (&e.username, &e.password) {
        return Ok(Credentials::Basic {
            username: u.clone(),
            password: Secret(p.clone()),
        });
    }
    Ok(Credentials::Anonymous)
}

/// `base64(user:password)`.
fn decode_auth(auth: &str) -> Option<(String, String)> {
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .ok()?;
    let raw = String::from_utf8(raw).ok()?;
    let (u, p) = raw.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_config_json() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("config.json");
        std::fs::write(
            &f,
            r#"{"auths":{"https://reg.example:5000":{"auth":"dXNlcjpwYXNzOndvcmQ="},"other.example":{"identitytoken":"tok"}}}"#,
        )
        .unwrap();
        let c = from_docker_config(&f, &Url::parse("https://reg.example:5000").unwrap()).unwrap();
        assert_eq!(
            c,
            Credentials::Basic {
                username: "user".into(),
                password: Secret("pass:word".into())
            }
        );
        let c = from_docker_config(&f, &Url::parse("https://other.example").unwrap()).unwrap();
        assert_eq!(c, Credentials::IdentityToken(Secret("tok".into())));
        let c = from_docker_config(&f, &Url::parse("https://none.example").unwrap()).unwrap();
        assert_eq!(c, Credentials::Anonymous);
    }
}
