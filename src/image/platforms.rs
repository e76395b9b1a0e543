//! Choosing platforms: from a multi-platform image, only the platforms asked for, the index
//! rewritten to list them. A platform no image of the archive has is an error that names the
//! ones it does have.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::Value;

use super::{Child, Image, ImageError, Node};

/// Keeps the children of every index whose platform is in `wanted` (`os/arch[/variant]`; a
/// filter without a variant takes every variant). Images that are not indexes are kept.
pub fn select(images: Vec<Image>, wanted: &[String]) -> Result<Vec<Image>, ImageError> {
    if wanted.is_empty() {
        return Ok(images);
    }
    let mut found = vec![false; wanted.len()];
    let mut available = Vec::new();
    let mut out = Vec::new();
    for mut image in images {
        if !image.root.children.is_empty() {
            available.extend(
                image
                    .root
                    .children
                    .iter()
                    .filter_map(|c| c.platform.clone()),
            );
            image.root = Arc::new(filtered(&image.root, wanted, &mut found)?);
        }
        out.push(image);
    }
    if let Some(i) = found.iter().position(|f| !f) {
        available.sort();
        available.dedup();
        return Err(ImageError::PlatformMissing {
            platform: wanted[i].clone(),
            available: available.join(", "),
        });
    }
    Ok(out)
}

/// An index with only the children asked for, its bytes rewritten.
fn filtered(index: &Node, wanted: &[String], found: &mut [bool]) -> Result<Node, ImageError> {
    let mut keep = Vec::new();
    for (i, child) in index.children.iter().enumerate() {
        let Some(platform) = &child.platform else {
            continue;
        };
        let mut hit = false;
        for (w, f) in wanted.iter().zip(found.iter_mut()) {
            if matches(platform, w) {
                (*f, hit) = (true, true);
            }
        }
        if hit {
            keep.push(i);
        }
    }
    let mut v: Value = serde_json::from_slice(&index.bytes)
        .map_err(|e| ImageError::manifest(&index.digest.to_string(), e))?;
    let all = v["manifests"].as_array().cloned().unwrap_or_default();
    v["manifests"] = Value::Array(keep.iter().map(|&i| all[i].clone()).collect());
    let mut node = Node::leaf(
        index.digest.clone(),
        index.media_type.clone(),
        Bytes::new(),
        false,
    );
    node.children = keep
        .iter()
        .map(|&i| index.children[i].clone())
        .collect::<Vec<Child>>();
    node.set_bytes(Bytes::from(serde_json::to_vec(&v).expect("json")));
    Ok(node)
}

/// `linux/arm64/v8` matches `linux/arm64` and `linux/arm64/v8`, not `linux/arm64/v7`.
fn matches(platform: &str, wanted: &str) -> bool {
    platform == wanted
        || platform
            .strip_prefix(wanted)
            .is_some_and(|rest| rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn platforms_match_with_or_without_a_variant() {
        assert!(matches("linux/amd64", "linux/amd64"));
        assert!(matches("linux/arm64/v8", "linux/arm64"));
        assert!(!matches("linux/arm64/v8", "linux/arm64/v7"));
        assert!(!matches("linux/amd64", "linux/amd"));
    }
}
