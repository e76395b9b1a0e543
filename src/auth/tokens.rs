//! API tokens: a TOML file of `[[token]]` entries (`name`, `sha256`, `repositories`). The
//! file holds only SHA-256 digests, so reading it (or a backup of it) gives no one a token.
//! It is re-read when it changes (checked at most once a second, and on SIGHUP); a file that
//! no longer parses leaves the last good table in force and is logged.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use figment::Figment;
use figment::providers::{Format, Toml};
use serde::Deserialize;

use super::client::Client;
use super::scope::Scopes;
use crate::secret::Secret;

/// Prefix of tokens `hoist token` makes, so secret scanners can spot a leaked one.
pub const PREFIX: &str = "hoist_";
/// A tokens file larger than this is refused (it is read on every change).
const MAX_FILE: u64 = 1 << 20;
/// How often a request may cause the file's metadata to be checked.
const CHECK_EVERY: Duration = Duration::from_secs(1);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    token: Vec<RawEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    name: String,
    sha256: String,
    repositories: Vec<String>,
}

struct Entry {
    name: String,
    sha256: [u8; 32],
    scopes: Scopes,
}

/// Why a tokens file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokensError {
    /// The file could not be read.
    #[error("tokens file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a valid tokens file.
    #[error("tokens file {path}: {detail}")]
    Invalid {
        /// The file.
        path: String,
        /// What is wrong (never a token: the file holds none).
        detail: String,
    },
}

/// The parsed file: who each digest belongs to.
pub struct Table(Vec<Entry>);

impl Table {
    /// Parses a tokens file's text.
    pub fn parse(text: &str, path: &str) -> Result<Table, TokensError> {
        let invalid = |detail: String| TokensError::Invalid {
            path: path.to_string(),
            detail,
        };
        let file: File = Figment::from(Toml::string(text))
            .extract()
            .map_err(|e| invalid(e.to_string()))?;
        let mut entries: Vec<Entry> = Vec::new();
        for (i, raw) in file.token.into_iter().enumerate() {
            let at = format!("token #{} ({:?})", i + 1, raw.name);
            if raw.name.trim().is_empty() || entries.iter().any(|e| e.name == raw.name) {
                return Err(invalid(format!("{at}: names must be non-empty and unique")));
            }
            let mut sha256 = [0u8; 32];
            hex::decode_to_slice(raw.sha256.trim(), &mut sha256).map_err(|_| {
                invalid(format!(
                    "{at}: sha256 must be 64 hex digits (the token's digest, never the token)"
                ))
            })?;
            if raw.repositories.is_empty() {
                return Err(invalid(format!(
                    "{at}: repositories must list at least one glob"
                )));
            }
            let scopes =
                Scopes::parse(&raw.repositories).map_err(|e| invalid(format!("{at}: {e}")))?;
            entries.push(Entry {
                name: raw.name,
                sha256,
                scopes,
            });
        }
        Ok(Table(entries))
    }

    /// The client a token belongs to. Every entry is compared in constant time, so timing
    /// says nothing about which digest (or how much of one) a guess matched.
    pub fn lookup(&self, token: &str) -> Option<Client> {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
        let mut found = None;
        for e in &self.0 {
            let equal =
                aws_lc_rs::constant_time::verify_slices_are_equal(digest.as_ref(), &e.sha256)
                    .is_ok();
            if equal && found.is_none() {
                found = Some(e);
            }
        }
        found.map(|e| Client {
            name: e.name.clone(),
            scopes: e.scopes.clone(),
            registry: None,
            anonymous: false,
        })
    }

    /// How many tokens the file lists.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the file lists none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What identifies one version of the file on disk.
#[derive(Clone, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp(path: &Path) -> std::io::Result<Stamp> {
    let m = std::fs::metadata(path)?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&m);
    #[cfg(not(unix))]
    let inode = 0;
    Ok(Stamp {
        modified: m.modified().ok(),
        len: m.len(),
        inode,
    })
}

