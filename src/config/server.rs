//! The keys that shape the server itself: the admin listener and the bounds of the serve
//! loop (`max_connections`, `header_read_timeout`, `readiness_interval`).

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ConfigError, RawConfig, invalid};

/// How log lines are written: `text` for people, `json` (one object a line) for collectors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl std::fmt::Display for LogFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        })
    }
}

impl RawConfig {
    /// The admin listener: none, or another address than `listen`.
    pub(super) fn admin_listen(
        &self,
        listen: SocketAddr,
    ) -> Result<Option<SocketAddr>, ConfigError> {
        if self.admin_listen.is_empty() {
            return Ok(None);
        }
        let admin: SocketAddr = self
            .admin_listen
            .parse()
            .map_err(|e| invalid("admin_listen", format!("{:?}: {e}", self.admin_listen)))?;
        if admin == listen && admin.port() != 0 {
            return Err(invalid("admin_listen", "must differ from listen"));
        }
        Ok(Some(admin))
    }

    pub(super) fn check_server(&self) -> Result<(), ConfigError> {
        if self.max_connections == 0 {
            return Err(invalid("max_connections", "must be at least 1"));
        }
        if self.header_read_timeout.is_zero() {
            return Err(invalid("header_read_timeout", "must be more than 0s"));
        }
        if self.readiness_interval < Duration::from_millis(100) {
            return Err(invalid("readiness_interval", "must be at least 100ms"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_admin_listener_is_optional_and_apart() {
        let listen: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        assert_eq!(RawConfig::default().admin_listen(listen).unwrap(), None);
        let raw = RawConfig {
            admin_listen: "127.0.0.1:8080".into(),
            ..RawConfig::default()
        };
        assert!(raw.admin_listen(listen).is_err());
        let raw = RawConfig {
            admin_listen: "0.0.0.0:9090".into(),
            ..RawConfig::default()
        };
        assert_eq!(
            raw.admin_listen(listen).unwrap(),
            Some("0.0.0.0:9090".parse().unwrap())
        );
    }

    #[test]
    fn server_bounds_must_be_usable() {
        for raw in [
            RawConfig {
                max_connections: 0,
                ..RawConfig::default()
            },
            RawConfig {
                header_read_timeout: Duration::ZERO,
                ..RawConfig::default()
            },
            RawConfig {
                readiness_interval: Duration::from_millis(10),
                ..RawConfig::default()
            },
        ] {
            assert!(raw.check_server().is_err());
        }
        assert!(RawConfig::default().check_server().is_ok());
    }
}
