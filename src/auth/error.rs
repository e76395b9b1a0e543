//! Why a request is refused, as the client is told: 401 `UNAUTHORIZED` (who are you?), 403
//! `DENIED` (not there), 503 `AUTH_UNAVAILABLE` (an identity provider could not be asked).
//! No variant carries a token, a JWT or an `Authorization` value.

/// The `WWW-Authenticate` values sent with a 401: either scheme works.
pub const CHALLENGES: [&str; 2] = [r#"Bearer realm="hoist""#, r#"Basic realm="hoist""#];

/// A refused request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No credentials, or credentials hoist does not accept.
    #[error("{reason}")]
    Unauthorized {
        /// Why, for the client (never the credential itself).
        reason: String,
    },
    /// Authenticated, but the repository is outside the client's scopes.
    #[error("client {client:?} may not push to {repository:?}")]
    Denied {
        /// The client's name.
        client: String,
        /// The repository refused.
        repository: String,
    },
    /// Pass-through: the registry itself refused an operation to the client's credentials.
    #[error("the registry denied client {client:?} {detail}")]
    RegistryDenied {
        /// The client's name.
        client: String,
        /// The operation and the registry's words.
        detail: String,
    },
    /// An OIDC issuer's keys could not be fetched, so a token could not be checked.
    #[error("identity provider {issuer} is unavailable: {detail}")]
    Unavailable {
        /// The issuer URL.
        issuer: String,
        /// What went wrong fetching its keys.
        detail: String,
    },
}

impl AuthError {
    /// Shorthand for a 401 with a reason.
    pub fn unauthorized(reason: impl Into<String>) -> AuthError {
        AuthError::Unauthorized {
            reason: reason.into(),
        }
    }

    /// The stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Unauthorized { .. } => "UNAUTHORIZED",
            AuthError::Denied { .. } | AuthError::RegistryDenied { .. } => "DENIED",
            AuthError::Unavailable { .. } => "AUTH_UNAVAILABLE",
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            AuthError::Unauthorized { .. } => 401,
            AuthError::Denied { .. } | AuthError::RegistryDenied { .. } => 403,
            AuthError::Unavailable { .. } => 503,
        }
    }

    /// The `WWW-Authenticate` values to send (only with a 401).
    pub fn challenges(&self) -> &'static [&'static str] {
        match self {
            AuthError::Unauthorized { .. } => &CHALLENGES,
            _ => &[],
        }
    }
}
