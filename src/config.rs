//! Configuration in two phases: a raw serde struct merged from defaults, the TOML file, the
//! command-line flags and `HOIST_*` environment variables (in that order, later wins), then
//! `validate()` into the typed `Config` the rest of the program uses.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::limits::Limits;

/// What to do with uncompressed layers (legacy `docker save`, Docker 25+, podman).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LayerCompression {
    /// gzip them on the way (what `docker push` does); docker schema 2 manifests.
    #[default]
    Gzip,
    /// zstd them on the way; OCI manifests.
    Zstd,
    /// push them as they are, with OCI media types (Quay refuses the docker tar type).
    Keep,
}

impl std::str::FromStr for LayerCompression {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "gzip" => Ok(Self::Gzip),
            "zstd" => Ok(Self::Zstd),
            "keep" => Ok(Self::Keep),
            other => Err(format!(
                "layer_compression must be gzip, zstd or keep, not {other:?}"
            )),
        }
    }
}

/// A secret that never prints.
#[derive(Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() {
            "\"\""
        } else {
            "\"<redacted>\""
        })
    }
}

/// The file/env form. Unknown keys are errors so a typo never silently falls back to a default.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    pub listen: String,
    pub registry: String,
    pub registry_username: String,
    pub registry_password: Secret,
    pub staging_repository: String,
    pub layer_compression: LayerCompression,
    pub gzip_level: u32,
    pub zstd_level: i32,
    pub max_concurrent_pushes: usize,
    pub max_inflight_blobs: usize,
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub client_idle_timeout: Duration,
    pub retries: u32,
    pub cors_allow_origins: Vec<String>,
    pub limits: Limits,
}

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            listen: "127.0.0.1:8080".into(),
            registry: "http://127.0.0.1:5000".into(),
            registry_username: String::new(),
            registry_password: Secret::default(),
            staging_repository: "hoist-staging".into(),
            layer_compression: LayerCompression::Gzip,
            gzip_level: 1,
            zstd_level: 3,
            max_concurrent_pushes: 8,
            max_inflight_blobs: 4,
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            client_idle_timeout: Duration::from_secs(60),
            retries: 3,
            cors_allow_origins: Vec::new(),
            limits: Limits::default(),
        }
    }
}

/// Overrides given on the command line (flags beat the file, env beats flags).
#[derive(Debug, Default, Serialize)]
pub struct Flags {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub registry: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layer_compression: Option<LayerCompression>,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub registry: Url,
    pub registry_username: Option<String>,
    pub registry_password: Secret,
    pub staging_repository: String,
    pub layer_compression: LayerCompression,
    pub gzip_level: u32,
    pub zstd_level: i32,
    pub max_concurrent_pushes: usize,
    pub max_inflight_blobs: usize,
    pub connect_timeout: Duration,
    pub idle_timeout: Duration,
    /// How long a client may send nothing before its push is dropped (slowloris).
    pub client_idle_timeout: Duration,
    pub retries: u32,
    pub cors_allow_origins: Vec<String>,
    pub limits: Limits,
}

impl Config {
    /// Defaults ← file ← flags ← `HOIST_*` env (`__` separates nesting: `HOIST_LIMITS__ENTRIES`).
    pub fn load(file: Option<&Path>, flags: &Flags) -> anyhow::Result<Config> {
        let mut fig = Figment::from(Serialized::defaults(RawConfig::default()));
        if let Some(file) = file {
            if !file.exists() {
                anyhow::bail!("config file {} does not exist", file.display());
            }
            fig = fig.merge(Toml::file(file));
        }
        let raw: RawConfig = fig
            .merge(Serialized::defaults(flags))
            .merge(Env::prefixed("HOIST_").split("__"))
            .extract()?;
        raw.validate()
    }
}

impl RawConfig {
    /// Checks every field and converts to typed values.
    pub fn validate(self) -> anyhow::Result<Config> {
        let listen: SocketAddr = self
            .listen
            .parse()
            .map_err(|e| anyhow::anyhow!("listen {:?}: {e}", self.listen))?;
        let registry = Url::parse(&self.registry)
            .map_err(|e| anyhow::anyhow!("registry {:?}: {e}", self.registry))?;
        if !matches!(registry.scheme(), "http" | "https") || registry.host_str().is_none() {
            anyhow::bail!("registry must be an http(s) URL, not {:?}", self.registry);
        }
        if !crate::reference::valid_repository(&self.staging_repository) {
            anyhow::bail!(
                "staging_repository {:?} is not a valid repository name",
                self.staging_repository
            );
        }
        if !(1..=9).contains(&self.gzip_level) {
            anyhow::bail!("gzip_level must be 1..=9");
        }
        if !(1..=19).contains(&self.zstd_level) {
            anyhow::bail!("zstd_level must be 1..=19");
        }
        if self.max_concurrent_pushes == 0 || self.max_inflight_blobs == 0 {
            anyhow::bail!("max_concurrent_pushes and max_inflight_blobs must be at least 1");
        }
        self.limits.validate()?;
        Ok(Config {
            listen,
            registry,
            registry_username: Some(self.registry_username).filter(|u| !u.is_empty()),
            registry_password: self.registry_password,
            staging_repository: self.staging_repository,
            layer_compression: self.layer_compression,
            gzip_level: self.gzip_level,
            zstd_level: self.zstd_level,
            max_concurrent_pushes: self.max_concurrent_pushes,
            max_inflight_blobs: self.max_inflight_blobs,
            connect_timeout: self.connect_timeout,
            idle_timeout: self.idle_timeout,
            client_idle_timeout: self.client_idle_timeout,
            retries: self.retries,
            cors_allow_origins: self.cors_allow_origins,
            limits: self.limits,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate() {
        let c = RawConfig::default().validate().unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(c.registry.as_str(), "http://127.0.0.1:5000/");
    }

    #[test]
    fn secrets_do_not_print() {
        let mut raw = RawConfig::default();
        raw.registry_password = Secret("hunter2".into());
        assert!(!format!("{raw:?}").contains("hunter2"));
    }

    #[test]
    fn unknown_keys_are_errors() {
        let fig = Figment::from(Serialized::defaults(RawConfig::default()))
            .merge(Toml::string("listne = \"x\""));
        assert!(fig.extract::<RawConfig>().is_err());
    }

    #[test]
    fn bad_values_are_errors() {
        let raw = RawConfig {
            registry: "ftp://x".into(),
            ..RawConfig::default()
        };
        assert!(raw.validate().is_err());
        let raw = RawConfig {
            gzip_level: 0,
            ..RawConfig::default()
        };
        assert!(raw.validate().is_err());
    }
}
