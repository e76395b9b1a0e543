//! Admission's first steps, before any of the body is read: who the client is (401), whether
//! a browser sent the request from a page hoist does not allow (403, the CSRF defence: a
//! multipart or text/plain POST needs no CORS preflight, so the browser sends it anyway),
//! whether the URL's repository is in the client's scopes (403), and the client's own share
//! of the push slots (429).

use std::sync::Arc;

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;

use super::AppState;
use crate::auth::{Client, ClientSlot};
use crate::push::{PushError, Target};

/// An admitted client and the per-client slot it holds (none for anonymous clients).
pub struct Admitted {
    pub client: Arc<Client>,
    pub _slot: Option<ClientSlot>,
}

/// Authentication, then Origin, then the URL's repository, then the client's slot.
pub async fn admit(
    state: &AppState,
    headers: &HeaderMap,
    target: &Target,
) -> Result<Admitted, PushError> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or("\u{0}"));
    let client = state.auth.authenticate(authorization).await?;
    crate::telemetry::metrics().client(&client.name);
    check_origin(headers, &state.pusher.config.cors_allow_origins)?;
    if let Target::Named { repository, .. } = target {
        crate::push::authorize(repository, &client)?;
    }
    let slot = if client.anonymous {
        None
    } else {
        let slot = state.client_slots.try_take(&client.name);
        Some(slot.ok_or_else(|| PushError::ClientBusy {
            client: client.name.clone(),
            limit: state.client_slots.max(),
        })?)
    };
    Ok(Admitted {
        client: Arc::new(client),
        _slot: slot,
    })
}

/// Drops the `Basic` challenge from a 401 to a browser (a request with `Origin`): a Basic
/// challenge makes the browser put its own login dialog over the page that sent the push
/// (a headless one holds the request open), where the page shows the refusal in its own
/// words. The Bearer challenge stays; Basic credentials are still accepted.
pub fn offer_browsers_bearer_only(response: &mut Response) {
    let headers = response.headers_mut();
    let kept: Vec<HeaderValue> = headers
        .get_all(header::WWW_AUTHENTICATE)
        .iter()
        .filter(|v| !v.as_bytes().to_ascii_lowercase().starts_with(b"basic"))
        .cloned()
        .collect();
    headers.remove(header::WWW_AUTHENTICATE);
    for value in kept {
        headers.append(header::WWW_AUTHENTICATE, value);
    }
}

/// A request with an `Origin` must come from hoist's own page or a configured portal.
/// `curl` and CI jobs send no `Origin`, so they are not affected.
pub fn check_origin(headers: &HeaderMap, allowed: &[String]) -> Result<(), PushError> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let origin = String::from_utf8_lossy(origin.as_bytes()).into_owned();
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    if allowed
        .iter()
        .any(|a| a == "*" || a.eq_ignore_ascii_case(&origin))
        || same_origin(&origin, host)
    {
        return Ok(());
    }
    Err(PushError::OriginDenied {
        origin: origin.chars().take(200).collect(),
    })
}

/// Whether `origin` is this server as the browser reached it (hoist's own upload page).
fn same_origin(origin: &str, host: Option<&str>) -> bool {
    let (Ok(url), Some(host)) = (url::Url::parse(origin), host) else {
        return false;
    };
    if !matches!(url.scheme(), "http" | "https") || url.path() != "/" {
        return false;
    }
    let Some(origin_host) = url.host_str() else {
        return false;
    };
    let origin_authority = match url.port() {
        Some(p) => format!("{origin_host}:{p}"),
        None => origin_host.to_string(),
    };
    origin_authority.eq_ignore_ascii_case(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(origin: Option<&str>, host: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_str(o).unwrap());
        }
        h
    }

    #[test]
    fn foreign_origins_are_refused_own_and_configured_ones_pass() {
        let portal = vec!["https://portal.example".to_string()];
        let ok = |o: Option<&str>, host: &str| check_origin(&headers(o, host), &portal).is_ok();
        assert!(ok(None, "hoist:8080"), "curl and CI send no Origin");
        assert!(
            ok(Some("http://hoist:8080"), "hoist:8080"),
            "the upload page"
        );
        assert!(ok(Some("https://portal.example"), "hoist:8080"));
        assert!(!ok(Some("https://evil.example"), "hoist:8080"));
        assert!(!ok(Some("http://hoist:9090"), "hoist:8080"));
        assert!(
            !ok(Some("null"), "hoist:8080"),
            "sandboxed pages and file://"
        );
        let err = check_origin(&headers(Some("https://evil.example"), "h"), &portal).unwrap_err();
        assert_eq!((err.code(), err.status()), ("ORIGIN_DENIED", 403));
        assert!(check_origin(&headers(Some("https://any.example"), "h"), &["*".into()]).is_ok());
    }

    #[test]
    fn browsers_are_offered_only_the_bearer_challenge() {
        let mut response = Response::new(axum::body::Body::empty());
        for challenge in crate::auth::CHALLENGES {
            let value = HeaderValue::from_static(challenge);
            response
                .headers_mut()
                .append(header::WWW_AUTHENTICATE, value);
        }
        offer_browsers_bearer_only(&mut response);
        let left: Vec<_> = response
            .headers()
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .collect();
        assert_eq!(left, [r#"Bearer realm="hoist""#]);
    }
}
