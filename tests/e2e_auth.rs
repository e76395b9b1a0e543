//! Authentication to the backend registry, end to end against the real `docker-registry`:
//! htpasswd Basic auth, and token auth with a token issuer run inside the test (it checks
//! Basic credentials, records the scopes asked for and signs real RS256 JWTs with an `x5c`
//! chain the registry verifies against its `rootcertbundle`). Secrets must never show up in
//! hoist's stderr or in its answers.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use base64::Engine;
use serde_json::{Value, json};

use support::archives::{image, image_corrupt};
use support::fault_proxy::{Fault, Proxy, Rule, Seen};
use support::{Answer, Hoist, Registry, push_bytes as push};

const USER: &str = "hoist-bot";
const PASSWORD: &str = "Tr0ub4dor-e2e-S3cret-913";
const WRONG_PASSWORD: &str = "wr0ng-e2e-Passw0rd-771";

fn basic_value(user: &str, password: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
}

/// None of `secrets` in hoist's stderr nor in its answer.
fn assert_no_secrets(hoist: &Hoist, answers: &[&Answer], secrets: &[String]) {
    let stderr = hoist.stderr();
    for s in secrets {
        assert!(
            !stderr.contains(s.as_str()),
            "a secret ({}…) is in hoist's stderr",
            &s[..s.len().min(6)]
        );
        for a in answers {
            assert!(
                !a.body.to_string().contains(s.as_str()),
                "a secret ({}…) is in hoist's answer",
                &s[..s.len().min(6)]
            );
        }
    }
}

