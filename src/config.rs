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

/// Reads the entry for `registry` from a docker `config.json` (`auths` keyed by host, with or
/// without a scheme). A file without an entry for this registry means anonymous.
pub fn docker_config_credentials(path: &Path, registry: &Url) -> anyhow::Result<Credentials> {
    use base64::Engine;
    #[derive(Deserialize)]
    struct File {
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
    let text =
        std::fs::read(path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    let file: File =
        serde_json::from_slice(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
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
        let raw = base64::engine::general_purpose::STANDARD
            .decode(a.trim())
            .map_err(|_| anyhow::anyhow!("{}: auth for {host} is not base64", path.display()))?;
        let raw = String::from_utf8(raw)
            .map_err(|_| anyhow::anyhow!("{}: auth for {host} is not UTF-8", path.display()))?;
        let (u, p) = raw.split_once(':').ok_or_else(|| {
            anyhow::anyhow!("{}: auth for {host} is not user:password", path.display())
        })?;
        return Ok(Credentials::Basic {
            username: u.to_string(),
            password: Secret(p.to_string()),
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

/// The file/env form. Unknown keys are errors so a typo never silently falls back to a default.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    pub listen: String,
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
}

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            listen: "127.0.0.1:8080".into(),
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
        let loopback = match registry.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d == "localhost",
            None => false,
        };
        if registry.scheme() == "http" && !loopback && !self.registry_allow_http {
            anyhow::bail!(
                "registry {} is plain http and not on loopback: set registry_allow_http = true to allow it",
                self.registry
            );
        }
        let credentials = if !self.registry_username.is_empty() {
            Credentials::Basic {
                username: self.registry_username.clone(),
                password: self.registry_password.clone(),
            }
        } else {
            let file = if !self.registry_auth_file.is_empty() {
                Some(std::path::PathBuf::from(&self.registry_auth_file))
            } else {
                std::env::var_os("DOCKER_CONFIG")
                    .map(|d| std::path::PathBuf::from(d).join("config.json"))
            };
            match file {
                Some(f) => docker_config_credentials(&f, &registry)?,
                None => Credentials::Anonymous,
            }
        };
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
        if self.upload_chunk_bytes > 256 << 20 {
            anyhow::bail!("upload_chunk_bytes is held in memory per upload: at most 256 MiB");
        }
        self.limits.validate()?;
        Ok(Config {
            listen,
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
        let raw = RawConfig {
            registry_password: Secret("hunter2".into()),
            ..RawConfig::default()
        };
        assert!(!format!("{raw:?}").contains("hunter2"));
    }

    #[test]
    fn unknown_keys_are_errors() {
        let fig = Figment::from(Serialized::defaults(RawConfig::default()))
            .merge(Toml::string("listne = \"x\""));
        assert!(fig.extract::<RawConfig>().is_err());
    }

    #[test]
    fn docker_config_json() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("config.json");
        std::fs::write(
            &f,
            r#"{"auths":{"https://reg.example:5000":{"auth":"dXNlcjpwYXNzOndvcmQ="},"other.example":{"identitytoken":"tok"}}}"#,
        )
        .unwrap();
        let c = docker_config_credentials(&f, &Url::parse("https://reg.example:5000").unwrap())
            .unwrap();
        assert_eq!(
            c,
            Credentials::Basic {
                username: "user".into(),
                password: Secret("pass:word".into())
            }
        );
        let c =
            docker_config_credentials(&f, &Url::parse("https://other.example").unwrap()).unwrap();
        assert_eq!(c, Credentials::IdentityToken(Secret("tok".into())));
        let c =
            docker_config_credentials(&f, &Url::parse("https://none.example").unwrap()).unwrap();
        assert_eq!(c, Credentials::Anonymous);
    }

    #[test]
    fn plain_http_needs_loopback_or_opt_in() {
        let raw = RawConfig {
            registry: "http://registry.example:5000".into(),
            ..RawConfig::default()
        };
        assert!(raw.validate().is_err());
        let raw = RawConfig {
            registry: "http://registry.example:5000".into(),
            registry_allow_http: true,
            ..RawConfig::default()
        };
        assert!(raw.validate().is_ok());
        let raw = RawConfig {
            registry: "http://[::1]:5000".into(),
            ..RawConfig::default()
        };
        assert!(raw.validate().is_ok());
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
