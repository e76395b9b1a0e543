//! Who may push where. A request's `Authorization` becomes a `Client`: a name and the
//! repositories it may push to (globs). Three ways to say who a client is, usable together
//! except where noted: API tokens from a tokens file, CI identity tokens (OIDC JWTs) from
//! configured issuers, or pass-through (`mode = "registry"`: the client's own registry
//! credentials, so the registry decides; alone). Without any of them hoist serves only on
//! loopback, unless `anonymous = true` says otherwise on purpose.
//!
//! Knows nothing of HTTP frameworks or pushes: `http` asks it, `push` checks `Client`s.

mod client;
mod config;
mod error;
mod oidc;
mod scope;
mod slots;
mod template;
pub mod tokens;

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine;

pub use client::{Client, PassThrough};
pub use config::{AuthConfig, Mode, RawAuth, RawOidc};
pub use error::{AuthError, CHALLENGES};
pub use oidc::{LEEWAY, Rule, secure_url};
pub use scope::{Scope, ScopeError, Scopes};
pub use slots::{ClientSlot, ClientSlots};
pub use template::{Template, TemplateError};

use crate::secret::Secret;

/// Why the authenticator cannot start.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The safe default: no open gateway on a reachable address by accident.
    #[error(
        "hoist would let anyone who can reach {listen} push anywhere with its own registry credentials. Configure who may push ([auth] tokens_file, [[auth.oidc]], or mode = \"registry\"), listen on loopback, or set [auth] anonymous = true (HOIST_AUTH__ANONYMOUS=true) to run an open gateway on purpose"
    )]
    OpenGateway {
        /// The listen address.
        listen: SocketAddr,
    },
    /// The tokens file could not be read.
    #[error(transparent)]
    Tokens(#[from] tokens::TokensError),
    /// The HTTP client for issuers could not be built.
    #[error("setting up the OIDC client: {0}")]
    Http(#[from] reqwest::Error),
}

/// The credential a person on the upload page types, by how hoist identifies clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageCredentials {
    /// Nobody is identified (loopback, or an open gateway): no field.
    Nothing,
    /// An API token or a CI identity token, sent as `Authorization: Bearer`.
    Token,
    /// Pass-through: the person's own registry user name and password, sent as Basic.
    RegistryLogin,
}

/// Turns a request's `Authorization` into a client.
pub struct Authenticator {
    mode: Mode,
    tokens: Option<Arc<tokens::Store>>,
    oidc: oidc::Verifier,
    /// Requests without credentials are served (configured, or loopback without auth).
    anonymous: bool,
}

impl Authenticator {
    /// Builds it from the validated `[auth]` section; refuses an open gateway on a
    /// non-loopback `listen` address unless `anonymous = true`.
    pub fn new(config: &AuthConfig, listen: SocketAddr) -> Result<Authenticator, SetupError> {
        let identifies = config.identifies_clients();
        if !identifies && !config.anonymous && !listen.ip().is_loopback() {
            return Err(SetupError::OpenGateway { listen });
        }
        let tokens = match &config.tokens_file {
            Some(path) => Some(Arc::new(tokens::Store::open(path)?)),
            None => None,
        };
        if let Some(t) = &tokens {
            t.reload_on_sighup();
        }
        Ok(Authenticator {
            mode: config.mode,
            tokens,
            oidc: oidc::Verifier::new(&config.oidc)?,
            anonymous: config.anonymous || !identifies,
        })
    }

    /// The client an `Authorization` header value names. Never echoes the credential.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Client, AuthError> {
        let Some(value) = authorization.map(str::trim).filter(|v| !v.is_empty()) else {
            return self.anonymous_client();
        };
        if self.anonymous && !self.identifies() {
            // An open gateway: credentials some clients always send are ignored.
            return Ok(Client::anonymous());
        }
        let credential = parse(value)?;
        match self.mode {
            Mode::Registry => pass_through(credential),
            Mode::Gateway => self.gateway(credential.secret()).await,
        }
    }

    /// What the upload page asks a person for, and whether hoist lets them in without it.
    pub fn page_credentials(&self) -> (PageCredentials, bool) {
        let asks = match self.mode {
            Mode::Registry => PageCredentials::RegistryLogin,
            Mode::Gateway if self.identifies() => PageCredentials::Token,
            Mode::Gateway => PageCredentials::Nothing,
        };
        (asks, self.anonymous)
    }

    fn identifies(&self) -> bool {
        self.mode == Mode::Registry || self.tokens.is_some() || !self.oidc.is_empty()
    }

    fn anonymous_client(&self) -> Result<Client, AuthError> {
        if !self.anonymous {
            return Err(AuthError::unauthorized(
                "no credentials: send Authorization: Bearer TOKEN (or Basic with the token as password)",
            ));
        }
        let mut client = Client::anonymous();
        if self.mode == Mode::Registry {
            client.registry = Some(PassThrough::Anonymous);
        }
        Ok(client)
    }

    async fn gateway(&self, secret: &str) -> Result<Client, AuthError> {
        if looks_like_jwt(secret) && !self.oidc.is_empty() {
            return self.oidc.verify(secret).await;
        }
        self.tokens
            .as_ref()
            .and_then(|t| t.lookup(secret))
            .ok_or_else(|| AuthError::unauthorized("token not recognised"))
    }
}

/// A credential as sent.
enum Credential {
    Bearer(Secret),
    Basic { username: String, password: Secret },
}

impl Credential {
    /// The part that proves identity: the bearer token, or the Basic password.
    fn secret(&self) -> &str {
        match self {
            Credential::Bearer(t) => &t.0,
            Credential::Basic { password, .. } => &password.0,
        }
    }
}

fn parse(value: &str) -> Result<Credential, AuthError> {
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") && !rest.is_empty() {
        return Ok(Credential::Bearer(Secret(rest.to_string())));
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| {
                AuthError::unauthorized("Basic credentials are not base64 of user:password")
            })?;
        let (user, password) = decoded.split_once(':').ok_or_else(|| {
            AuthError::unauthorized("Basic credentials are not base64 of user:password")
        })?;
        return Ok(Credential::Basic {
            username: user.to_string(),
            password: Secret(password.to_string()),
        });
    }
    Err(AuthError::unauthorized(
        "unsupported Authorization scheme: use Bearer or Basic",
    ))
}

fn pass_through(credential: Credential) -> Result<Client, AuthError> {
    match credential {
        Credential::Basic { username, password } if !username.is_empty() => Ok(Client {
            name: username
                .chars()
                .filter(|c| !c.is_control())
                .take(200)
                .collect(),
            scopes: Scopes::any(),
            registry: Some(PassThrough::Basic { username, password }),
            anonymous: false,
        }),
        _ => Err(AuthError::unauthorized(
            "hoist passes credentials through to the registry: send Basic with your registry user name and password",
        )),
    }
}

/// Three base64url parts, the first a JSON header: a JWT rather than an API token.
fn looks_like_jwt(s: &str) -> bool {
    s.starts_with("eyJ") && s.split('.').count() == 3
}

#[cfg(test)]
mod tests;