/// The tokens file, kept current.
pub struct Store {
    path: PathBuf,
    table: RwLock<Arc<Table>>,
    seen: Mutex<(Stamp, Instant)>,
}

impl Store {
    /// Reads the file; at start an unreadable or invalid file is an error.
    pub fn open(path: &Path) -> Result<Store, TokensError> {
        let (table, stamp) = read(path)?;
        Ok(Store {
            path: path.to_path_buf(),
            table: RwLock::new(Arc::new(table)),
            seen: Mutex::new((stamp, Instant::now())),
        })
    }

    /// The client for `token`, after re-reading the file if it changed.
    pub fn lookup(&self, token: &str) -> Option<Client> {
        self.refresh(false);
        self.table.read().expect("tokens lock").lookup(token)
    }

    /// Re-reads the file if it changed (`force`: whatever its metadata says, as on SIGHUP).
    /// Without `force`, the metadata is looked at no more than once a second.
    pub fn refresh(&self, force: bool) {
        {
            let mut seen = self.seen.lock().expect("tokens lock");
            if !force && seen.1.elapsed() < CHECK_EVERY {
                return;
            }
            seen.1 = Instant::now();
            let now = stamp(&self.path).ok();
            if !force && now.as_ref() == Some(&seen.0) {
                return;
            }
        }
        match read(&self.path) {
            Ok((table, new_stamp)) => {
                tracing::info!(path = %self.path.display(), tokens = table.len(), "tokens file re-read");
                *self.table.write().expect("tokens lock") = Arc::new(table);
                self.seen.lock().expect("tokens lock").0 = new_stamp;
            }
            Err(e) => {
                tracing::error!(error = %e, "tokens file not re-read; the last good one stays in force");
            }
        }
    }

    /// Re-reads the file on SIGHUP, for as long as the runtime runs.
    pub fn reload_on_sighup(self: &Arc<Self>) {
        #[cfg(unix)]
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let store = Arc::downgrade(self);
            handle.spawn(async move {
                use tokio::signal::unix::{SignalKind, signal};
                let Ok(mut hup) = signal(SignalKind::hangup()) else {
                    return;
                };
                while hup.recv().await.is_some() {
                    let Some(store) = store.upgrade() else { return };
                    store.refresh(true);
                }
            });
        }
    }
}

fn read(path: &Path) -> Result<(Table, Stamp), TokensError> {
    let shown = path.display().to_string();
    let io = |source| TokensError::Read {
        path: shown.clone(),
        source,
    };
    let before = stamp(path).map_err(io)?;
    if before.len > MAX_FILE {
        return Err(TokensError::Invalid {
            path: shown,
            detail: format!("larger than {MAX_FILE} bytes"),
        });
    }
    let text = std::fs::read_to_string(path).map_err(io)?;
    Ok((Table::parse(&text, &shown)?, before))
}

/// A freshly made token and what to paste into the tokens file.
pub struct NewToken {
    /// The token to hand to the client (shown once, stored nowhere).
    pub token: Secret,
    /// The `[[token]]` entry holding its digest.
    pub entry: String,
}

/// Makes a token: 32 bytes from the operating system's CSPRNG (via aws-lc), base64url,
/// behind the `hoist_` prefix; and its tokens-file entry.
pub fn generate(name: &str, repositories: &[String]) -> Result<NewToken, TokensError> {
    let invalid = |detail: String| TokensError::Invalid {
        path: "(new token)".into(),
        detail,
    };
    Scopes::parse(repositories).map_err(|e| invalid(e.to_string()))?;
    if name.trim().is_empty() {
        return Err(invalid("the name must not be empty".into()));
    }
    let mut raw = [0u8; 32];
    aws_lc_rs::rand::fill(&mut raw).map_err(|_| invalid("no randomness available".into()))?;
    let token = format!(
        "{PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
    );
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
    let quoted: Vec<String> = repositories.iter().map(|r| toml_string(r)).collect();
    let entry = format!(
        "[[token]]\nname = {}\nsha256 = \"{}\"\nrepositories = [{}]\n",
        toml_string(name),
        hex::encode(digest.as_ref()),
        quoted.join(", ")
    );
    Ok(NewToken {
        token: Secret(token),
        entry,
    })
}

