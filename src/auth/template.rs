//! Scope templates for CI identity tokens: `ci/{repository_owner}/**` becomes a scope once
//! the token's claims fill its placeholders. A claim value is text, never a pattern: it must
//! be a valid repository path component on its own (lower case, no `/`, no `*`, no `..`),
//! so a value like `*`, `a/b` or `../prod` cannot widen the scope or reach another path.

use super::scope::{Scope, ScopeError};
use crate::oci::reference::valid_component;

/// A parsed template: literal text and `{claim}` placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
    text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Claim(String),
}

/// Why a template cannot be read or filled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The template itself is malformed (a config error).
    #[error("template {template:?}: {reason}")]
    Syntax {
        /// The template as written.
        template: String,
        /// What is wrong.
        reason: String,
    },
    /// The token lacks a claim the template needs.
    #[error("the token has no claim {claim:?}, which scope {template:?} needs")]
    MissingClaim {
        /// The claim's name.
        claim: String,
        /// The template.
        template: String,
    },
    /// The claim's value cannot stand as one repository path component.
    #[error(
        "claim {claim:?} cannot name a repository path component (lower case letters, digits and single separators only); scope {template:?} not granted"
    )]
    UnsafeValue {
        /// The claim's name (its value is not repeated).
        claim: String,
        /// The template.
        template: String,
    },
}

impl Template {
    /// Parses `text`; placeholders are `{name}` with name in `[A-Za-z0-9_.-]`. The template
    /// must form a valid scope whatever (valid) values fill it.
    pub fn parse(text: &str) -> Result<Template, TemplateError> {
        let syntax = |reason: &str| TemplateError::Syntax {
            template: text.chars().take(300).collect(),
            reason: reason.to_string(),
        };
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_string()));
            }
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| syntax("`{` without `}`"))?;
            let name = &rest[open + 1..open + close];
            let name_ok = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
            if !name_ok {
                return Err(syntax("a placeholder is `{claim_name}`"));
            }
            parts.push(Part::Claim(name.to_string()));
            rest = &rest[open + close + 1..];
        }
        if rest.contains('}') {
            return Err(syntax("`}` without `{`"));
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_string()));
        }
        let template = Template {
            parts,
            text: text.to_string(),
        };
        template
            .fill(|_| Some("x".to_string()))
            .map_err(|e| syntax(&e.to_string()))?;
        Ok(template)
    }

    /// The claims this template reads.
    pub fn claims(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Claim(c) => Some(c.as_str()),
            Part::Literal(_) => None,
        })
    }

    /// Fills the placeholders from `claim` and parses the result as a scope.
    pub fn fill(&self, claim: impl Fn(&str) -> Option<String>) -> Result<Scope, TemplateError> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(l) => out.push_str(l),
                Part::Claim(name) => {
                    let value = claim(name).ok_or_else(|| TemplateError::MissingClaim {
                        claim: name.clone(),
                        template: self.text.clone(),
                    })?;
                    // Stops glob injection and path escapes: `*`, `**`, `/`, `..`, upper
                    // case and empty values are all refused here.
                    if !valid_component(&value) {
                        return Err(TemplateError::UnsafeValue {
                            claim: name.clone(),
                            template: self.text.clone(),
                        });
                    }
                    out.push_str(&value);
                }
            }
        }
        Scope::parse(&out).map_err(|e: ScopeError| TemplateError::Syntax {
            template: self.text.clone(),
            reason: e.reason.to_string(),
        })
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(t: &str, value: &str) -> Result<Scope, TemplateError> {
        Template::parse(t)
            .unwrap()
            .fill(|_| Some(value.to_string()))
    }

    #[test]
    fn fills_literal_values() {
        let s = fill("ci/{repository_owner}/**", "acme").unwrap();
        assert!(s.matches("ci/acme/app"));
        assert!(!s.matches("ci/other/app"));
        let s = fill("gh-{owner}/app", "acme").unwrap();
        assert!(s.matches("gh-acme/app"));
        assert_eq!(
            Template::parse("a/{x}/{y}")
                .unwrap()
                .claims()
                .collect::<Vec<_>>(),
            ["x", "y"]
        );
    }

    #[test]
    fn claim_values_cannot_widen_or_escape() {
        for evil in [
            "*", "**", "a*", "a/b", "..", "../prod", "Acme", "", "a..b", "-a", "a b",
        ] {
            assert!(
                matches!(
                    fill("ci/{repository_owner}/**", evil),
                    Err(TemplateError::UnsafeValue { .. })
                ),
                "{evil:?}"
            );
        }
    }

    #[test]
    fn missing_claims_and_bad_templates() {
        let t = Template::parse("ci/{owner}/**").unwrap();
        assert!(matches!(
            t.fill(|_| None),
            Err(TemplateError::MissingClaim { .. })
        ));
        for bad in [
            "ci/{owner",
            "ci/owner}",
            "ci/{}/x",
            "ci/{a b}",
            "Ci/{x}",
            "ci/**/{x}",
        ] {
            assert!(Template::parse(bad).is_err(), "{bad:?}");
        }
    }
}
