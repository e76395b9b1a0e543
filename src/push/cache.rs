//! What this process has compressed before: uncompressed layer (diffID) → the blob it became.
//! gzip and zstd output is deterministic for the same input, level and library, so when an
//! archive names a layer by its diffID (podman `<diffid>.tar`, Docker 25+ `blobs/sha256/`)
//! and the registry already holds what it compressed to, the layer is only hashed (to verify
//! it), not compressed or sent again. Purely an optimisation: no replica needs another's.

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::codec::LayerTransform;
use crate::oci::Digest;

/// What a pusher learned about one registry, carried over to a later process (the CLI's
/// cache file). Every entry is a hint the pipeline checks again before relying on it: a
/// layer's bytes still hash to its diffID, a mount source is asked (HEAD) before mounting.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Learned {
    /// Uncompressed layers and the blobs they became.
    pub layers: Vec<LearnedLayer>,
    /// Legacy `docker save` layer names and their diffIDs.
    pub names: Vec<LearnedName>,
    /// Blobs and the repositories holding them, newest first.
    pub blobs: Vec<LearnedBlob>,
}

/// An uncompressed layer (diffID) that `transform` made into `blob`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LearnedLayer {
    pub diff_id: Digest,
    pub transform: LayerTransform,
    pub blob: Digest,
    pub size: u64,
}

/// A legacy layer's name (`<v1 id>/layer.tar`) and its diffID.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LearnedName {
    pub path: String,
    pub diff_id: Digest,
}

/// A blob and the repositories it was last seen in, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LearnedBlob {
    pub digest: Digest,
    pub repositories: Vec<String>,
}

/// A bounded map diffID → (compressed digest, size), and legacy layer name → diffID.
pub struct LayerCache {
    map: Mutex<HashMap<(Digest, LayerTransform), (Digest, u64)>>,
    /// Legacy `docker save` names its layers `<v1 id>/layer.tar`, not by diffID; the v1 id is
    /// itself derived from content, so a name seen before promises the diffID hashed then
    /// (and the bytes are checked against it all the same).
    names: Mutex<HashMap<String, Digest>>,
    capacity: usize,
}

