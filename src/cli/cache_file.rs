//! What `hoist push` remembers between runs, so that a fresh process mounts a blob the
//! registry holds in another repository instead of sending it again, as the server does
//! with its in-process map: for each registry (by URL), the blobs it was seen in and the
//! compressed form of each uncompressed layer (`push::Learned`).
//!
//! One JSON file, `$XDG_CACHE_HOME/hoist/locations.json` (else `~/.cache/hoist/`), read at
//! the start and replaced atomically (write, then rename) at the end. Bounded: the most
//! recently used `MAX_REGISTRIES` registries, `MAX_ENTRIES` of each kind per registry, the
//! ones this push used first. Only hints: a corrupt or foreign file is ignored with a
//! warning, and the pipeline asks the registry before relying on an entry. Two pushes
//! ending at once: the last one's view wins, which costs at most an upload later.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::io::Write;
use std::path::{Path, PathBuf};

use hoist::oci::Digest;
use hoist::push::Learned;
use serde::{Deserialize, Serialize};

/// The file's name in its directory.
const FILE: &str = "locations.json";
/// Bumped when the format changes; a file of another version is ignored.
const VERSION: u32 = 1;
/// Registries remembered.
const MAX_REGISTRIES: usize = 8;
/// Blobs, layers and legacy names remembered per registry (about 150 bytes each).
const MAX_ENTRIES: usize = 5_000;

#[derive(Serialize, Deserialize)]
struct Contents {
    version: u32,
    /// Most recently used first.
    registries: Vec<Section>,
}

#[derive(Serialize, Deserialize)]
struct Section {
    registry: String,
    #[serde(flatten)]
    learned: Learned,
}

/// The cache file, and what it held for one registry when it was opened.
pub struct CacheFile {
    path: PathBuf,
    registry: String,
    loaded: Learned,
}

impl CacheFile {
    /// `$XDG_CACHE_HOME/hoist/locations.json`, else `$HOME/.cache/hoist/locations.json`.
    pub fn default_path() -> Option<PathBuf> {
        let absolute = |v: std::ffi::OsString| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
        let dir = std::env::var_os("XDG_CACHE_HOME")
            .and_then(absolute)
            .or_else(|| {
                std::env::var_os("HOME")
                    .and_then(absolute)
                    .map(|h| h.join(".cache"))
            })?;
        Some(dir.join("hoist").join(FILE))
    }

    /// Reads what the file holds for `registry`; a missing file holds nothing, and an
    /// unreadable one is ignored with a warning on stderr.
    pub fn open(path: PathBuf, registry: &str) -> CacheFile {
        let loaded = match read(&path) {
            Ok(contents) => contents
                .registries
                .into_iter()
                .find(|s| s.registry == registry)
                .map(|s| s.learned)
                .unwrap_or_default(),
            Err(e) => {
                eprintln!("hoist: warning: ignoring the cache {}: {e}", path.display());
                Learned::default()
            }
        };
        CacheFile {
            path,
            registry: registry.to_string(),
            loaded,
        }
    }

    /// What the file held for this registry.
    pub fn learned(&self) -> &Learned {
        &self.loaded
    }

    /// Replaces this registry's entry with `learned`, keeping the blobs in `used` and
    /// whatever is new first, then the rest in their old order, up to the bounds.
    pub fn save(&self, learned: Learned, used: &HashSet<Digest>) -> std::io::Result<()> {
        let learned = newest_first(learned, &self.loaded, used);
        // Read again: another push may have written other registries since.
        let mut registries = read(&self.path).map(|c| c.registries).unwrap_or_default();
        registries.retain(|s| s.registry != self.registry);
        registries.insert(
            0,
            Section {
                registry: self.registry.clone(),
                learned,
            },
        );
        registries.truncate(MAX_REGISTRIES);
        let contents = Contents {
            version: VERSION,
            registries,
        };
        write_atomically(&self.path, &serde_json::to_vec(&contents)?)
    }
}

/// The file's contents; a missing file is empty.
fn read(path: &Path) -> Result<Contents, String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(Contents {
                version: VERSION,
                registries: Vec::new(),
            });
        }
        Err(e) => return Err(e.to_string()),
    };
    let contents: Contents = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
    if contents.version != VERSION {
        return Err(format!("version {} is not {VERSION}", contents.version));
    }
    Ok(contents)
}

/// Writes a sibling file, then renames it over `path`: a reader sees the old file or the
/// new one, never half of one. Private to its owner: it names the repositories pushed to.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    let tmp = dir.join(format!(".{FILE}.{}", std::process::id()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let result = (|| {
        let mut file = options.open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Orders each list most recently used first and bounds it: entries this push used or
