//! The `[auth]` section: the raw form read from the file and `HOIST_AUTH__*`, and the
//! validated form the authenticator is built from.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use url::Url;

use super::oidc::{self, secure_url};
use super::template::Template;

/// Whose credentials reach the registry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// hoist's own credentials; clients identified by tokens or CI identity tokens.
    #[default]
    Gateway,
    /// Pass-through: each client's own Basic credentials; the registry decides.
    Registry,
}

/// `[auth]` as written.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAuth {
    /// `gateway` (default) or `registry` (pass-through).
    pub mode: Mode,
    /// A TOML file of `[[token]]` entries (name, sha256, repositories).
    pub tokens_file: String,
    /// CI identity token issuers (`[[auth.oidc]]`).
    pub oidc: Vec<RawOidc>,
    /// Accept requests without credentials (as client `anonymous`, any repository).
    pub anonymous: bool,
    /// Pushes one client may have in flight; 0: half of `max_concurrent_pushes`.
    pub max_pushes_per_client: usize,
}

/// One `[[auth.oidc]]` rule as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOidc {
    /// The token's `iss`, exactly (`https://token.actions.githubusercontent.com`).
    pub issuer: String,
    /// The `aud` the token must carry.
    pub audience: String,
    /// Where the keys are; empty: from the issuer's discovery document.
    #[serde(default)]
    pub jwks_url: String,
    /// Claims that must have exactly these values.
    #[serde(default)]
    pub claims: BTreeMap<String, String>,
    /// Scope templates (`ci/{repository_owner}/**`).
    pub repositories: Vec<String>,
    /// The claim naming the client in logs and reports.
    #[serde(default = "default_name_claim")]
    pub name_claim: String,
}

fn default_name_claim() -> String {
    "sub".into()
}

/// `[auth]`, validated.
#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    /// Whose credentials reach the registry.
    pub mode: Mode,
    /// The tokens file, if any.
    pub tokens_file: Option<PathBuf>,
    /// CI identity token rules.
    pub oidc: Vec<oidc::Rule>,
    /// Requests without credentials are accepted on purpose.
    pub anonymous: bool,
    /// Pushes one client may have in flight (resolved, at least 1).
    pub max_pushes_per_client: usize,
}

impl AuthConfig {
    /// Whether any way to identify clients is configured.
    pub fn identifies_clients(&self) -> bool {
        self.mode == Mode::Registry || self.tokens_file.is_some() || !self.oidc.is_empty()
    }
}

impl RawAuth {
    /// Checks the section; `max_pushes` is the global `max_concurrent_pushes`.
    pub fn validate(&self, max_pushes: usize) -> Result<AuthConfig, String> {
        let tokens_file = Some(&self.tokens_file)
            .filter(|f| !f.is_empty())
            .map(PathBuf::from);
        if self.mode == Mode::Registry && (tokens_file.is_some() || !self.oidc.is_empty()) {
            return Err("mode = \"registry\" passes each client's own credentials to the registry; tokens_file and [[auth.oidc]] clients would push with hoist's credentials instead, so they cannot be combined with it".into());
        }
        let oidc = self
            .oidc
            .iter()
            .enumerate()
            .map(|(i, r)| r.validate().map_err(|e| format!("oidc #{}: {e}", i + 1)))
            .collect::<Result<_, _>>()?;
        let max_pushes_per_client = match self.max_pushes_per_client {
            0 => (max_pushes / 2).max(1),
            n => n.min(max_pushes),
        };
        Ok(AuthConfig {
            mode: self.mode,
            tokens_file,
            oidc,
            anonymous: self.anonymous,
            max_pushes_per_client,
        })
    }
}

impl RawOidc {
    fn validate(&self) -> Result<oidc::Rule, String> {
        let issuer = Url::parse(&self.issuer).map_err(|e| format!("issuer: {e}"))?;
        // Keys or discovery over plain http could be swapped on the way.
        if !secure_url(&issuer) {
            return Err(format!(
                "issuer {} must be https (plain http only on loopback)",
                self.issuer
            ));
        }
        let jwks_url = match self.jwks_url.as_str() {
            "" => None,
            u => {
                let url = Url::parse(u).map_err(|e| format!("jwks_url: {e}"))?;
                if !secure_url(&url) {
                    return Err(format!(
                        "jwks_url {u} must be https (plain http only on loopback)"
                    ));
                }
                Some(url)
            }
        };
        if self.audience.is_empty() {
            return Err("audience must be set (the aud your CI job asks for)".into());
        }
        if self.repositories.is_empty() {
            return Err("repositories must list at least one scope template".into());
        }
        let repositories = self
            .repositories
            .iter()
            .map(|t| Template::parse(t).map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?;
        Ok(oidc::Rule {
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
            jwks_url,
            claims: self.claims.clone(),
            repositories,
            name_claim: self.name_claim.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(issuer: &str, jwks: &str) -> RawOidc {
        RawOidc {
            issuer: issuer.into(),
            audience: "hoist".into(),
            jwks_url: jwks.into(),
            claims: BTreeMap::new(),
            repositories: vec!["ci/{repository_owner}/**".into()],
            name_claim: "sub".into(),
        }
    }

    #[test]
    fn plain_http_issuers_only_on_loopback() {
        let ok = |r: RawOidc| {
            RawAuth {
                oidc: vec![r],
                ..RawAuth::default()
            }
            .validate(8)
        };
        assert!(ok(rule("https://token.actions.githubusercontent.com", "")).is_ok());
        assert!(ok(rule("http://127.0.0.1:9000", "")).is_ok());
        assert!(ok(rule("http://localhost:9000", "http://[::1]:9000/jwks")).is_ok());
        assert!(ok(rule("http://issuer.example", "")).is_err());
        assert!(ok(rule("https://issuer.example", "http://keys.example/jwks")).is_err());
        let mut bad = rule("https://issuer.example", "");
        bad.repositories = vec!["ci/{owner".into()];
        assert!(ok(bad).is_err());
    }

    #[test]
    fn pass_through_stands_alone_and_per_client_defaults_to_half() {
        let raw = RawAuth {
            mode: Mode::Registry,
            tokens_file: "/x".into(),
            ..RawAuth::default()
        };
        assert!(raw.validate(8).is_err());
        let c = RawAuth::default().validate(8).unwrap();
        assert_eq!(c.max_pushes_per_client, 4);
        assert!(!c.identifies_clients());
        assert_eq!(
            RawAuth::default()
                .validate(1)
                .unwrap()
                .max_pushes_per_client,
            1
        );
    }
}
