//! Repository scopes: globs over repository names. `*` matches within one path segment
//! (`*/cache`, `team-*/app`), a trailing `/**` matches one or more further segments
//! (`team-a/**`), and `**` alone matches every repository. Patterns are checked against the
//! OCI repository grammar when they are read, and a name is matched only if it is itself a
//! valid repository name, so no odd spelling (`team-a/../prod`, `Team-A/x`) slips through.

use crate::oci::reference::{valid_component, valid_repository};

/// One repository glob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// Segments before a trailing `**`; each may hold `*`.
    segments: Vec<String>,
    /// Ends in `/**` (or is `**`): matches one or more further segments.
    deep: bool,
    text: String,
}

/// Why a pattern is not a repository glob.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{pattern:?} is not a repository glob: {reason}")]
pub struct ScopeError {
    /// The pattern as written.
    pub pattern: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl Scope {
    /// Parses a glob; every literal segment must be a valid repository path component.
    pub fn parse(pattern: &str) -> Result<Scope, ScopeError> {
        let err = |reason| ScopeError {
            pattern: pattern.chars().take(300).collect(),
            reason,
        };
        if pattern.is_empty() || pattern.len() > 255 {
            return Err(err("must be 1 to 255 bytes"));
        }
        let mut segments: Vec<String> = pattern.split('/').map(String::from).collect();
        let deep = segments.last().is_some_and(|s| s == "**");
        if deep {
            segments.pop();
        }
        for s in &segments {
            if s.contains("**") {
                return Err(err("`**` may only be the whole last segment"));
            }
            if s.contains('*') {
                let literal_ok = s
                    .bytes()
                    .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-' | b'*'));
                if !literal_ok {
                    return Err(err("segments hold only a-z, 0-9, `.`, `_`, `-` and `*`"));
                }
            } else if !valid_component(s) {
                return Err(err(
                    "each segment must be a repository path component (lower case, digits, separators between)",
                ));
            }
        }
        Ok(Scope {
            segments,
            deep,
            text: pattern.to_string(),
        })
    }

    /// The scope that matches every repository (`**`).
    pub fn any() -> Scope {
        Scope::parse("**").expect("`**` is a glob")
    }

    /// Whether `repository` is inside this scope.
    pub fn matches(&self, repository: &str) -> bool {
        // Stops a name outside the grammar (`..`, upper case, empty segments) from being
        // matched segment by segment into something the registry would read differently.
        if !valid_repository(repository) {
            return false;
        }
        let parts: Vec<&str> = repository.split('/').collect();
        let n = self.segments.len();
        let count_ok = if self.deep {
            parts.len() > n
        } else {
            parts.len() == n
        };
        count_ok
            && self
                .segments
                .iter()
                .zip(&parts)
                .all(|(pattern, part)| segment_matches(pattern.as_bytes(), part.as_bytes()))
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// A client's scopes: a repository is allowed when any one matches.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scopes(pub Vec<Scope>);

impl Scopes {
    /// Every repository.
    pub fn any() -> Scopes {
        Scopes(vec![Scope::any()])
    }

    /// Parses a list of globs.
    pub fn parse<S: AsRef<str>>(patterns: &[S]) -> Result<Scopes, ScopeError> {
        patterns
            .iter()
            .map(|p| Scope::parse(p.as_ref()))
            .collect::<Result<_, _>>()
            .map(Scopes)
    }

    /// Whether any scope allows `repository`.
    pub fn allow(&self, repository: &str) -> bool {
        self.0.iter().any(|s| s.matches(repository))
    }
}

/// `*` matches any run of bytes within one segment (the segment holds no `/`).
fn segment_matches(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, repo: &str) -> bool {
        Scope::parse(pattern).unwrap().matches(repo)
    }

    #[test]
    fn star_stays_within_one_segment() {
        assert!(m("*/cache", "team-a/cache"));
        assert!(!m("*/cache", "team-a/sub/cache"));
        assert!(!m("*/cache", "cache"));
        assert!(m("team-*/app", "team-b/app"));
        assert!(!m("team-*/app", "prod/app"));
        assert!(m("shared/base", "shared/base"));
        assert!(!m("shared/base", "shared/base2"));
        assert!(!m("shared/base", "shared/base/x"));
        assert!(m("a*b*c", "axxbyyc"));
        assert!(!m("a*b*c", "axxbyy"));
    }

    #[test]
    fn double_star_is_any_depth_below() {
        assert!(m("team-a/**", "team-a/app"));
        assert!(m("team-a/**", "team-a/sub/deep/app"));
        assert!(
            !m("team-a/**", "team-a"),
            "`/**` needs at least one more segment"
        );
        assert!(!m("team-a/**", "team-ab/app"));
        assert!(m("**", "anything/at/all"));
        assert!(m("**", "x"));
        assert!(m("*/ci/**", "org/ci/app"));
    }

    #[test]
    fn names_outside_the_grammar_never_match() {
        for bad in [
            "team-a/../prod",
            "Team-A/app",
            "team-a//app",
            "team-a/",
            "",
            "team-a/app/",
        ] {
            assert!(!m("**", bad), "{bad:?}");
            assert!(!m("team-a/**", bad), "{bad:?}");
        }
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in [
            "", "Team/**", "a/**/b", "a/b**", "a//b", "a/../b", "a/ b", "/a", "a/",
        ] {
            assert!(Scope::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Scope::parse("a/*/b").is_ok());
        assert_eq!(Scope::parse("x/**").unwrap().to_string(), "x/**");
    }

    #[test]
    fn scopes_allow_any_match() {
        let s = Scopes::parse(&["team-a/**", "shared/base"]).unwrap();
        assert!(s.allow("team-a/x"));
        assert!(s.allow("shared/base"));
        assert!(!s.allow("prod/app"));
        assert!(!Scopes::default().allow("x"));
    }
}
