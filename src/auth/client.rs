//! Who is pushing: a name for logs and reports, and the repositories they may push to; in
//! pass-through mode also the credentials to use for the registry on their behalf.

use super::scope::Scopes;
use crate::secret::Secret;

/// An authenticated client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// Shown in logs and the push report (`"client": "ci-team-a"`); never a token.
    pub name: String,
    /// Where this client may push.
    pub scopes: Scopes,
    /// Pass-through mode: the registry is asked with these, not hoist's own credentials.
    pub registry: Option<PassThrough>,
    /// Sent no credentials (loopback, or `anonymous = true`): not limited per client, since
    /// all such requests would share one name.
    pub anonymous: bool,
}

/// The client's own registry credentials (pass-through mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PassThrough {
    /// No credentials: the registry decides what an anonymous client may do.
    Anonymous,
    /// Basic credentials, sent to the registry (or exchanged there for Bearer tokens).
    Basic {
        /// The registry user name.
        username: String,
        /// The password or registry token; never printed.
        password: Secret,
    },
}

impl Client {
    /// The client of an unauthenticated request where that is allowed: may push anywhere.
    pub fn anonymous() -> Client {
        Client {
            name: "anonymous".into(),
            scopes: Scopes::any(),
            registry: None,
            anonymous: true,
        }
    }

    /// Whether this client may push to (and mount from) `repository`.
    pub fn may_push(&self, repository: &str) -> bool {
        self.scopes.allow(repository)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pass_through_password_never_prints() {
        let c = Client {
            name: "alice".into(),
            scopes: Scopes::any(),
            registry: Some(PassThrough::Basic {
                username: "alice".into(),
                password: Secret("s3cret-pw".into()),
            }),
            anonymous: false,
        };
        assert!(!format!("{c:?}").contains("s3cret-pw"));
        assert!(c.may_push("any/repo"));
        assert!(!c.may_push("Bad/Repo"));
    }
}