/// learned, then the others in the order the file had them (itself most recent first).
fn newest_first(mut learned: Learned, before: &Learned, used: &HashSet<Digest>) -> Learned {
    let by_blob = |d: &Digest| used.contains(d);
    recent_first(
        &mut learned.blobs,
        &before.blobs,
        |b| b.digest.clone(),
        by_blob,
    );
    recent_first(
        &mut learned.layers,
        &before.layers,
        |l| l.blob.clone(),
        by_blob,
    );
    recent_first(
        &mut learned.names,
        &before.names,
        |n| n.path.clone(),
        |_| false,
    );
    learned
}

fn recent_first<T, K: Hash + Eq>(
    items: &mut Vec<T>,
    before: &[T],
    key: impl Fn(&T) -> K,
    used: impl Fn(&K) -> bool,
) {
    let position: HashMap<K, usize> = before
        .iter()
        .enumerate()
        .map(|(i, t)| (key(t), i))
        .collect();
    items.sort_by_key(|t| {
        let k = key(t);
        match position.get(&k) {
            Some(i) if !used(&k) => i + 1,
            _ => 0,
        }
    });
    items.truncate(MAX_ENTRIES);
}

#[cfg(test)]
mod tests {
    use super::*;
    use hoist::push::LearnedBlob;

    fn blob(seed: &str, repo: &str) -> LearnedBlob {
        LearnedBlob {
            digest: Digest::sha256_of(seed.as_bytes()),
            repositories: vec![repo.to_string()],
        }
    }

    fn learned(blobs: &[LearnedBlob]) -> Learned {
        Learned {
            blobs: blobs.to_vec(),
            ..Learned::default()
        }
    }

    #[test]
    fn saved_per_registry_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nested/hoist").join(FILE);
        let a = CacheFile::open(path.clone(), "http://a/");
        assert_eq!(a.learned(), &Learned::default(), "no file: nothing");
        a.save(learned(&[blob("x", "team/x")]), &HashSet::new())
            .unwrap();
        let b = CacheFile::open(path.clone(), "http://b/");
        assert_eq!(b.learned(), &Learned::default(), "another registry's entry");
        b.save(learned(&[blob("y", "team/y")]), &HashSet::new())
            .unwrap();
        let a = CacheFile::open(path.clone(), "http://a/");
        assert_eq!(a.learned(), &learned(&[blob("x", "team/x")]));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file left: {names:?}");
    }

    #[test]
    fn a_corrupt_or_foreign_file_is_ignored_and_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        for junk in ["{not json", r#"{"version": 99, "registries": []}"#] {
            std::fs::write(&path, junk).unwrap();
            let c = CacheFile::open(path.clone(), "http://a/");
            assert_eq!(c.learned(), &Learned::default());
            c.save(learned(&[blob("x", "r")]), &HashSet::new()).unwrap();
            let again = CacheFile::open(path.clone(), "http://a/");
            assert_eq!(again.learned().blobs.len(), 1);
        }
    }

    #[test]
    fn used_and_new_entries_come_first_and_the_oldest_go() {
        let old: Vec<LearnedBlob> = (0..MAX_ENTRIES)
            .map(|i| blob(&i.to_string(), "r"))
            .collect();
        let before = learned(&old);
        let mut now = old.clone();
        now.reverse();
        now.push(blob("new", "r"));
        let used = HashSet::from([old[MAX_ENTRIES - 1].digest.clone()]);
        let out = newest_first(learned(&now), &before, &used);
        assert_eq!(out.blobs.len(), MAX_ENTRIES);
        let first: HashSet<_> = out.blobs[..2].iter().map(|b| b.digest.clone()).collect();
        assert!(first.contains(&blob("new", "r").digest));
        assert!(first.contains(&old[MAX_ENTRIES - 1].digest));
        assert_eq!(out.blobs[2], old[0], "then the file's order");
        assert!(
            !out.blobs
                .iter()
                .any(|b| b.digest == old[MAX_ENTRIES - 2].digest),
            "the least recent one went"
        );
    }

    #[test]
    fn at_most_a_few_registries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(FILE);
        for i in 0..MAX_REGISTRIES + 2 {
            let c = CacheFile::open(path.clone(), &format!("http://r{i}/"));
            c.save(learned(&[blob("x", "r")]), &HashSet::new()).unwrap();
        }
        let contents = read(&path).unwrap();
        assert_eq!(contents.registries.len(), MAX_REGISTRIES);
        assert_eq!(
            contents.registries[0].registry,
            format!("http://r{}/", MAX_REGISTRIES + 1)
        );
        assert!(
            CacheFile::open(path, "http://r0/")
                .learned()
                .blobs
                .is_empty()
        );
    }
}
