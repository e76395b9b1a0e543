//! The upload page for people with a browser: one HTML file (`page.html`: markup, style and
//! script, no build step, no framework) that posts the archive as multipart with
//! `XMLHttpRequest`, follows the push as NDJSON and shows the result, or the failure in words
//! with its code. The page learns from `data-credentials` on its `<body>` what hoist checks
//! (nothing, a token, or a registry login), so it asks for a credential only when one is used.

use std::sync::OnceLock;

use axum::extract::State;
use axum::http::header;
use axum::response::{Html, IntoResponse};
use base64::Engine;

use super::AppState;
use crate::auth::PageCredentials;

const PAGE: &str = include_str!("page.html");
/// Where the rendered attribute goes: `page.html` holds it once, on `<body>`.
const SLOT: &str = r#"data-credentials="""#;

/// `GET /`: the page, telling its script which credential hoist checks.
pub async fn index(State(state): State<AppState>) -> impl IntoResponse {
    let (asks, anonymous) = state.auth.page_credentials();
    (
        [
            (header::CONTENT_SECURITY_POLICY, csp()),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Html(render(asks, anonymous)),
    )
}

/// The page with `data-credentials="none|token|registry"`, and `data-credentials-optional`
/// when hoist also serves requests without one.
fn render(asks: PageCredentials, anonymous: bool) -> String {
    let kind = match asks {
        PageCredentials::Nothing => "none",
        PageCredentials::Token => "token",
        PageCredentials::RegistryLogin => "registry",
    };
    let optional = if anonymous {
        " data-credentials-optional"
    } else {
        ""
    };
    PAGE.replacen(SLOT, &format!(r#"data-credentials="{kind}"{optional}"#), 1)
}

/// Only the page's own inline script and style (by their hashes) run, the script talks only
/// to hoist (a token typed into the page cannot be sent elsewhere), and no other site may
/// frame the page (clickjacking).
fn csp() -> &'static str {
    static CSP: OnceLock<String> = OnceLock::new();
    CSP.get_or_init(|| {
        let script = hash_source(between(PAGE, "<script>", "</script>"));
        let style = hash_source(between(PAGE, "<style>", "</style>"));
        format!(
            "default-src 'none'; script-src {script}; style-src {style}; connect-src 'self'; \
             img-src data:; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
        )
    })
}

/// The text between the first `open` and the next `close` (page.html has one of each).
fn between<'a>(text: &'a str, open: &str, close: &str) -> &'a str {
    let start = text.find(open).expect("page.html has the tag") + open.len();
    let len = text[start..].find(close).expect("page.html closes the tag");
    &text[start..start + len]
}

/// A CSP source expression allowing exactly this inline text.
fn hash_source(text: &str) -> String {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, text.as_bytes());
    let b64 = base64::engine::general_purpose::STANDARD.encode(digest.as_ref());
    format!("'sha256-{b64}'")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_is_told_which_credential_hoist_checks() {
        assert_eq!(PAGE.matches(SLOT).count(), 1, "one slot, on <body>");
        let page = render(PageCredentials::Token, false);
        assert!(page.contains(r#"<body data-credentials="token">"#));
        let page = render(PageCredentials::RegistryLogin, true);
        assert!(page.contains(r#"data-credentials="registry" data-credentials-optional>"#));
        assert!(render(PageCredentials::Nothing, true).contains(r#"data-credentials="none""#));
    }

    #[test]
    fn the_policy_allows_the_one_inline_script_and_style() {
        assert_eq!(PAGE.matches("<script>").count(), 1);
        assert_eq!(PAGE.matches("<style>").count(), 1);
        let policy = csp();
        assert!(policy.contains("script-src 'sha256-"), "{policy}");
        assert!(!policy.contains("unsafe-inline"), "{policy}");
        assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    }
}
