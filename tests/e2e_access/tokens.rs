//! API tokens and their scopes: refusals without a valid token, pushes within the scope,
//! the scope checked from the URL (before the body) and from the archive's names, mounts
//! only from repositories the client may push to, the tokens file re-read while running.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::access::{
    TokenGateway, assert_left_nothing, assert_no_secret, basic, bearer, new_token, push_as,
};
use crate::support::archives::{Image, image};
use crate::support::{hold_request, read_answer};
use crate::{push_until, small_image};

#[test]
fn tokens_push_within_their_scopes_and_refusals_leave_nothing() {
    let (a, entry) = new_token("ci-team-a", &["team-a/**", "shared/base"]);
    let g = TokenGateway::start(&[&entry], "", "");
    let img = small_image(1, 64 << 10);
    refused_without_a_valid_token(&g, &img);
    pushes_with_the_token_as_bearer_or_basic(&g, &a, &img);
    refused_outside_the_scope_the_url_names(&g, &a);
    checked_against_the_scope_once_the_archive_names_are_known(&g, &a);
    assert!(
        g.hoist.stderr().contains("ci-team-a"),
        "the client's name is logged"
    );
    assert_no_secret(&g.hoist, &[&a]);
}

/// No credentials, or a token hoist does not know: 401 with both challenges, nothing pushed.
fn refused_without_a_valid_token(g: &TokenGateway, img: &Image) {
    let none = push_as(&g.hoist, "/push/team-a/app:v1", "", &img.tar);
    assert_eq!(
        (none.status, none.code()),
        (401, "UNAUTHORIZED"),
        "{}",
        none.text()
    );
    let challenges = none.header_values("www-authenticate").join(", ");
    assert!(
        challenges.contains("Bearer") && challenges.contains("Basic"),
        "{challenges}"
    );
    let wrong = push_as(
        &g.hoist,
        "/push/team-a/app:v1",
        "Bearer hoist_nope",
        &img.tar,
    );
    assert_eq!((wrong.status, wrong.code()), (401, "UNAUTHORIZED"));
    assert_left_nothing(&g.registry, "team-a/app", "v1", img, "");
}

/// The token pushes into its scope, as a Bearer token or as a Basic password; the answer
/// names the client.
fn pushes_with_the_token_as_bearer_or_basic(g: &TokenGateway, token: &str, img: &Image) {
    let ok = push_as(&g.hoist, "/push/team-a/app:v1", &bearer(token), &img.tar);
    assert_eq!(ok.status, 201, "{}", ok.text());
    assert_eq!(ok.body["client"], "ci-team-a");
    assert_eq!(ok.outcome(&img.layers[0]), "uploaded");
    let via_basic = push_as(
        &g.hoist,
        "/push/team-a/app:v2",
        &basic("ci", token),
        &img.tar,
    );
    assert_eq!(via_basic.status, 201, "{}", via_basic.text());
    assert_eq!(g.registry.tags("team-a/app"), ["v1", "v2"]);
}

/// The URL's repository outside the scope: refused, naming it, nothing uploaded into it.
fn refused_outside_the_scope_the_url_names(g: &TokenGateway, token: &str) {
    let other = small_image(2, 64 << 10);
    let denied = push_as(
        &g.hoist,
        "/push/prod/app:v1?tag=x",
        &bearer(token),
        &other.tar,
    );
    assert_eq!(
        (denied.status, denied.code()),
        (403, "DENIED"),
        "{}",
        denied.text()
    );
    assert!(denied.text().contains("prod/app"), "{}", denied.text());
    assert_left_nothing(&g.registry, "prod/app", "v1", &other, "");
}

/// With `/push` the archive names the repository: checked once the names are known.
fn checked_against_the_scope_once_the_archive_names_are_known(g: &TokenGateway, token: &str) {
    let named = image(3, &[64 << 10], "prod/app:v1");
    let denied = push_as(&g.hoist, "/push", &bearer(token), &named.tar);
    assert_eq!(
        (denied.status, denied.code()),
        (403, "DENIED"),
        "{}",
        denied.text()
    );
    assert_left_nothing(&g.registry, "prod/app", "v1", &named, "");
    let mine = image(4, &[64 << 10], "team-a/named:v1");
    let ok = push_as(&g.hoist, "/push", &bearer(token), &mine.tar);
    assert_eq!(ok.status, 201, "{}", ok.text());
    assert_eq!(g.registry.tags("team-a/named"), ["v1"]);
}

