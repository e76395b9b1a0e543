//! Configuration in two phases: a raw serde struct merged from defaults, the TOML file,
//! `HOIST_*` environment variables and the command-line flags (in that order, later wins:
//! a flag typed on the command line beats the environment a container image sets), then
//! `validate()` into the typed `Config` the rest of the program uses. Errors name the key and
//! where its value came from (the file's absolute path, the environment variable, the flag).

mod registry;
mod server;
mod source;

pub use server::LogFormat;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::codec::LayerCompression;
use crate::limits::Limits;
use crate::registry::credentials::{Credentials, CredentialsError};
use crate::secret::Secret;

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config file {0} does not exist")]
    Missing(String),
    /// What figment found wrong, each problem with its key and source (not `#[from]`: the
    /// raw figment text would repeat it less clearly as a cause).
    #[error("{}", source::describe(.0))]
    Load(Box<figment::Error>),
    #[error("{key}: {detail}")]
    Invalid { key: &'static str, detail: String },
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// An invalid value, with where it came from (`config file /etc/hoist/hoist.toml`).
    #[error("{origin}: {error}")]
    From {
        origin: String,
        error: Box<ConfigError>,
    },
}

fn invalid(key: &'static str, detail: impl std::fmt::Display) -> ConfigError {
    ConfigError::Invalid {
        key,
        detail: detail.to_string(),
    }
}

/// The file/env form. Unknown keys are errors so a typo never silently falls back to a default.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    pub listen: String,
    /// /metrics, /healthz and /readyz on a listener of their own; "" = on `listen`.
    pub admin_listen: String,
    pub log_format: LogFormat,
    /// Pushes in flight at shutdown get this long; then they are cancelled.
    #[serde(with = "humantime_serde")]
    pub drain_timeout: Duration,
    /// A request head must arrive within this (slowloris, idle keep-alive).
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// Open client connections on `listen`; past it new ones wait to be accepted.
    pub max_connections: usize,
    /// How often /readyz's answer is refreshed from the registry (`GET /v2/`).
    #[serde(with = "humantime_serde")]
    pub readiness_interval: Duration,
    pub registry: String,
    pub registry_username: String,
    pub registry_password: Secret,
    /// A docker `config.json` to take credentials from (`auths`: `auth` or `identitytoken`).
    pub registry_auth_file: String,
    /// Extra CA certificates (PEM) to trust for the registry, beside the system roots.
    pub registry_ca_file: String,
    /// Verify the registry's TLS certificate. Turning this off is an explicit, logged opt-in.
    pub registry_tls_verify: bool,
    /// Allow plain http to a registry that is not on loopback.
    pub registry_allow_http: bool,
    /// Other hosts an upload Location may point to (pre-signed storage); https only, and
    /// they never receive credentials.
    pub registry_upload_hosts: Vec<String>,
    pub staging_repository: String,
    pub layer_compression: LayerCompression,
    pub gzip_level: u32,
    pub zstd_level: i32,
    pub max_concurrent_pushes: usize,
    pub max_inflight_blobs: usize,
    pub upload_chunk_bytes: u64,
    pub patch_content_length: bool,
    pub verify_layer_diff_ids: bool,
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub client_idle_timeout: Duration,
    pub retries: u32,
    pub cors_allow_origins: Vec<String>,
    pub limits: Limits,
    /// Who may push where (`[auth]`).
    pub auth: crate::auth::RawAuth,
}

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            listen: "127.0.0.1:8080".into(),
            admin_listen: String::new(),
            log_format: LogFormat::Text,
            drain_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(10),
            max_connections: 256,
            readiness_interval: Duration::from_secs(5),
            registry: "http://127.0.0.1:5000".into(),
            registry_username: String::new(),
            registry_password: Secret::default(),
            registry_auth_file: String::new(),
            registry_ca_file: String::new(),
            registry_tls_verify: true,
            registry_allow_http: false,
            registry_upload_hosts: Vec::new(),
            staging_repository: "hoist-staging".into(),
            layer_compression: LayerCompression::Gzip,
            gzip_level: 1,
            zstd_level: 3,
            max_concurrent_pushes: 8,
            max_inflight_blobs: 4,
            upload_chunk_bytes: 0,
            patch_content_length: false,
            verify_layer_diff_ids: false,
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            client_idle_timeout: Duration::from_secs(60),
            retries: 3,
            cors_allow_origins: Vec::new(),
            limits: Limits::default(),
            auth: crate::auth::RawAuth::default(),
        }
    }
}

