//! Entry-name hygiene. Names are compared after normalisation, as ggcr and skopeo do
//! (`./manifest.json` and `manifest.json` are the same file), so a duplicate cannot hide
//! behind a `./`.

/// Normalises an entry name: strips `./` and empty components, refuses what could escape
/// or confuse (absolute paths, `..`, backslashes, NUL, non-UTF-8, over-long names).
pub fn normalize(raw: &[u8], max_len: usize) -> Result<String, &'static str> {
    if raw.len() > max_len {
        return Err("name is too long");
    }
    let s = std::str::from_utf8(raw).map_err(|_| "name is not UTF-8")?;
    if s.contains('\0') {
        return Err("name contains NUL");
    }
    if s.contains('\\') {
        return Err("name contains a backslash");
    }
    if s.starts_with('/') {
        return Err("name is absolute");
    }
    let mut parts = Vec::new();
    for c in s.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err("name contains '..'"),
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

/// Resolves a symlink target relative to the link's directory. `None` when it is absolute or
/// climbs out of the archive.
pub fn resolve_link(link_path: &str, target: &str) -> Option<String> {
    if target.starts_with('/') || target.contains('\\') || target.contains('\0') {
        return None;
    }
    let mut parts: Vec<&str> = link_path.split('/').collect();
    parts.pop();
    for c in target.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            c => parts.push(c),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// Normalises a hardlink target (relative to the archive root in tar).
pub fn normalize_hardlink(target: &str, max_len: usize) -> Option<String> {
    normalize(target.as_bytes(), max_len)
        .ok()
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes() {
        assert_eq!(normalize(b"./manifest.json", 100).unwrap(), "manifest.json");
        assert_eq!(normalize(b"a//b/./c/", 100).unwrap(), "a/b/c");
        assert_eq!(normalize(b"./", 100).unwrap(), "");
        assert!(normalize(b"/etc/passwd", 100).is_err());
        assert!(normalize(b"a/../../x", 100).is_err());
        assert!(normalize(b"..", 100).is_err());
        assert!(normalize(b"a\\b", 100).is_err());
        assert!(normalize(b"\xff\xfe", 100).is_err());
        assert!(normalize(&[b'a'; 200], 100).is_err());
    }

    #[test]
    fn links() {
        assert_eq!(
            resolve_link("abc/layer.tar", "../def/layer.tar").as_deref(),
            Some("def/layer.tar")
        );
        assert_eq!(
            resolve_link("abc/layer.tar", "../ff.tar").as_deref(),
            Some("ff.tar")
        );
        assert_eq!(resolve_link("abc/layer.tar", "../../etc/passwd"), None);
        assert_eq!(resolve_link("abc/layer.tar", "/etc/passwd"), None);
        assert_eq!(resolve_link("x", "./y").as_deref(), Some("y"));
    }
}
