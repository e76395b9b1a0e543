//! End-to-end tests of who may push where (issue 7), against a real registry and a real
//! hoist process on loopback: API tokens and their scopes, the tokens file re-read while
//! running, CI identity tokens from a local OIDC issuer (and the attacks on them),
//! pass-through to an htpasswd registry, mounts only from repositories the client may push
//! to, the browser (Origin) defence, the per-client limit, and the refusal to run an open
//! gateway off loopback. Refused pushes must leave nothing tagged and no blob linked.

mod access_support;

use std::process::Command;
use std::time::{Duration, Instant};

use access_support::issuer::{Issuer, Signer, claims, now};
use access_support::*;
use serde_json::json;

/// `hoist token`: the token and the entry to paste.
fn new_token(name: &str, repositories: &[&str]) -> (String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hoist"));
    cmd.args(["token", "--name", name]);
    for r in repositories {
        cmd.args(["--repository", r]);
    }
    let out = cmd.output().expect("hoist token");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let token = text
        .lines()
        .find(|l| l.starts_with("hoist_"))
        .expect("a token line")
        .to_string();
    let entry = text.split_once("[[token]]").expect("an entry").1;
    assert!(!entry.contains(&token), "the entry holds only the digest");
    (token, format!("[[token]]{entry}"))
}

fn bearer(t: &str) -> String {
    format!("Bearer {t}")
}

fn tokens_config(path: &std::path::Path, extra: &str) -> String {
    format!(
        "{extra}\n[auth]\ntokens_file = {:?}\n",
        path.display().to_string()
    )
}

/// Nothing of `img` is tagged `tag` in `repo`, and none of its blobs is linked there.
fn assert_left_nothing(reg: &Registry, repo: &str, tag: &str, img: &Archive, auth: &str) {
    assert!(
        !reg.tags_as(repo, auth).contains(&tag.to_string()),
        "{repo}:{tag} was tagged"
    );
    for d in [&img.layer, &img.config, &img.manifest] {
        assert!(!reg.has_blob_as(repo, d, auth), "{d} is linked in {repo}");
    }
}

fn assert_no_secret(hoist: &Hoist, secrets: &[&str]) {
    let log = hoist.stderr();
    for s in secrets {
        assert!(!log.contains(s), "a credential reached the log");
    }
}

#[test]
fn tokens_push_within_their_scopes_and_refusals_leave_nothing() {
    let reg = Registry::start().unwrap();
    let (a, a_entry) = new_token("ci-team-a", &["team-a/**", "shared/base"]);
    let dir = tempfile::tempdir().unwrap();
    let file = path(&dir, "tokens.toml");
    std::fs::write(&file, &a_entry).unwrap();
    let hoist = Hoist::start(&reg.url(), &tokens_config(&file, ""), &[]).unwrap();
    let img = oci_archive(1, 64 << 10, None);

    let none = hoist.push("/push/team-a/app:v1", &[], &img.bytes);
    assert_eq!(
        (none.status, none.code().as_str()),
        (401, "UNAUTHORIZED"),
        "{}",
        none.text()
    );
    let challenges = none.header("www-authenticate").join(", ");
    assert!(
        challenges.contains("Bearer") && challenges.contains("Basic"),
        "{challenges}"
    );
    let wrong = hoist.push(
        "/push/team-a/app:v1",
        &[("Authorization", "Bearer hoist_nope")],
        &img.bytes,
    );
    assert_eq!((wrong.status, wrong.code().as_str()), (401, "UNAUTHORIZED"));
    assert_left_nothing(&reg, "team-a/app", "v1", &img, "");

    let ok = hoist.push(
        "/push/team-a/app:v1",
        &[("Authorization", &bearer(&a))],
        &img.bytes,
    );
    assert_eq!(ok.status, 201, "{}", ok.text());
    assert_eq!(ok.json()["client"], "ci-team-a");
    assert_eq!(ok.outcome(&img.layer), "uploaded");
    let via_basic = hoist.push(
        "/push/team-a/app:v2",
        &[("Authorization", &basic("ci", &a))],
        &img.bytes,
    );
    assert_eq!(via_basic.status, 201, "{}", via_basic.text());
    assert_eq!(reg.tags("team-a/app"), ["v1", "v2"]);

    // The URL's repository outside the scope: refused, nothing uploaded into it.
    let other = oci_archive(2, 64 << 10, None);
    let denied = hoist.push(
        "/push/prod/app:v1?tag=x",
        &[("Authorization", &bearer(&a))],
        &other.bytes,
    );
    assert_eq!(
        (denied.status, denied.code().as_str()),
        (403, "DENIED"),
        "{}",
        denied.text()
    );
    assert!(denied.text().contains("prod/app"), "{}", denied.text());
    assert_left_nothing(&reg, "prod/app", "v1", &other, "");

    // With /push the archive names the repository: checked once the names are known.
    let named = oci_archive(3, 64 << 10, Some("prod/app:v1"));
    let denied = hoist.push("/push", &[("Authorization", &bearer(&a))], &named.bytes);
    assert_eq!(
        (denied.status, denied.code().as_str()),
        (403, "DENIED"),
        "{}",
        denied.text()
    );
    assert_left_nothing(&reg, "prod/app", "v1", &named, "");
    let mine = oci_archive(4, 64 << 10, Some("team-a/named:v1"));
    let ok = hoist.push("/push", &[("Authorization", &bearer(&a))], &mine.bytes);
    assert_eq!(ok.status, 201, "{}", ok.text());
    assert_eq!(reg.tags("team-a/named"), ["v1"]);

    assert!(
        hoist.stderr().contains("ci-team-a"),
        "the client's name is logged"
    );
    assert_no_secret(&hoist, &[&a]);
}