/// GET a registry URL as JSON with an Authorization header (`curl -u` or a bearer token).
fn get_json_auth(url: &str, auth: &[&str]) -> Option<Value> {
    let out = Command::new("curl")
        .arg("-sf")
        .args(auth)
        .arg(url)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

fn tag_list(v: Option<Value>) -> Vec<String> {
    v.and_then(|v| v["tags"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|t| t.as_str().map(String::from))
        .collect()
}

/// hoist as chatty as it gets (`hoist=trace`): a secret in any of its log lines shows up in
/// its captured stderr.
fn chatty_hoist(registry_url: &str, env: &[(&str, &str)]) -> Result<Hoist> {
    Hoist::options(registry_url)
        .envs(env)
        .log("hoist=trace,info")
        .start()
}

/// A push that fails after a layer's session was opened and its bytes sent (DIGEST_MISMATCH)
/// cancels that session: the registry answered 2xx to a DELETE on it (docs/API.md: "open
/// upload sessions are cancelled").
fn assert_failed_push_cancels_session(
    registry: &Registry,
    hoist: &Hoist,
    repo: &str,
) -> Result<()> {
    let bad = image_corrupt(20, &[64 << 10], "v1");
    let a = push(hoist, &format!("/push/{repo}:v1"), &bad.tar)?;
    assert_eq!(
        (a.status, a.code()),
        (400, "DIGEST_MISMATCH"),
        "{}\n{}",
        a.body,
        hoist.stderr()
    );
    let sessions = registry.cancels_within(repo, Duration::from_secs(3));
    assert!(!sessions.is_empty(), "no upload session was opened");
    let log = std::fs::read_to_string(registry.dir.path().join("registry.log")).unwrap_or_default();
    let deletes: Vec<&str> = log.lines().filter(|l| l.contains("DELETE")).collect();
    assert!(
        sessions.iter().all(|(_, d)| matches!(d, Some(200..=299))),
        "upload sessions of {repo} not cancelled after a failed push (uuid, DELETE status): {sessions:?}\nregistry log, DELETE lines:\n{}",
        deletes.join("\n")
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// htpasswd (Basic).

fn htpasswd_registry() -> Result<(Registry, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("htpasswd");
    // distribution's htpasswd is bcrypt only; cost 4 keeps the test fast.
    let hash = bcrypt::hash_with_result(PASSWORD, 4)?.format_for_version(bcrypt::Version::TwoY);
    std::fs::write(&file, format!("{USER}:{hash}\n"))?;
    let registry = Registry::start_with(&format!(
        "auth:\n  htpasswd:\n    realm: basic-realm\n    path: {}\n",
        file.display()
    ))?;
    Ok((registry, dir))
}

fn basic_tags(registry: &Registry, repo: &str) -> Vec<String> {
    let creds = format!("{USER}:{PASSWORD}");
    tag_list(get_json_auth(
        &format!("{}/v2/{repo}/tags/list", registry.url()),
        &["-u", &creds],
    ))
}

#[test]
fn basic_auth_right_credentials_push() -> Result<()> {
    let (registry, _dir) = htpasswd_registry()?;
    // The registry really wants credentials.
    assert!(get_json_auth(&format!("{}/v2/_catalog", registry.url()), &[]).is_none());
    let hoist = chatty_hoist(
        &registry.url(),
        &[
            ("HOIST_REGISTRY_USERNAME", USER),
            ("HOIST_REGISTRY_PASSWORD", PASSWORD),
        ],
    )?;
    let img = image(1, &[64 << 10], "v1");
    let a = push(&hoist, "/push/e2e/basic:v1", &img.tar)?;
    assert_eq!(a.status, 201, "{}\n{}", a.body, hoist.stderr());
    assert_eq!(basic_tags(&registry, "e2e/basic"), vec!["v1".to_string()]);
    assert_eq!(a.outcome(&img.layers[0]), "uploaded");
    // A second push: everything is already there.
    let again = push(&hoist, "/push/e2e/basic:v1", &img.tar)?;
    assert_eq!(again.status, 201, "{}", again.body);
    assert_eq!(again.outcome(&img.layers[0]), "exists");
    assert_eq!(again.outcome(&img.config), "exists");
    assert_no_secrets(
        &hoist,
        &[&a, &again],
        &[PASSWORD.to_string(), basic_value(USER, PASSWORD)],
    );
    Ok(())
}

#[test]
fn basic_auth_failed_push_cancels_its_upload_session() -> Result<()> {
    let (registry, _dir) = htpasswd_registry()?;
    let hoist = chatty_hoist(
        &registry.url(),
        &[
            ("HOIST_REGISTRY_USERNAME", USER),
            ("HOIST_REGISTRY_PASSWORD", PASSWORD),
        ],
    )?;
    assert_failed_push_cancels_session(&registry, &hoist, "e2e/basic")
}

#[test]
fn basic_auth_wrong_password_is_unauthorized() -> Result<()> {
    let (registry, _dir) = htpasswd_registry()?;
    let hoist = chatty_hoist(
        &registry.url(),
        &[
            ("HOIST_REGISTRY_USERNAME", USER),
            ("HOIST_REGISTRY_PASSWORD", WRONG_PASSWORD),
        ],
    )?;
    let img = image(2, &[64 << 10], "v1");
    let a = push(&hoist, "/push/e2e/basic:v1", &img.tar)?;
    assert_eq!(
        (a.status, a.code()),
        (502, "REGISTRY_UNAUTHORIZED"),
        "{}\n{}",
        a.body,
        hoist.stderr()
    );
    assert!(
        a.message().contains("credentials"),
        "the message should mention credentials: {}",
        a.message()
    );
    assert!(basic_tags(&registry, "e2e/basic").is_empty());
    assert_no_secrets(
        &hoist,
        &[&a],
        &[
            WRONG_PASSWORD.to_string(),
            basic_value(USER, WRONG_PASSWORD),
        ],
    );
    Ok(())
}

#[test]
fn basic_auth_without_credentials_is_unauthorized() -> Result<()> {
    let (registry, _dir) = htpasswd_registry()?;
    let hoist = chatty_hoist(&registry.url(), &[])?;
    let img = image(3, &[64 << 10], "v1");
    let a = push(&hoist, "/push/e2e/basic:v1", &img.tar)?;
    assert_eq!(
        (a.status, a.code()),
        (502, "REGISTRY_UNAUTHORIZED"),
        "{}\n{}",
        a.body,
        hoist.stderr()
    );
    assert!(basic_tags(&registry, "e2e/basic").is_empty());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Token auth: an issuer in the test.

/// Signs JWTs with an RSA key whose self-signed certificate is the registry's root bundle.
struct Signer {
    key: PathBuf,
    cert: PathBuf,
    x5c: String,
    next_jti: AtomicU64,
}

impl Signer {
    fn new(dir: &Path) -> Result<Signer> {
        let key = dir.join("issuer-key.pem");
        let cert = dir.join("issuer-cert.pem");
        support::run(
            Command::new("openssl")
                .args([
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                ])
                .args(["-subj", "/CN=test-issuer"])
                .args(["-addext", "keyUsage=critical,digitalSignature,keyCertSign"])
                .arg("-keyout")
                .arg(&key)
                .arg("-out")
                .arg(&cert),
        )?;
        let pem = std::fs::read_to_string(&cert)?;
        // x5c is the standard base64 of the DER: the PEM body, joined.
        let x5c: String = pem
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<Vec<_>>()
            .concat();
        Ok(Signer {
            key,
            cert,
            x5c,
            next_jti: AtomicU64::new(1),
        })
    }

    /// A signed token granting every action of `scopes` (`repository:name:a,b`).
    fn mint(&self, subject: &str, scopes: &[String], lifetime: u64) -> Result<String> {
        let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        let access: Vec<Value> = scopes
            .iter()
            .filter_map(|s| {
                let (typ, rest) = s.split_once(':')?;
                let (name, actions) = rest.rsplit_once(':')?;
                Some(json!({
                    "type": typ,
                    "name": name,
                    "actions": actions.split(',').collect::<Vec<_>>(),
                }))
            })
            .collect();
        let header = json!({"typ": "JWT", "alg": "RS256", "x5c": [self.x5c]});
        let claims = json!({
            "iss": "test-issuer",
            "sub": subject,
            "aud": "test-registry",
            "exp": now + lifetime,
            "nbf": now - 5,
            "iat": now,
            "jti": format!("jti-{}", self.next_jti.fetch_add(1, Ordering::Relaxed)),
            "access": access,
        });
        let input = format!(
            "{}.{}",
            b64(&serde_json::to_vec(&header)?),
            b64(&serde_json::to_vec(&claims)?)
        );
        let mut child = Command::new("openssl")
            .args(["dgst", "-sha256", "-sign"])
            .arg(&self.key)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        child
            .stdin
            .take()
            .context("openssl stdin")?
            .write_all(input.as_bytes())?;
        let out = child.wait_with_output()?;
        if !out.status.success() || out.stdout.is_empty() {
            bail!("openssl dgst: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(format!("{input}.{}", b64(&out.stdout)))
    }
}

/// One token request the issuer saw.
#[derive(Clone, Debug)]
struct TokenRequest {
    scopes: Vec<String>,
    service: Option<String>,
    granted: bool,
    /// An OAuth2 refresh-token grant (POST), as a docker `identitytoken` is exchanged.
    refresh: bool,
    at: std::time::Instant,
}

struct IssuerCtx {
    signer: Signer,
    expires_in: u64,
    requests: Mutex<Vec<TokenRequest>>,
    issued: Mutex<Vec<String>>,
}

struct Issuer {
    port: u16,
    ctx: Arc<IssuerCtx>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Issuer {
    fn start(expires_in: u64) -> Result<Issuer> {
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

    fn realm(&self) -> String {
        format!("http://127.0.0.1:{}/token", self.port)
    }

    fn registry_yaml(&self) -> String {
        format!(
            "auth:\n  token:\n    realm: {}\n    service: test-registry\n    issuer: test-issuer\n    rootcertbundle: {}\n",
            self.realm(),
            self.ctx.signer.cert.display()
        )
    }

    fn requests(&self) -> Vec<TokenRequest> {
        self.ctx.requests.lock().unwrap().clone()
    }

    fn issued(&self) -> Vec<String> {
        self.ctx.issued.lock().unwrap().clone()
    }

    /// Tags of `repo`, read from the registry with a pull token minted here.
    fn tags(&self, registry: &Registry, repo: &str) -> Result<Vec<String>> {
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
const IDENTITY_TOKEN: &str = "idtok-e2e-R3fr3sh-5150";

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

fn token_rig(expires_in: u64) -> Result<(Issuer, Registry)> {
    let issuer = Issuer::start(expires_in)?;
    let registry = Registry::start_with(&issuer.registry_yaml())?;
    Ok((issuer, registry))
}

fn right_credentials() -> [(&'static str, &'static str); 2] {
    [
        ("HOIST_REGISTRY_USERNAME", USER),
        ("HOIST_REGISTRY_PASSWORD", PASSWORD),
    ]
}

#[test]
fn token_auth_push_mount_and_repush() -> Result<()> {
    let (issuer, registry) = token_rig(300)?;
    // The registry really wants a token, and takes one the issuer signed.
    assert!(get_json_auth(&format!("{}/v2/", registry.url()), &[]).is_none());
    let hoist = chatty_hoist(&registry.url(), &right_credentials())?;

    // 1. A push to a named repository.
    let img = image(10, &[128 << 10], "v1");
    let a = push(&hoist, "/push/e2e/tok:v1", &img.tar)?;
    assert_eq!(a.status, 201, "{}\n{}", a.body, hoist.stderr());
    assert_eq!(issuer.tags(&registry, "e2e/tok")?, vec!["v1".to_string()]);
    let reqs = issuer.requests();
    assert!(
        reqs.iter().any(|r| r.granted
            && r.scopes.iter().any(|s| s == "repository:e2e/tok:pull,push")
            && r.service.as_deref() == Some("test-registry")),
        "no token request for repository:e2e/tok:pull,push: {reqs:?}"
    );

    // 2. The same image under names from the archive: streamed into the staging repository,
    //    then mounted into the target.
    let staged = image(10, &[128 << 10], "e2e/tok-a:v1");
    let b = push(&hoist, "/push", &staged.tar)?;
    assert_eq!(b.status, 201, "{}\n{}", b.body, hoist.stderr());
    assert_eq!(issuer.tags(&registry, "e2e/tok-a")?, vec!["v1".to_string()]);

    // 3. Again under a second repository: the layer is already in the staging repository,
    //    so it must not be sent again (mounted, with a `from` pull scope).
    let second = image(10, &[128 << 10], "e2e/tok-b:v1");
    let c = push(&hoist, "/push", &second.tar)?;
    assert_eq!(c.status, 201, "{}\n{}", c.body, hoist.stderr());
    assert_eq!(
        c.outcome(&second.layers[0]),
        "mounted",
        "the layer is in the staging repository: it must be mounted, not sent\n{}",
        c.body
    );
    assert_eq!(issuer.tags(&registry, "e2e/tok-b")?, vec!["v1".to_string()]);
    let reqs = issuer.requests();
    assert!(
        reqs.iter().any(|r| r.granted
            && r.scopes
                == [
                    "repository:e2e/tok-b:pull,push".to_string(),
                    "repository:hoist-staging:pull".to_string()
                ]),
        "a mount needs one token with the target's push and the `from` repository's pull scope: {reqs:?}"
    );

    // 4. A re-push of the first image: every blob exists.
    let d = push(&hoist, "/push/e2e/tok:v1", &img.tar)?;
    assert_eq!(d.status, 201, "{}\n{}", d.body, hoist.stderr());
    let blobs = d.body["images"][0]["blobs"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(blobs.len(), 2, "{}", d.body);
    for bl in &blobs {
        assert_eq!(bl["outcome"], "exists", "re-push: {}", d.body);
    }

    let mut secrets = vec![PASSWORD.to_string(), basic_value(USER, PASSWORD)];
    secrets.extend(issuer.issued());
    assert_no_secrets(&hoist, &[&a, &b, &c, &d], &secrets);
    Ok(())
}

#[test]
fn token_auth_wrong_or_missing_credentials_is_unauthorized() -> Result<()> {
    let (issuer, registry) = token_rig(300)?;
    let img = image(11, &[64 << 10], "v1");

    let wrong = chatty_hoist(
        &registry.url(),
        &[
            ("HOIST_REGISTRY_USERNAME", USER),
            ("HOIST_REGISTRY_PASSWORD", WRONG_PASSWORD),
        ],
    )?;
    let a = push(&wrong, "/push/e2e/tok:v1", &img.tar)?;
    assert_eq!(
        (a.status, a.code()),
        (502, "REGISTRY_UNAUTHORIZED"),
        "{}\n{}",
        a.body,
        wrong.stderr()
    );
    assert!(
        a.message().contains("credentials"),
        "the message should mention credentials: {}",
        a.message()
    );
    assert!(issuer.requests().iter().any(|r| !r.granted));
    assert!(issuer.tags(&registry, "e2e/tok")?.is_empty());
    assert_no_secrets(
        &wrong,
        &[&a],
        &[
            WRONG_PASSWORD.to_string(),
            basic_value(USER, WRONG_PASSWORD),
        ],
    );

    let anonymous = chatty_hoist(&registry.url(), &[])?;
    let b = push(&anonymous, "/push/e2e/tok:v1", &img.tar)?;
    assert_eq!(
        (b.status, b.code()),
        (502, "REGISTRY_UNAUTHORIZED"),
        "{}\n{}",
        b.body,
        anonymous.stderr()
    );
    assert!(issuer.tags(&registry, "e2e/tok")?.is_empty());
    Ok(())
}

/// A push that outlives the freshness of its token: 60 s tokens (the shortest lifetime hoist
/// honours) are renewed once less than 30 s are left. The client sends at 32 KiB/s, so the
/// 1 MiB layer takes ~33 s and the requests after it need a second token, fetched before the
/// old one runs out: the registry refuses nothing after its first challenge.
#[test]
fn token_auth_short_lived_tokens() -> Result<()> {
    let (issuer, registry) = token_rig(60)?;
    let hoist = chatty_hoist(&registry.url(), &right_credentials())?;
    let img = image(12, &[1 << 20], "v1");
    let t = std::time::Instant::now();
    let a = support::push_bytes_with(
        &hoist,
        "/push/e2e/short:v1",
        &img.tar,
        &["--limit-rate", "32K"],
    )?;
    let took = t.elapsed();
    assert_eq!(a.status, 201, "{}\n{}", a.body, hoist.stderr());
    assert!(
        took > Duration::from_secs(31),
        "the push took only {took:?}"
    );
    assert_eq!(issuer.tags(&registry, "e2e/short")?, vec!["v1".to_string()]);
    let push_scope = "repository:e2e/short:pull,push".to_string();
    let grants: Vec<TokenRequest> = issuer
        .requests()
        .into_iter()
        .filter(|r| r.granted && r.scopes == [push_scope.clone()])
        .collect();
    assert!(
        grants.len() >= 2,
        "the token was never renewed: {:?}",
        issuer.requests()
    );
    let gap = grants[1].at - grants[0].at;
    assert!(
        gap >= Duration::from_secs(29) && gap < Duration::from_secs(60),
        "renewed after {gap:?}: not when less than 30 s of 60 were left"
    );
    let log = registry.access_log();
    let refused: Vec<_> = log
        .iter()
        .filter(|(_, target, status)| *status == 401 && target.starts_with("/v2/e2e/short/"))
        .collect();
    // At most the first request meets a 401 (the challenge), none when hoist's readiness
    // probe learnt it first; a renewal comes before expiry.
    assert!(
        refused.len() <= 1,
        "only the first request may meet a 401 (the challenge); a renewal comes before expiry: {refused:?}"
    );
    let mut secrets = vec![PASSWORD.to_string()];
    secrets.extend(issuer.issued());
    assert_no_secrets(&hoist, &[&a], &secrets);
    Ok(())
}

/// A token the registry stops accepting in the middle of a push (expired or revoked early):
/// the 401 makes hoist forget the cached token, fetch a new one and send the request again.
#[test]
fn token_refused_mid_push_is_renewed_and_the_request_retried() -> Result<()> {
    let (issuer, registry) = token_rig(300)?;
    let proxy = Proxy::start(&registry.url())?;
    let hoist = chatty_hoist(&proxy.url(), &right_credentials())?;
    let challenge = format!(
        r#"Bearer realm="{}",service="test-registry",scope="repository:e2e/expired:pull,push",error="invalid_token""#,
        issuer.realm()
    );
    proxy.set_rules(vec![
        Rule::new(
            "PUT",
            "/manifests/",
            Fault::error(401, "UNAUTHORIZED", &[("WWW-Authenticate", &challenge)]),
        )
        .first(1),
    ]);
    let img = image(13, &[64 << 10], "v1");
    let a = push(&hoist, "/push/e2e/expired:v1", &img.tar)?;
    assert_eq!(a.status, 201, "{}\n{}", a.body, proxy.describe());
    let log = proxy.log();
    let puts: Vec<&Seen> = log
        .iter()
        .filter(|s| s.method == "PUT" && s.target.contains("/manifests/"))
        .collect();
    assert!(puts.len() >= 2, "{}", proxy.describe());
    assert_eq!(puts[0].status, Some(401), "{}", proxy.describe());
    assert_eq!(
        (puts[1].target.as_str(), puts[1].status),
        (puts[0].target.as_str(), Some(201)),
        "the refused PUT is sent again and accepted\n{}",
        proxy.describe()
    );
    assert!(puts[1..].iter().all(|p| p.status == Some(201)));
    let scope = "repository:e2e/expired:pull,push".to_string();
    let after: Vec<TokenRequest> = issuer
        .requests()
        .into_iter()
        .filter(|r| r.granted && r.scopes == [scope.clone()] && r.at > puts[0].at)
        .collect();
    assert_eq!(
        after.len(),
        1,
        "a new token after the 401, fetched once: {:?}",
        issuer.requests()
    );
    assert!(after[0].at < puts[1].at);
    assert_eq!(
        issuer.tags(&registry, "e2e/expired")?,
        vec!["v1".to_string()]
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Credentials from a docker config.json.

fn write_docker_config(dir: &Path, registry: &Registry, entry: Value) -> Result<PathBuf> {
    let file = dir.join("config.json");
    let config = json!({"auths": {registry.host(): entry}});
    std::fs::write(&file, serde_json::to_vec_pretty(&config)?)?;
    Ok(file)
}

/// `registry_auth_file` with an `identitytoken`: hoist exchanges it at the token realm as an
/// OAuth2 refresh token (POST, `grant_type=refresh_token`) and pushes with what it gets.
#[test]
fn registry_auth_file_identity_token_is_exchanged() -> Result<()> {
    let (issuer, registry) = token_rig(300)?;
    let dir = tempfile::tempdir()?;
    let file = write_docker_config(
        dir.path(),
        &registry,
        json!({"identitytoken": IDENTITY_TOKEN}),
    )?;
    let hoist = chatty_hoist(
        &registry.url(),
        &[("HOIST_REGISTRY_AUTH_FILE", file.to_str().unwrap())],
    )?;
    let img = image(14, &[64 << 10], "v1");
    let a = push(&hoist, "/push/e2e/idtok:v1", &img.tar)?;
    assert_eq!(a.status, 201, "{}\n{}", a.body, hoist.stderr());
    assert_eq!(issuer.tags(&registry, "e2e/idtok")?, vec!["v1".to_string()]);
    let reqs = issuer.requests();
    assert!(
        reqs.iter().any(|r| r.refresh
            && r.granted
            && r.scopes == ["repository:e2e/idtok:pull,push".to_string()]
            && r.service.as_deref() == Some("test-registry")),
        "no refresh-token grant for e2e/idtok: {reqs:?}"
    );
    assert!(
        reqs.iter().all(|r| r.refresh),
        "the identity token must be exchanged, never Basic credentials: {reqs:?}"
    );
    let mut secrets = vec![IDENTITY_TOKEN.to_string()];
    secrets.extend(issuer.issued());
    assert_no_secrets(&hoist, &[&a], &secrets);
    Ok(())
}

/// No credentials configured: `$DOCKER_CONFIG/config.json` is read (an `auth` entry, base64
/// `user:password`), as docker does.
#[test]
fn docker_config_env_is_the_fallback_for_credentials() -> Result<()> {
    let (registry, _htpasswd) = htpasswd_registry()?;
    let dir = tempfile::tempdir()?;
    write_docker_config(
        dir.path(),
        &registry,
        json!({"auth": basic_value(USER, PASSWORD)}),
    )?;
    let hoist = chatty_hoist(
        &registry.url(),
        &[("DOCKER_CONFIG", dir.path().to_str().unwrap())],
    )?;
    let img = image(15, &[64 << 10], "v1");
    let a = push(&hoist, "/push/e2e/dockercfg:v1", &img.tar)?;
    assert_eq!(a.status, 201, "{}\n{}", a.body, hoist.stderr());
    assert_eq!(
        basic_tags(&registry, "e2e/dockercfg"),
        vec!["v1".to_string()]
    );
    assert_no_secrets(
        &hoist,
        &[&a],
        &[PASSWORD.to_string(), basic_value(USER, PASSWORD)],
    );
    Ok(())
}

#[test]
fn token_auth_failed_push_cancels_its_upload_session() -> Result<()> {
    // distribution wants the `delete` action for DELETE on an upload session.
    let (issuer, registry) = token_rig(300)?;
    let hoist = chatty_hoist(&registry.url(), &right_credentials())?;
    let result = assert_failed_push_cancels_session(&registry, &hoist, "e2e/tok");
    if result.is_err() || std::thread::panicking() {
        eprintln!("token requests: {:?}", issuer.requests());
    }
    result
}
