//! Where configuration values came from: errors that name the key and its source (the
//! config file by absolute path, the `HOIST_*` variable, the flag), and the effective
//! configuration as `hoist config` prints it, secrets redacted.

use std::path::Path;

use figment::error::Kind;
use figment::providers::{Env, Format, Serialized, Toml};
use figment::{Figment, Source};

use super::{Config, ConfigError, Flags, RawConfig};
use crate::registry::Credentials;
use crate::secret::Secret;

/// The merged figment (kept for provenance) and the validated config.
pub(super) fn load(file: Option<&Path>, flags: &Flags) -> Result<(Figment, Config), ConfigError> {
    let mut fig = Figment::from(Serialized::defaults(RawConfig::default()));
    if let Some(file) = file {
        // Absolute, so errors name the file unambiguously; exact, so figment does not go
        // looking for a file of that name in parent directories.
        let path = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
        if !path.is_file() {
            return Err(ConfigError::Missing(path.display().to_string()));
        }
        fig = fig.merge(Toml::file_exact(path));
    }
    let fig = fig
        .merge(Env::prefixed("HOIST_").split("__"))
        .merge(Serialized::defaults(flags));
    let raw: RawConfig = fig.extract().map_err(Box::new)?;
    let config = raw.validate().map_err(|e| locate(e, &fig))?;
    Ok((fig, config))
}

impl From<Box<figment::Error>> for ConfigError {
    fn from(e: Box<figment::Error>) -> ConfigError {
        ConfigError::Load(e)
    }
}

/// One line per problem figment found: `config file /abs/hoist.toml: unknown key
/// "bogus_key" (did you mean ...?)`.
pub(super) fn describe(error: &figment::Error) -> String {
    error
        .clone()
        .into_iter()
        .map(|e| {
            let origin = e
                .metadata
                .as_ref()
                .map(|md| origin_of(md, &e.path))
                .unwrap_or_else(|| "configuration".into());
            let what = match &e.kind {
                Kind::UnknownField(field, expected) => {
                    let parent = parent(&e.path, field);
                    let key = key_path(parent, field);
                    match closest(field, expected) {
                        Some(hint) => format!(
                            "unknown key {key:?} (did you mean {:?}?)",
                            key_path(parent, hint)
                        ),
                        None => format!("unknown key {key:?}"),
                    }
                }
                kind => format!("{}: {kind}", e.path.join(".")),
            };
            format!("{origin}: {what}")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A validation error, prefixed with where the offending key's value came from.
pub(super) fn locate(error: ConfigError, fig: &Figment) -> ConfigError {
    let ConfigError::Invalid { key, .. } = &error else {
        return error;
    };
    match fig.find_metadata(key) {
        Some(md) if !is_default(md) => ConfigError::From {
            origin: origin_of(md, &key.split('.').map(String::from).collect::<Vec<_>>()),
            error: Box::new(error),
        },
        _ => error,
    }
}

fn is_default(md: &figment::Metadata) -> bool {
    md.name.contains("RawConfig")
}

/// `config file /etc/hoist/hoist.toml`, `environment variable HOIST_LISTEN`, `flag --listen`.
fn origin_of(md: &figment::Metadata, path: &[String]) -> String {
    if let Some(Source::File(file)) = &md.source {
        return format!("config file {}", file.display());
    }
    if md.name.contains("environment") {
        // As `Env::prefixed("HOIST_").split("__")` reads it.
        let name = path.join("__").to_uppercase();
        return format!("environment variable HOIST_{name}");
    }
    if md.name.contains("Flags") {
        return format!("flag --{}", path.join(".").replace('_', "-"));
    }
    if is_default(md) {
        return "default".into();
    }
    md.name.to_string()
}

/// The table an unknown key is in (figment's path may or may not end with the key).
fn parent<'a>(path: &'a [String], field: &str) -> &'a [String] {
    match path.split_last() {
        Some((last, rest)) if last == field => rest,
        _ => path,
    }
}

/// `limits.entriez` for a nested key, `bogus_key` at the top.
fn key_path(parent: &[String], field: &str) -> String {
    let mut parts: Vec<&str> = parent.iter().map(String::as_str).collect();
    parts.push(field);
    parts.join(".")
}

/// The known key a typo most likely meant (at most 2 edits away).
fn closest<'a>(field: &str, expected: &[&'a str]) -> Option<&'a str> {
    expected
        .iter()
        .map(|k| (edit_distance(field, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// The effective configuration as TOML; `registry_password` redacted; every value that is
/// not a default annotated with its origin.
pub(super) fn render(raw: &RawConfig, fig: &Figment, config: &Config) -> String {
    let mut shown = raw.clone();
    if !shown.registry_password.0.is_empty() {
        shown.registry_password = Secret("<redacted>".into());
    }
    let toml = toml::to_string(&shown).unwrap_or_else(|e| format!("# cannot render: {e}\n"));
    let mut out = String::from(
        "# hoist's effective configuration: defaults < config file < HOIST_* environment < flags.\n",
    );
    out.push_str(&format!(
        "# registry credentials: {}\n",
        credentials(&config.credentials)
    ));
    let mut section = String::new();
    for line in toml.lines() {
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = format!("{name}.");
        }
        out.push_str(line);
        if let Some((key, _)) = line.split_once(" = ") {
            let key = format!("{section}{}", key.trim());
            if let Some(md) = fig.find_metadata(&key).filter(|md| !is_default(md)) {
                let path: Vec<String> = key.split('.').map(String::from).collect();
                out.push_str(&format!("  # {}", origin_of(md, &path)));
            }
        }
        out.push('\n');
    }
    out
}

/// What kind of credentials hoist will use, never their value.
fn credentials(c: &Credentials) -> String {
    match c {
        Credentials::Anonymous => "none (anonymous)".into(),
        Credentials::Basic { username, .. } => format!("username {username:?}, password set"),
        Credentials::IdentityToken(_) => "identity token from a docker config.json".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_get_a_hint() {
        assert_eq!(closest("listne", &["listen", "registry"]), Some("listen"));
        assert_eq!(closest("bogus_key", &["listen", "registry"]), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn nested_keys_are_named_in_full() {
        let path = ["limits".to_string(), "entriez".to_string()];
        assert_eq!(
            key_path(parent(&path, "entriez"), "entriez"),
            "limits.entriez"
        );
        assert_eq!(
            key_path(parent(&path[..1], "entriez"), "entriez"),
            "limits.entriez"
        );
        assert_eq!(key_path(&[], "bogus_key"), "bogus_key");
    }
}