impl LayerCache {
    pub fn new(capacity: usize) -> LayerCache {
        LayerCache {
            map: Mutex::new(HashMap::new()),
            names: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// The diffID a legacy layer of this name had last time.
    pub fn diff_id_named(&self, path: &str) -> Option<Digest> {
        self.names.lock().expect("cache lock").get(path).cloned()
    }

    /// Remembers a legacy layer's diffID under its name.
    pub fn learn_name(&self, path: &str, diff_id: Digest) {
        let mut names = self.names.lock().expect("cache lock");
        if names.len() >= self.capacity {
            names.clear();
        }
        names.insert(path.to_string(), diff_id);
    }

    pub fn get(&self, diff_id: &Digest, transform: LayerTransform) -> Option<(Digest, u64)> {
        self.map
            .lock()
            .expect("cache lock")
            .get(&(diff_id.clone(), transform))
            .cloned()
    }

    pub fn put(&self, diff_id: Digest, transform: LayerTransform, blob: (Digest, u64)) {
        let mut map = self.map.lock().expect("cache lock");
        if map.len() >= self.capacity {
            // Crude but bounded: forget everything rather than track recency.
            map.clear();
        }
        map.insert((diff_id, transform), blob);
    }

    /// Adds what this cache holds to `out`.
    pub fn export(&self, out: &mut Learned) {
        let map = self.map.lock().expect("cache lock");
        out.layers
            .extend(map.iter().map(|((diff_id, t), (blob, size))| LearnedLayer {
                diff_id: diff_id.clone(),
                transform: *t,
                blob: blob.clone(),
                size: *size,
            }));
        let names = self.names.lock().expect("cache lock");
        out.names
            .extend(names.iter().map(|(path, diff_id)| LearnedName {
                path: path.clone(),
                diff_id: diff_id.clone(),
            }));
    }

    /// Takes in what an earlier process learned.
    pub fn import(&self, learned: &Learned) {
        for l in &learned.layers {
            self.put(l.diff_id.clone(), l.transform, (l.blob.clone(), l.size));
        }
        for n in &learned.names {
            self.learn_name(&n.path, n.diff_id.clone());
        }
    }
}

/// Where this process last saw each blob (digest → the last few repositories, newest first),
/// so a blob missing from the target can be mounted instead of sent. A stale entry only costs
/// a declined mount. Several per digest, so a client finds one it may mount from even when
/// another client pushed the same blob elsewhere since.
pub struct Locations {
    map: Mutex<HashMap<Digest, Vec<String>>>,
    capacity: usize,
}

/// Repositories remembered per blob.
const PER_BLOB: usize = 4;

impl Locations {
    pub fn new(capacity: usize) -> Locations {
        Locations {
            map: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// The newest repository holding `digest` that `allowed` accepts.
    pub fn find(&self, digest: &Digest, allowed: impl Fn(&str) -> bool) -> Option<String> {
        let map = self.map.lock().expect("locations lock");
        map.get(digest)?.iter().find(|r| allowed(r)).cloned()
    }

    /// Drops what turned out to be stale (a declined mount).
    pub fn forget(&self, digest: &Digest) {
        self.map.lock().expect("locations lock").remove(digest);
    }

    pub fn put(&self, digest: Digest, repository: &str) {
        let mut map = self.map.lock().expect("locations lock");
        if map.len() >= self.capacity && !map.contains_key(&digest) {
            map.clear();
        }
        let repos = map.entry(digest).or_default();
        repos.retain(|r| r != repository);
        repos.insert(0, repository.to_string());
        repos.truncate(PER_BLOB);
    }

    /// Adds what this map holds to `out`.
    pub fn export(&self, out: &mut Learned) {
        let map = self.map.lock().expect("locations lock");
        out.blobs
            .extend(map.iter().map(|(digest, repos)| LearnedBlob {
                digest: digest.clone(),
                repositories: repos.clone(),
            }));
    }

    /// Takes in what an earlier process learned, keeping each blob's newest first.
    pub fn import(&self, learned: &Learned) {
        for b in &learned.blobs {
            for repo in b.repositories.iter().take(PER_BLOB).rev() {
                self.put(b.digest.clone(), repo);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded() {
        let c = LayerCache::new(2);
        let d = |b: &[u8]| Digest::sha256_of(b);
        c.put(d(b"a"), LayerTransform::Gzip(1), (d(b"A"), 1));
        c.put(d(b"b"), LayerTransform::Gzip(1), (d(b"B"), 1));
        assert_eq!(c.get(&d(b"a"), LayerTransform::Gzip(1)), Some((d(b"A"), 1)));
        assert_eq!(c.get(&d(b"a"), LayerTransform::Gzip(6)), None);
        c.put(d(b"c"), LayerTransform::Zstd(3), (d(b"C"), 1));
        assert_eq!(c.get(&d(b"a"), LayerTransform::Gzip(1)), None);
        assert_eq!(c.map.lock().unwrap().len(), 1);
    }

    #[test]
    fn locations_remember_a_few_repositories_newest_first() {
        let l = Locations::new(10);
        let d = Digest::sha256_of(b"x");
        for r in ["a", "b", "c", "d", "e", "b"] {
            l.put(d.clone(), r);
        }
        assert_eq!(l.find(&d, |_| true).as_deref(), Some("b"));
        assert_eq!(
            l.find(&d, |r| r.starts_with('a')),
            None,
            "only the last four"
        );
        assert_eq!(l.find(&d, |r| r == "c").as_deref(), Some("c"));
        l.forget(&d);
        assert_eq!(l.find(&d, |_| true), None);
    }

    #[test]
    fn what_is_learned_survives_an_export_and_an_import() {
        let d = |b: &[u8]| Digest::sha256_of(b);
        let (cache, locations) = (LayerCache::new(10), Locations::new(10));
        cache.put(d(b"tar"), LayerTransform::Zstd(3), (d(b"zst"), 7));
        cache.learn_name("abc/layer.tar", d(b"tar"));
        for r in ["old", "new"] {
            locations.put(d(b"zst"), r);
        }
        let mut learned = Learned::default();
        cache.export(&mut learned);
        locations.export(&mut learned);
        let text = serde_json::to_string(&learned).unwrap();
        let back: Learned = serde_json::from_str(&text).unwrap();
        assert_eq!(back, learned);
        let (cache, locations) = (LayerCache::new(10), Locations::new(10));
        cache.import(&back);
        locations.import(&back);
        assert_eq!(
            cache.get(&d(b"tar"), LayerTransform::Zstd(3)),
            Some((d(b"zst"), 7))
        );
        assert_eq!(cache.diff_id_named("abc/layer.tar"), Some(d(b"tar")));
        assert_eq!(locations.find(&d(b"zst"), |_| true).as_deref(), Some("new"));
        assert_eq!(
            locations.find(&d(b"zst"), |r| r == "old").as_deref(),
            Some("old")
        );
    }
}