#[test]
fn a_repository_outside_the_scope_is_refused_before_the_body() {
    let (a, entry) = new_token("ci-team-a", &["team-a/**"]);
    let g = TokenGateway::start(&[&entry], "", "");
    let started = Instant::now();
    let auth = bearer(&a);
    // 50 MB declared, not one byte sent: the answer can only come from the head.
    let headers = [("Authorization", auth.as_str())];
    let mut s = hold_request(
        &g.hoist,
        "PUT",
        "/push/prod/app:v1",
        &headers,
        50_000_000,
        b"",
    );
    let answer = read_answer(&mut s).expect("an answer before the body");
    assert_eq!((answer.status, answer.code()), (403, "DENIED"));
    let mut s = hold_request(&g.hoist, "PUT", "/push/team-a/app:v1", &[], 50_000_000, b"");
    assert_eq!(read_answer(&mut s).expect("an answer").status, 401);
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn mounts_come_only_from_repositories_the_client_may_push_to() {
    let (a, a_entry) = new_token("ci-team-a", &["team-a/**"]);
    let (b, b_entry) = new_token("ci-team-b", &["team-b/**"]);
    let g = TokenGateway::start(&[&a_entry, &b_entry], "", "");
    let img = small_image(10, 256 << 10);
    let first = push_as(&g.hoist, "/push/team-b/app:v1", &bearer(&b), &img.tar);
    assert_eq!(first.status, 201, "{}", first.text());
    // team-b/app holds the blob, but team-a may not see it: the bytes are sent again.
    let a1 = push_as(&g.hoist, "/push/team-a/app:v1", &bearer(&a), &img.tar);
    assert_eq!(a1.status, 201, "{}", a1.text());
    assert_eq!(a1.outcome(&img.layers[0]), "uploaded");
    assert_eq!(a1.outcome(&img.config), "uploaded");
    // From a repository of its own, a mount is fine.
    let a2 = push_as(&g.hoist, "/push/team-a/other:v1", &bearer(&a), &img.tar);
    assert_eq!(a2.status, 201, "{}", a2.text());
    assert_eq!(a2.outcome(&img.layers[0]), "mounted");
}

#[test]
fn the_tokens_file_is_reread_while_running() {
    let (a, a_entry) = new_token("a", &["team-a/**"]);
    let (c, c_entry) = new_token("c", &["team-c/**"]);
    let mut g = TokenGateway::start(&[&a_entry], "", "");
    let img = small_image(20, 16 << 10);
    let (a, c) = (bearer(&a), bearer(&c));
    let status = push_as(&g.hoist, "/push/team-c/app:v1", &c, &img.tar).status;
    assert_eq!(status, 401);
    std::fs::write(&g.file, format!("{a_entry}\n{c_entry}")).unwrap();
    let within = Duration::from_secs(10);
    let added = push_until(&g.hoist, "/push/team-c/app:v1", &c, &img, 201, within);
    assert_eq!(added, 201);
    // Revoked: gone from the file, refused without a restart.
    std::fs::write(&g.file, &c_entry).unwrap();
    let revoked = push_until(&g.hoist, "/push/team-a/app:v1", &a, &img, 401, within);
    assert_eq!(revoked, 401);
    // A broken file keeps the last good table; SIGHUP re-reads and does not stop hoist.
    std::fs::write(&g.file, "[[token]\n").unwrap();
    let hup = Command::new("kill")
        .args(["-HUP", &g.hoist.pid().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    std::thread::sleep(Duration::from_millis(300));
    assert!(g.hoist.alive(), "SIGHUP must not stop hoist");
    let kept = push_as(&g.hoist, "/push/team-c/app:v2", &c, &img.tar).status;
    assert_eq!(kept, 201);
    assert!(
        g.hoist.stderr().contains("last good one stays in force"),
        "{}",
        g.hoist.stderr()
    );
}