#[test]
fn a_repository_outside_the_scope_is_refused_before_the_body() {
    let reg = Registry::start().unwrap();
    let (a, entry) = new_token("ci-team-a", &["team-a/**"]);
    let dir = tempfile::tempdir().unwrap();
    let file = path(&dir, "tokens.toml");
    std::fs::write(&file, entry).unwrap();
    let hoist = Hoist::start(&reg.url(), &tokens_config(&file, ""), &[]).unwrap();
    let started = Instant::now();
    let auth = bearer(&a);
    // 50 MB declared, not one byte sent: the answer can only come from the head.
    let mut s = open(
        &hoist.addr,
        "PUT",
        "/push/prod/app:v1",
        &[("Authorization", &auth)],
        Some(50_000_000),
    )
    .unwrap();
    let answer = read_answer(&mut s).unwrap();
    assert_eq!((answer.status, answer.code().as_str()), (403, "DENIED"));
    let mut s = open(
        &hoist.addr,
        "PUT",
        "/push/team-a/app:v1",
        &[],
        Some(50_000_000),
    )
    .unwrap();
    assert_eq!(read_answer(&mut s).unwrap().status, 401);
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn mounts_come_only_from_repositories_the_client_may_push_to() {
    let reg = Registry::start().unwrap();
    let (a, a_entry) = new_token("ci-team-a", &["team-a/**"]);
    let (b, b_entry) = new_token("ci-team-b", &["team-b/**"]);
    let dir = tempfile::tempdir().unwrap();
    let file = path(&dir, "tokens.toml");
    std::fs::write(&file, format!("{a_entry}\n{b_entry}")).unwrap();
    let hoist = Hoist::start(&reg.url(), &tokens_config(&file, ""), &[]).unwrap();
    let img = oci_archive(10, 256 << 10, None);
    let first = hoist.push(
        "/push/team-b/app:v1",
        &[("Authorization", &bearer(&b))],
        &img.bytes,
    );
    assert_eq!(first.status, 201, "{}", first.text());
    // team-b/app holds the blob, but team-a may not see it: the bytes are sent again.
    let a1 = hoist.push(
        "/push/team-a/app:v1",
        &[("Authorization", &bearer(&a))],
        &img.bytes,
    );
    assert_eq!(a1.status, 201, "{}", a1.text());
    assert_eq!(a1.outcome(&img.layer), "uploaded");
    assert_eq!(a1.outcome(&img.config), "uploaded");
    // From a repository of its own, a mount is fine.
    let a2 = hoist.push(
        "/push/team-a/other:v1",
        &[("Authorization", &bearer(&a))],
        &img.bytes,
    );
    assert_eq!(a2.status, 201, "{}", a2.text());
    assert_eq!(a2.outcome(&img.layer), "mounted");
}

/// Pushes until `want` is answered or `within` passes (the file is checked once a second).
fn push_until(
    hoist: &Hoist,
    path: &str,
    auth: &str,
    img: &Archive,
    want: u16,
    within: Duration,
) -> u16 {
    let deadline = Instant::now() + within;
    loop {
        let got = hoist
            .push(path, &[("Authorization", auth)], &img.bytes)
            .status;
        if got == want || Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn the_tokens_file_is_reread_while_running() {
    let reg = Registry::start().unwrap();
    let (a, a_entry) = new_token("a", &["team-a/**"]);
    let (c, c_entry) = new_token("c", &["team-c/**"]);
    let dir = tempfile::tempdir().unwrap();
    let file = path(&dir, "tokens.toml");
    std::fs::write(&file, &a_entry).unwrap();
    let mut hoist = Hoist::start(&reg.url(), &tokens_config(&file, ""), &[]).unwrap();
    let img = oci_archive(20, 16 << 10, None);
    assert_eq!(
        hoist
            .push(
                "/push/team-c/app:v1",
                &[("Authorization", &bearer(&c))],
                &img.bytes
            )
            .status,
        401
    );
    std::fs::write(&file, format!("{a_entry}\n{c_entry}")).unwrap();
    let within = Duration::from_secs(10);
    assert_eq!(
        push_until(
            &hoist,
            "/push/team-c/app:v1",
            &bearer(&c),
            &img,
            201,
            within
        ),
        201
    );
    // Revoked: gone from the file, refused without a restart.
    std::fs::write(&file, &c_entry).unwrap();
    assert_eq!(
        push_until(
            &hoist,
            "/push/team-a/app:v1",
            &bearer(&a),
            &img,
            401,
            within
        ),
        401
    );
    // A broken file keeps the last good table; SIGHUP re-reads and does not stop hoist.
    std::fs::write(&file, "[[token]\n").unwrap();
    let hup = Command::new("kill")
        .args(["-HUP", &hoist.pid().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    std::thread::sleep(Duration::from_millis(300));
    assert!(hoist.alive(), "SIGHUP must not stop hoist");
    assert_eq!(
        hoist
            .push(
                "/push/team-c/app:v2",
                &[("Authorization", &bearer(&c))],
                &img.bytes
            )
            .status,
        201
    );
    assert!(
        hoist.stderr().contains("last good one stays in force"),
        "{}",
        hoist.stderr()
    );
}

fn oidc_config(issuer: &str) -> String {
    format!(
        "[[auth.oidc]]\nissuer = {issuer:?}\naudience = \"hoist\"\nclaims = {{ ref_protected = \"true\" }}\nrepositories = [\"ci/{{repository_owner}}/**\"]\n"
    )
}

#[test]
fn ci_identity_tokens_from_a_local_issuer() {
    let reg = Registry::start().unwrap();
    let signer = Signer::new();
    let issuer = Issuer::start(signer.jwks());
    let hoist = Hoist::start(&reg.url(), &oidc_config(&issuer.url), &[]).unwrap();
    let rs = json!({"alg": "RS256", "typ": "JWT", "kid": "rsa-1"});
    let good = signer.sign(rs.clone(), &claims(&issuer.url, "acme"));
    let img = oci_archive(30, 64 << 10, None);
    let ok = hoist.push(
        "/push/ci/acme/app:v1",
        &[("Authorization", &bearer(&good))],
        &img.bytes,
    );
    assert_eq!(ok.status, 201, "{}", ok.text());
    assert_eq!(ok.json()["client"], "repo:acme/app:ref:refs/heads/main");
    let es = signer.sign(
        json!({"alg": "ES256", "kid": "ec-1"}),
        &claims(&issuer.url, "acme"),
    );
    let ok = hoist.push(
        "/push/ci/acme/app:v2",
        &[("Authorization", &basic("gitlab-ci-token", &es))],
        &img.bytes,
    );
    assert_eq!(ok.status, 201, "{}", ok.text());
    let denied = hoist.push(
        "/push/ci/other/app:v1",
        &[("Authorization", &bearer(&good))],
        &img.bytes,
    );
    assert_eq!((denied.status, denied.code().as_str()), (403, "DENIED"));

    let attacks = oidc_attacks(&signer, &issuer.url, &rs);
    for (i, (what, jwt, why)) in attacks.iter().enumerate() {
        let img = oci_archive(100 + i as u64, 16 << 10, None);
        let tag = format!("bad-{i}");
        let a = hoist.push(
            &format!("/push/ci/acme/app:{tag}"),
            &[("Authorization", &bearer(jwt))],
            &img.bytes,
        );
        assert_eq!(
            (a.status, a.code().as_str()),
            (401, "UNAUTHORIZED"),
            "{what}: {}",
            a.text()
        );
        assert!(a.text().contains(why), "{what}: {}", a.text());
        assert!(
            !a.text().contains(jwt.as_str()),
            "{what}: the answer echoes the token"
        );
        assert_left_nothing(&reg, "ci/acme/app", &tag, &img, "");
    }
    let jwts: Vec<&str> = attacks
        .iter()
        .map(|(_, j, _)| j.as_str())
        .chain([good.as_str(), es.as_str()])
        .collect();
    assert_no_secret(&hoist, &jwts);
}

/// Tokens a CI identity check must refuse: (what, the token, what the refusal says).
fn oidc_attacks(
    signer: &Signer,
    issuer: &str,
    rs: &serde_json::Value,
) -> Vec<(&'static str, String, &'static str)> {
    let c = |owner: &str| claims(issuer, owner);
    let without = |key: &str| {
        let mut v = c("acme");
        v.as_object_mut().unwrap().remove(key);
        v
    };
    let with = |key: &str, value: serde_json::Value| {
        let mut v = c("acme");
        v[key] = value;
        v
    };
    let stranger = Signer::new();
    // (what, the token, what the refusal says)
    vec![
        (
            "expired",
            signer.sign(rs.clone(), &with("exp", json!(now() - 600))),
            "expired",
        ),
        (
            "wrong audience",
            signer.sign(rs.clone(), &with("aud", json!("someone-else"))),
            "audience",
        ),
        (
            "wrong issuer",
            signer.sign(rs.clone(), &with("iss", json!("https://evil.example"))),
            "does not trust",
        ),
        (
            "another issuer's key",
            stranger.sign(rs.clone(), &c("acme")),
            "signature",
        ),
        (
            "unknown kid",
            signer.sign(json!({"alg": "RS256", "kid": "rsa-9"}), &c("acme")),
            "unknown kid",
        ),
        (
            "missing required claim",
            signer.sign(rs.clone(), &without("ref_protected")),
            "ref_protected",
        ),
        (
            "alg none",
            signer.sign(json!({"alg": "none", "kid": "rsa-1"}), &c("acme")),
            "not a valid JWT",
        ),
        (
            "HS256 with the public key",
            signer.sign(json!({"alg": "HS256", "kid": "rsa-1"}), &c("acme")),
            "RS256 or ES256 only",
        ),
        (
            "owner *",
            signer.sign(rs.clone(), &c("*")),
            "repository path component",
        ),
        (
            "owner with /",
            signer.sign(rs.clone(), &c("acme/prod")),
            "repository path component",
        ),
        (
            "owner ..",
            signer.sign(rs.clone(), &c("..")),
            "repository path component",
        ),
        (
            "owner upper case",
            signer.sign(rs.clone(), &c("Acme")),
            "repository path component",
        ),
    ]
}

#[test]
fn pass_through_pushes_with_each_clients_own_registry_credentials() {
    let reg = Registry::start_htpasswd(&[("alice", "alice-pw"), ("bob", "bob-pw")]).unwrap();
    let hoist = Hoist::start(&reg.url(), "[auth]\nmode = \"registry\"\n", &[]).unwrap();
    let alice = basic("alice", "alice-pw");
    let img = oci_archive(40, 64 << 10, None);
    let ok = hoist.push(
        "/push/alice/app:v1",
        &[("Authorization", &alice)],
        &img.bytes,
    );
    assert_eq!(ok.status, 201, "{}", ok.text());
    assert_eq!(ok.json()["client"], "alice");
    assert_eq!(reg.tags_as("alice/app", &alice), ["v1"]);
    // The registry refuses the client's own credentials: the client's 401, not a 502.
    let other = oci_archive(41, 64 << 10, None);
    let bad = hoist.push(
        "/push/alice/app:v2",
        &[("Authorization", &basic("alice", "wrong"))],
        &other.bytes,
    );
    assert_eq!(
        (bad.status, bad.code().as_str()),
        (401, "UNAUTHORIZED"),
        "{}",
        bad.text()
    );
    assert!(!bad.header("www-authenticate").is_empty());
    assert_left_nothing(&reg, "alice/app", "v2", &other, &alice);
    let none = hoist.push("/push/alice/app:v2", &[], &other.bytes);
    assert_eq!((none.status, none.code().as_str()), (401, "UNAUTHORIZED"));
    assert_left_nothing(&reg, "alice/app", "v2", &other, &alice);
    let bob = hoist.push(
        "/push/bob/app:v1",
        &[("Authorization", &basic("bob", "bob-pw"))],
        &img.bytes,
    );
    assert_eq!(bob.status, 201, "{}", bob.text());
    assert_eq!(bob.json()["client"], "bob");
    assert_no_secret(&hoist, &["alice-pw", "bob-pw", &alice]);
}

#[test]
fn a_browser_request_from_a_foreign_origin_is_refused_before_its_body() {
    let reg = Registry::start().unwrap();
    let config = "cors_allow_origins = [\"https://portal.example\"]\n";
    let hoist = Hoist::start(&reg.url(), config, &[]).unwrap();
    let form = [
        ("Content-Type", "multipart/form-data; boundary=x"),
        ("Origin", "https://evil.example"),
    ];
    let mut s = open(
        &hoist.addr,
        "POST",
        "/push/web/app:v1",
        &form,
        Some(50_000_000),
    )
    .unwrap();
    let a = read_answer(&mut s).unwrap();
    assert_eq!(
        (a.status, a.code().as_str()),
        (403, "ORIGIN_DENIED"),
        "{}",
        a.text()
    );
    let img = oci_archive(50, 16 << 10, None);
    assert_left_nothing(&reg, "web/app", "v1", &img, "");
    // hoist's own upload page, and the configured portal, may push; curl sends no Origin.
    let own = format!("http://{}", hoist.addr);
    for (origin, tag) in [(own.as_str(), "own"), ("https://portal.example", "portal")] {
        let a = hoist.push(
            &format!("/push/web/app:{tag}"),
            &[("Origin", origin)],
            &img.bytes,
        );
        assert_eq!(a.status, 201, "{origin}: {}", a.text());
    }
    assert_eq!(reg.tags("web/app"), ["own", "portal"]);
}

#[test]
fn an_open_gateway_off_loopback_refuses_to_start() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hoist"))
        .args([
            "serve",
            "--listen",
            "0.0.0.0:0",
            "--registry",
            "http://127.0.0.1:1",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "hoist kept running");
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!status.success());
    assert!(out.stdout.is_empty(), "it never listened");
    assert!(
        err.contains("anonymous = true") && err.contains("tokens_file"),
        "{err}"
    );
}

/// Whether hoist has answered on this connection (without waiting long for it).
fn answered(s: &std::net::TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
    let mut b = [0u8; 1];
    let got = matches!(s.peek(&mut b), Ok(n) if n > 0);
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    got
}

#[test]
fn one_client_cannot_take_every_slot() {
    let reg = Registry::start().unwrap();
    let (a, a_entry) = new_token("a", &["team-a/**"]);
    let (b, b_entry) = new_token("b", &["team-b/**"]);
    let dir = tempfile::tempdir().unwrap();
    let file = path(&dir, "tokens.toml");
    std::fs::write(&file, format!("{a_entry}\n{b_entry}")).unwrap();
    let config = tokens_config(&file, "max_concurrent_pushes = 4") + "max_pushes_per_client = 1\n";
    let hoist = Hoist::start(&reg.url(), &config, &[]).unwrap();
    let img = oci_archive(60, 16 << 10, None);
    let auth = bearer(&a);
    let deadline = Instant::now() + Duration::from_secs(20);
    // A's first push is admitted and then held: its head and a few bytes, no more. If it
    // lost the race to one of the pushes below (and was itself answered 429), open it again.
    let (busy, held) = loop {
        assert!(Instant::now() < deadline, "no 429 within 20 s");
        let headers = [("Authorization", auth.as_str())];
        let path = "/push/team-a/held:v1";
        let mut held = open(&hoist.addr, "PUT", path, &headers, Some(img.bytes.len())).unwrap();
        std::io::Write::write_all(&mut held, &img.bytes[..512]).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        if answered(&held) {
            continue;
        }
        let r = hoist.push("/push/team-a/app:v1", &headers, &img.bytes);
        if r.status == 429 && !answered(&held) {
            break (r, held);
        }
    };
    assert_eq!(
        (busy.status, busy.code().as_str()),
        (429, "TOO_MANY_REQUESTS"),
        "{}",
        busy.text()
    );
    assert!(!busy.header("retry-after").is_empty());
    let other = hoist.push(
        "/push/team-b/app:v1",
        &[("Authorization", &bearer(&b))],
        &img.bytes,
    );
    assert_eq!(
        other.status,
        201,
        "other clients are not held up: {}",
        other.text()
    );
    drop(held);
    let within = Duration::from_secs(10);
    assert_eq!(
        push_until(
            &hoist,
            "/push/team-a/app:v1",
            &bearer(&a),
            &img,
            201,
            within
        ),
        201
    );
}
