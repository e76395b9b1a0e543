//! A token issuer run inside the test: `GET /token` checks Basic credentials, `POST /token`
//! exchanges a docker `identitytoken` (OAuth2 refresh grant); both record the scopes asked
//! for and answer JWTs the registry verifies. `token_rig` starts it with its registry.

use std::sync::{Arc, Mutex};

use anyhow::Result;
use serde_json::json;

use crate::common::{PASSWORD, USER, basic_value, get_json_auth, tag_list};
use crate::signer::Signer;
use crate::support::Registry;

/// One token request the issuer saw.
#[derive(Clone, Debug)]
pub struct TokenRequest {
    pub scopes: Vec<String>,
    pub service: Option<String>,
    pub granted: bool,
    /// An OAuth2 refresh-token grant (POST), as a docker `identitytoken` is exchanged.
    pub refresh: bool,
    pub at: std::time::Instant,
}

struct IssuerCtx {
    signer: Signer,
    expires_in: u64,
    requests: Mutex<Vec<TokenRequest>>,
    issued: Mutex<Vec<String>>,
}

pub struct Issuer {
    port: u16,
    ctx: Arc<IssuerCtx>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Issuer {
    pub fn start(expires_in: u64) -> Result<Issuer> {
        let dir = tempfile::tempdir()?;
        let ctx = Arc::new(IssuerCtx {
            signer: Signer::new(dir.path())?,
            expires_in,
            requests: Mutex::new(Vec::new()),
            issued: Mutex::new(Vec::new()),
        });
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let app = axum::Router::new()
            .route("/token", axum::routing::get(token).post(token_refresh))
            .with_state(ctx.clone());
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("issuer runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stop_rx.await;
                    })
                    .await;
            });
        });
        Ok(Issuer {
            port,
            ctx,
            stop: Some(stop_tx),
            thread: Some(thread),
            _dir: dir,
        })
    }

    pub fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    pub fn registry_yaml(&self) -> String {
        format!(
            "auth:\n  token:\n    realm: {}\n    service: test-registry\n    issuer: test-issuer\n    rootcertbundle: {}\n",
            self.realm(),
            self.ctx.signer.cert.display()
        )
    }

    pub fn requests(&self) -> Vec<TokenRequest> {
        self.ctx.requests.lock().unwrap().clone()
    }

    pub fn issued(&self) -> Vec<String> {
        self.ctx.issued.lock().unwrap().clone()
    }

    /// Tags of `repo`, read from the registry with a pull token minted here.
    pub fn tags(&self, registry: &Registry, repo: &str) -> Result<Vec<String>> {
        let token = self
            .ctx
            .signer
            .mint("checker", &[format!("repository:{repo}:pull")], 300)?;
        let header = format!("Authorization: Bearer {token}");
        Ok(tag_list(get_json_auth(
            &format!("{}/v2/{repo}/tags/list", registry.url()),
            &["-H", &header],
        )))
    }
}

impl Drop for Issuer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn token(
    axum::extract::State(ctx): axum::extract::State<Arc<IssuerCtx>>,
    axum::extract::Query(query): axum::extract::Query<Vec<(String, String)>>,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let scopes: Vec<String> = query
        .iter()
        .filter(|(k, _)| k == "scope")
        .flat_map(|(_, v)| v.split(' ').map(String::from).collect::<Vec<_>>())
        .collect();
    let service = query
        .iter()
        .find(|(k, _)| k == "service")
        .map(|(_, v)| v.clone());
    let granted = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .is_some_and(|b| b == basic_value(USER, PASSWORD));
    ctx.requests.lock().unwrap().push(TokenRequest {
        scopes: scopes.clone(),
        service,
        granted,
        refresh: false,
        at: std::time::Instant::now(),
    });
    if !granted {
        return (
            axum::http::StatusCode::UNAUTHORIZED,
            [("content-type", "application/json")],
            r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required: bad username or password"}]}"#,
        )
            .into_response();
    }
    grant(ctx, scopes).await
}

/// The identity token a docker config.json carries in the tests (an OAuth2 refresh token).
pub const IDENTITY_TOKEN: &str = "idtok-e2e-R3fr3sh-5150";

/// `POST /token` with `grant_type=refresh_token` (docker's `identitytoken` exchange).
async fn token_refresh(
    axum::extract::State(ctx): axum::extract::State<Arc<IssuerCtx>>,
    axum::extract::Form(form): axum::extract::Form<Vec<(String, String)>>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let field = |k: &str| form.iter().find(|(f, _)| f == k).map(|(_, v)| v.clone());
    let scopes: Vec<String> = field("scope")
        .unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    let granted = field("grant_type").as_deref() == Some("refresh_token")
        && field("refresh_token").as_deref() == Some(IDENTITY_TOKEN);
    ctx.requests.lock().unwrap().push(TokenRequest {
        scopes: scopes.clone(),
        service: field("service"),
        granted,
        refresh: true,
        at: std::time::Instant::now(),
    });
    if !granted {
        return (
            axum::http::StatusCode::UNAUTHORIZED,
            [("content-type", "application/json")],
            r#"{"error":"invalid_grant"}"#,
        )
            .into_response();
    }
    grant(ctx, scopes).await
}

/// Mints a token for `scopes` and answers it (`token` and `access_token`, `expires_in`).
async fn grant(ctx: Arc<IssuerCtx>, scopes: Vec<String>) -> axum::response::Response {
    use axum::response::IntoResponse;
    let lifetime = ctx.expires_in;
    let c = ctx.clone();
    let minted = tokio::task::spawn_blocking(move || c.signer.mint(USER, &scopes, lifetime)).await;
    match minted {
        Ok(Ok(t)) => {
            ctx.issued.lock().unwrap().push(t.clone());
            axum::Json(json!({"token": t, "access_token": t, "expires_in": lifetime}))
                .into_response()
        }
        other => (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            format!("{other:?}"),
        )
            .into_response(),
    }
}

pub fn token_rig(expires_in: u64) -> Result<(Issuer, Registry)> {
    let issuer = Issuer::start(expires_in)?;
    let registry = Registry::start_with(&issuer.registry_yaml())?;
    Ok((issuer, registry))
}

pub fn right_credentials() -> [(&'static str, &'static str); 2] {
    [
        ("HOIST_REGISTRY_USERNAME", USER),
        ("HOIST_REGISTRY_PASSWORD", PASSWORD),
    ]
}