/// A TOML basic string (JSON string escapes are valid TOML).
fn toml_string(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialise")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_round_trip_through_the_file() {
        let new = generate("ci-team-a", &["team-a/**".into(), "shared/base".into()]).unwrap();
        assert!(new.token.0.starts_with(PREFIX));
        assert!(
            new.token.0.len() >= PREFIX.len() + 43,
            "32 bytes of entropy"
        );
        assert!(
            !new.entry.contains(&new.token.0),
            "the entry holds only the digest"
        );
        let table = Table::parse(&new.entry, "t.toml").unwrap();
        let client = table.lookup(&new.token.0).unwrap();
        assert_eq!(client.name, "ci-team-a");
        assert!(client.may_push("team-a/app"));
        assert!(client.may_push("shared/base"));
        assert!(!client.may_push("prod/app"));
        assert!(table.lookup("hoist_wrong").is_none());
        assert!(table.lookup("").is_none());
        let other = generate("x", &["x".into()]).unwrap();
        assert_ne!(other.token.0, new.token.0);
        assert!(generate("x", &["Bad/**".into()]).is_err());
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        let bad = [
            (
                "[[token]]\nname=\"a\"\nsha256=\"00\"\nrepositories=[\"a\"]",
                "64 hex",
            ),
            (
                &format!(
                    "[[token]]\nname=\"a\"\nsha256=\"{}\"\nrepositories=[]",
                    "0".repeat(64)
                ),
                "at least one",
            ),
            (
                &format!(
                    "[[token]]\nname=\"a\"\nsha256=\"{}\"\nrepositories=[\"A/**\"]",
                    "0".repeat(64)
                ),
                "not a repository glob",
            ),
            (
                &format!(
                    "[[token]]\nname=\"a\"\ntoken=\"hoist_x\"\nsha256=\"{}\"\nrepositories=[\"a\"]",
                    "0".repeat(64)
                ),
                "unknown field",
            ),
            (
                &format!(
                    "[[token]]\nname=\"a\"\nsha256=\"{z}\"\nrepositories=[\"a\"]\n[[token]]\nname=\"a\"\nsha256=\"{z}\"\nrepositories=[\"b\"]",
                    z = "0".repeat(64)
                ),
                "unique",
            ),
        ];
        for (text, why) in bad {
            let err = Table::parse(text, "t.toml").err().expect(why).to_string();
            assert!(err.contains(why), "{err}");
        }
    }

    #[test]
    fn store_rereads_a_changed_file_and_keeps_the_last_good_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.toml");
        let a = generate("a", &["a/**".into()]).unwrap();
        let b = generate("b", &["b/**".into()]).unwrap();
        std::fs::write(&path, &a.entry).unwrap();
        let store = Store::open(&path).unwrap();
        assert_eq!(store.lookup(&a.token.0).unwrap().name, "a");
        assert!(store.lookup(&b.token.0).is_none());
        std::fs::write(&path, &b.entry).unwrap();
        store.refresh(true);
        assert!(
            store.lookup(&a.token.0).is_none(),
            "a revoked token stops working"
        );
        assert_eq!(store.lookup(&b.token.0).unwrap().name, "b");
        // Without SIGHUP: a changed file is noticed by the next request a second later.
        std::thread::sleep(CHECK_EVERY + Duration::from_millis(100));
        std::fs::write(&path, &a.entry).unwrap();
        assert_eq!(store.lookup(&a.token.0).unwrap().name, "a");
        std::fs::write(&path, &b.entry).unwrap();
        store.refresh(true);
        std::fs::write(&path, "this is not toml [[").unwrap();
        store.refresh(true);
        assert_eq!(store.lookup(&b.token.0).unwrap().name, "b");
    }
}