/// Overrides given on the command line (flags beat the environment, which beats the file).
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
    /// The server's own keys, as in `RawConfig` (see `http::serve` for what they bound).
    pub admin_listen: Option<SocketAddr>,
    pub log_format: LogFormat,
    pub drain_timeout: Duration,
    pub header_read_timeout: Duration,
    pub max_connections: usize,
    pub readiness_interval: Duration,
    pub registry: Url,
    pub credentials: Credentials,
    pub registry_ca_file: Option<std::path::PathBuf>,
    pub registry_tls_verify: bool,
    pub registry_upload_hosts: Vec<String>,
    pub staging_repository: String,
    pub layer_compression: LayerCompression,
    pub gzip_level: u32,
    pub zstd_level: i32,
    pub max_concurrent_pushes: usize,
    pub max_inflight_blobs: usize,
    /// 0: one streamed PATCH per blob (the portable default). Otherwise fixed-size chunks
    /// with Content-Range, for registries or proxies that cap request bodies.
    pub upload_chunk_bytes: u64,
    /// Declare Content-Length on a streamed PATCH when the size is known. Off by default, as
    /// `docker push` does: a body can then end cleanly when a push fails, and the session be
    /// cancelled. On for proxies that drop bodies without a length (cloudflared over QUIC).
    pub patch_content_length: bool,
    /// Also decompress already-compressed OCI layers to check their diffIDs against the
    /// config (they are always checked against their digest). Costs an inflate + sha256 of
    /// every layer; docker-archive layers are always checked.
    pub verify_layer_diff_ids: bool,
    pub connect_timeout: Duration,
    pub idle_timeout: Duration,
    /// How long a client may send nothing before its push is dropped (slowloris).
    pub client_idle_timeout: Duration,
    pub retries: u32,
    pub cors_allow_origins: Vec<String>,
    pub limits: Limits,
    /// Who may push where.
    pub auth: crate::auth::AuthConfig,
}

impl Config {
    /// Defaults ← file ← `HOIST_*` env (`__` separates nesting: `HOIST_LIMITS__ENTRIES`) ←
    /// flags.
    pub fn load(file: Option<&Path>, flags: &Flags) -> Result<Config, ConfigError> {
        Ok(source::load(file, flags)?.1)
    }

    /// The effective configuration as TOML, secrets redacted, each value that is not a
    /// default followed by where it came from (for `hoist config`).
    pub fn effective(file: Option<&Path>, flags: &Flags) -> Result<String, ConfigError> {
        let (fig, config) = source::load(file, flags)?;
        let raw: RawConfig = fig.extract().map_err(Box::new)?;
        Ok(source::render(&raw, &fig, &config))
    }

    /// What the registry client is configured with.
    pub fn registry_settings(&self) -> crate::registry::Settings {
        crate::registry::Settings {
            url: self.registry.clone(),
            credentials: self.credentials.clone(),
            ca_file: self.registry_ca_file.clone(),
            tls_verify: self.registry_tls_verify,
            upload_hosts: self.registry_upload_hosts.clone(),
            connect_timeout: self.connect_timeout,
            idle_timeout: self.idle_timeout,
            retries: self.retries,
            chunk_bytes: self.upload_chunk_bytes,
            patch_content_length: self.patch_content_length,
        }
    }
}

impl RawConfig {
    /// Checks every field and converts to typed values.
    pub fn validate(self) -> Result<Config, ConfigError> {
        let listen: SocketAddr = self
            .listen
            .parse()
            .map_err(|e| invalid("listen", format!("{:?}: {e}", self.listen)))?;
        let admin_listen = self.admin_listen(listen)?;
        let registry = self.registry_url()?;
        let credentials = self.credentials(&registry)?;
        self.check_server()?;
        self.check_numbers()?;
        let auth = self
            .auth
            .validate(self.max_concurrent_pushes)
            .map_err(|e| invalid("auth", e))?;
        Ok(Config {
            listen,
            admin_listen,
            log_format: self.log_format,
            drain_timeout: self.drain_timeout,
            header_read_timeout: self.header_read_timeout,
            max_connections: self.max_connections,
            readiness_interval: self.readiness_interval,
            registry,
            credentials,
            registry_ca_file: Some(self.registry_ca_file)
                .filter(|f| !f.is_empty())
                .map(Into::into),
            registry_tls_verify: self.registry_tls_verify,
            registry_upload_hosts: self.registry_upload_hosts,
            staging_repository: self.staging_repository,
            layer_compression: self.layer_compression,
            gzip_level: self.gzip_level,
            zstd_level: self.zstd_level,
            max_concurrent_pushes: self.max_concurrent_pushes,
            max_inflight_blobs: self.max_inflight_blobs,
            upload_chunk_bytes: self.upload_chunk_bytes,
            patch_content_length: self.patch_content_length,
            verify_layer_diff_ids: self.verify_layer_diff_ids,
            connect_timeout: self.connect_timeout,
            idle_timeout: self.idle_timeout,
            client_idle_timeout: self.client_idle_timeout,
            retries: self.retries,
            cors_allow_origins: self.cors_allow_origins,
            limits: self.limits,
            auth,
        })
    }

    fn check_numbers(&self) -> Result<(), ConfigError> {
        if !crate::oci::reference::valid_repository(&self.staging_repository) {
            return Err(invalid(
                "staging_repository",
                format!(
                    "{:?} is not a valid repository name",
                    self.staging_repository
                ),
            ));
        }
        if !(1..=9).contains(&self.gzip_level) {
            return Err(invalid("gzip_level", "must be 1..=9"));
        }
        if !(1..=19).contains(&self.zstd_level) {
            return Err(invalid("zstd_level", "must be 1..=19"));
        }
        if self.max_concurrent_pushes == 0 || self.max_inflight_blobs == 0 {
            return Err(invalid(
                "max_concurrent_pushes",
                "max_concurrent_pushes and max_inflight_blobs must be at least 1",
            ));
        }
        if self.upload_chunk_bytes > 256 << 20 {
            return Err(invalid(
                "upload_chunk_bytes",
                "is held in memory per upload: at most 256 MiB",
            ));
        }
        self.limits.validate().map_err(|e| invalid("limits", e))
    }
}

#[cfg(test)]
mod tests;
