//! What this process has compressed before: uncompressed layer (diffID) → the blob it became.
//! gzip and zstd output is deterministic for the same input, level and library, so when an
//! archive names a layer by its diffID (podman `<diffid>.tar`, Docker 25+ `blobs/sha256/`)
//! and the registry already holds what it compressed to, the layer is only hashed (to verify
//! it), not compressed or sent again. Purely an optimisation: no replica needs another's.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::codec::LayerTransform;
use crate::oci::Digest;

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
}

/// Where this process last saw each blob (digest → repository), so a blob missing from the
/// target can be mounted instead of sent. A stale entry only costs a declined mount.
pub struct Locations {
    map: Mutex<HashMap<Digest, String>>,
    capacity: usize,
}

impl Locations {
    pub fn new(capacity: usize) -> Locations {
        Locations {
            map: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    pub fn get(&self, digest: &Digest) -> Option<String> {
        self.map
            .lock()
            .expect("locations lock")
            .get(digest)
            .cloned()
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
        map.insert(digest, repository.to_string());
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
}
