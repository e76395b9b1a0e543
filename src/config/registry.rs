//! Where the registry is and who hoist is to it: the URL's checks and the credentials.

use url::Url;

use super::{ConfigError, RawConfig, invalid};
use crate::registry::credentials::{self, Credentials};

impl RawConfig {
    /// An http(s) URL; plain http only on loopback or by explicit opt-in.
    pub(super) fn registry_url(&self) -> Result<Url, ConfigError> {
        let registry = Url::parse(&self.registry)
            .map_err(|e| invalid("registry", format!("{:?}: {e}", self.registry)))?;
        if !matches!(registry.scheme(), "http" | "https") || registry.host_str().is_none() {
            return Err(invalid(
                "registry",
                format!("must be an http(s) URL, not {:?}", self.registry),
            ));
        }
        // The URL is logged at start and named in errors: a password in it would leak.
        if !registry.username().is_empty() || registry.password().is_some() {
            return Err(invalid(
                "registry",
                "holds credentials: use registry_username and registry_password (or HOIST_REGISTRY_PASSWORD) instead",
            ));
        }
        let loopback = match registry.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d == "localhost",
            None => false,
        };
        if registry.scheme() == "http" && !loopback && !self.registry_allow_http {
            return Err(invalid(
                "registry",
                format!(
                    "{} is plain http and not on loopback: set registry_allow_http = true to allow it",
                    self.registry
                ),
            ));
        }
        Ok(registry)
    }

    /// Username and password, else a docker `config.json` (`registry_auth_file`, else
    /// `$DOCKER_CONFIG/config.json`), else anonymous.
    pub(super) fn credentials(&self, registry: &Url) -> Result<Credentials, ConfigError> {
        if !self.registry_username.is_empty() {
            return Ok(Credentials::Basic {
                username: self.registry_username.clone(),
                password: self.registry_password.clone(),
            });
        }
        let file = if !self.registry_auth_file.is_empty() {
            Some(std::path::PathBuf::from(&self.registry_auth_file))
        } else {
            std::env::var_os("DOCKER_CONFIG")
                .map(|d| std::path::PathBuf::from(d).join("config.json"))
        };
        match file {
            Some(f) => Ok(credentials::from_docker_config(&f, registry)?),
            None => Ok(Credentials::Anonymous),
        }
    }
}
