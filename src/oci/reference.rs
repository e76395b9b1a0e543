//! Repository names, tags and the image names archives carry (`RepoTags`, OCI ref names),
//! validated with the OCI distribution grammar before they reach a URL.

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`, ≤ 255 bytes.
pub fn valid_repository(name: &str) -> bool {
    !name.is_empty() && name.len() <= 255 && name.split('/').all(valid_component)
}

/// One `/`-separated component of a repository name.
pub fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    if b.is_empty() || !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if is_alnum(b[i]) {
            i += 1;
            continue;
        }
        // a separator run: ".", "_", "__" or "-+"
        let start = i;
        while i < b.len() && !is_alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
pub fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.' || c == b'-')
}

/// An image name from an archive, split into repository and tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageName {
    /// `None` when the archive gave only a tag (skopeo's `oci-archive:x.tar:v1`).
    pub repository: Option<String>,
    pub tag: Option<String>,
}

/// Why an archive name is not usable.
#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not a valid image name")]
pub struct NameError(pub String);

/// Parses `[host[:port]/]repo[:tag][@digest]` or a bare tag. A registry host (first component
/// with a `.` or `:`, or `localhost`) is dropped: the backend is hoist's, not the archive's.
pub fn parse_image_name(name: &str) -> Result<ImageName, NameError> {
    let err = || NameError(name.chars().take(300).collect());
    let name = name.split_once('@').map(|(n, _)| n).unwrap_or(name);
    if name.is_empty() {
        return Err(err());
    }
    let (path, tag) = match name.rfind(':') {
        Some(i) if !name[i + 1..].contains('/') => (&name[..i], Some(&name[i + 1..])),
        _ => (name, None),
    };
    let path = match path.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            rest
        }
        _ => path,
    };
    if !valid_repository(path) || tag.is_some_and(|t| !valid_tag(t)) {
        return Err(err());
    }
    Ok(ImageName {
        repository: Some(path.to_string()),
        tag: tag.map(String::from),
    })
}

/// An OCI `org.opencontainers.image.ref.name`: a bare tag (`v1`, as skopeo and Docker 25+
/// write it) or a full name.
pub fn parse_ref_name(name: &str) -> Result<ImageName, NameError> {
    if !name.contains('/') && !name.contains(':') && !name.contains('@') {
        if valid_tag(name) {
            return Ok(ImageName {
                repository: None,
                tag: Some(name.to_string()),
            });
        }
        return Err(NameError(name.chars().take(300).collect()));
    }
    parse_image_name(name)
}

/// The part of a `/push/...` URL path after `/push/`: `repo[/more]:tag` or `repo`.
pub fn parse_target(spec: &str) -> Result<(String, Option<String>), NameError> {
    let err = || NameError(spec.chars().take(300).collect());
    let (repo, tag) = match spec.rsplit_once(':') {
        Some((r, t)) => (r, Some(t)),
        None => (spec, None),
    };
    if !valid_repository(repo) || tag.is_some_and(|t| !valid_tag(t)) {
        return Err(err());
    }
    Ok((repo.to_string(), tag.map(String::from)))
}

/// `os/architecture[/variant]`, each part lowercase letters, digits, `.`, `_` or `-`
/// (`linux/amd64`, `linux/arm64/v8`, `windows/amd64`).
pub fn valid_platform(p: &str) -> bool {
    let parts: Vec<&str> = p.split('/').collect();
    (2..=3).contains(&parts.len())
        && parts.iter().all(|part| {
            !part.is_empty()
                && part.len() <= 64
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_grammar() {
        for ok in ["a", "team/app", "a.b_c__d-e---f/g9", "0/1/2"] {
            assert!(valid_repository(ok), "{ok}");
        }
        for bad in [
            "", "UPPER", "a//b", "-a", "a-", "a...b", "a___b", "/a", "a/", "a b",
        ] {
            assert!(!valid_repository(bad), "{bad}");
        }
    }

    #[test]
    fn tag_grammar() {
        assert!(valid_tag("v1.0_rc-2"));
        assert!(valid_tag("_x"));
        assert!(!valid_tag("-bad"));
        assert!(!valid_tag(".bad"));
        assert!(!valid_tag(&"a".repeat(129)));
    }

    #[test]
    fn archive_names() {
        let n = parse_image_name("docker.io/library/app:1.0").unwrap();
        assert_eq!(n.repository.as_deref(), Some("library/app"));
        assert_eq!(n.tag.as_deref(), Some("1.0"));
        let n = parse_image_name("localhost:5000/team/app").unwrap();
        assert_eq!(n.repository.as_deref(), Some("team/app"));
        assert_eq!(n.tag, None);
        let n = parse_image_name("fixture/app:v1").unwrap();
        assert_eq!(n.repository.as_deref(), Some("fixture/app"));
        let n = parse_ref_name("V1").unwrap();
        assert_eq!(
            n,
            ImageName {
                repository: None,
                tag: Some("V1".into())
            }
        );
        let n = parse_ref_name("docker.io/fixture/d25:v1").unwrap();
        assert_eq!(n.repository.as_deref(), Some("fixture/d25"));
        assert!(parse_image_name("Bad/Name:x").is_err());
        assert!(parse_image_name("app:-x").is_err());
    }

    #[test]
    fn url_targets() {
        assert_eq!(
            parse_target("team/app:1").unwrap(),
            ("team/app".into(), Some("1".into()))
        );
        assert_eq!(parse_target("team/app").unwrap(), ("team/app".into(), None));
        assert!(parse_target("UPPER/x:t").is_err());
        assert!(parse_target("x:-bad").is_err());
    }
}
