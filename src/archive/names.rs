//! What an entry's name (and first bytes) say it is: the layout's metadata files, legacy
//! files nobody references, blobs named by their digest, layers named by their diffID.
//! A name is only a promise: every digest it gives is checked against the content.

use crate::oci::{Digest, LayerEncoding};

/// `manifest.json`, `index.json`, `oci-layout`, `repositories`, at the top or under one folder.
pub fn is_metadata(path: &str) -> bool {
    let (dir, base) = path.rsplit_once('/').unwrap_or(("", path));
    !dir.contains('/')
        && matches!(
            base,
            "manifest.json" | "index.json" | "oci-layout" | "repositories"
        )
}

/// Legacy docker-save per-layer files nobody references: `<id>/json`, `<id>/VERSION`.
pub fn is_legacy_extra(path: &str) -> bool {
    matches!(path.rsplit_once('/'), Some((dir, "json" | "VERSION")) if !dir.contains('/') && dir != "blobs")
}

/// Whether bytes look like JSON (an object), for keeping small documents in memory.
pub fn looks_like_json(head: &[u8]) -> bool {
    head.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

/// `[folder/]blobs/<alg>/<hex>` → its digest.
pub fn blob_digest(path: &str) -> Option<Digest> {
    let mut parts = path.rsplit('/');
    let hex = parts.next()?;
    let alg = parts.next()?;
    if parts.next()? != "blobs" {
        return None;
    }
    if parts.clone().count() > 1 {
        return None;
    }
    Digest::from_parts(alg, hex).ok()
}

/// The diffID an uncompressed layer's name promises: Docker 25+ `blobs/sha256/<diffid>`,
/// podman `<diffid>.tar`.
pub fn diff_id(path: &str, encoding: Option<LayerEncoding>) -> Option<Digest> {
    if encoding != Some(LayerEncoding::Tar) {
        return None;
    }
    blob_digest(path).or_else(|| {
        let hex = path.strip_suffix(".tar").filter(|h| !h.contains('/'))?;
        Digest::from_parts("sha256", hex).ok()
    })
}

/// A legacy `docker save` layer: `<64 hex v1 id>/layer.tar`.
pub fn is_legacy_layer(path: &str) -> bool {
    path.strip_suffix("/layer.tar")
        .is_some_and(|id| id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let hex = "a".repeat(64);
        assert!(blob_digest(&format!("blobs/sha256/{hex}")).is_some());
        assert!(blob_digest(&format!("img/blobs/sha256/{hex}")).is_some());
        assert!(blob_digest(&format!("a/b/blobs/sha256/{hex}")).is_none());
        assert!(blob_digest("blobs/sha256/xyz").is_none());
        assert!(is_metadata("manifest.json"));
        assert!(is_metadata("img/index.json"));
        assert!(!is_metadata("blobs/sha256/index.json"));
        assert!(is_legacy_extra("0123/json"));
        assert!(is_legacy_extra("0123/VERSION"));
        assert!(!is_legacy_extra("0123/layer.tar"));
        assert!(is_legacy_layer(&format!("{hex}/layer.tar")));
        assert!(!is_legacy_layer("0123/layer.tar"));
        let tar = Some(LayerEncoding::Tar);
        assert!(diff_id(&format!("{hex}.tar"), tar).is_some());
        assert!(diff_id(&format!("{hex}.tar"), Some(LayerEncoding::Gzip)).is_none());
        assert!(diff_id("x/layer.tar", tar).is_none());
        assert!(looks_like_json(b"  \n{\"a\":1}"));
        assert!(!looks_like_json(b"[1]"));
    }
}
