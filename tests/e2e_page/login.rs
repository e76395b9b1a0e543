//! Who pushes from the page: an API token asked for (a wrong one refused with 401, the right
//! one kept in no storage), and a registry login in pass-through mode (Basic, UTF-8).

use crate::page_support::Browser;
use crate::page_support::setups::{
    api_token, archive_file, htpasswd_registry, registry_digest, registry_digest_as,
};
use crate::support;
use crate::support::archives::image;
use crate::support::{Hoist, Registry};

/// With `[auth] tokens_file` the page asks for a token: a wrong one is refused (401
/// UNAUTHORIZED, in words) and tags nothing, the right one pushes, and the page keeps it in
/// no storage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_auth_on_the_page_asks_for_a_token_refuses_a_wrong_one_and_pushes_with_the_right_one()
{
    let reg = Registry::start().expect("registry starts");
    let dir = support::scratch();
    let (token, tokens_file) = api_token(&dir);
    let hoist = Hoist::options(&reg.url())
        .env("HOIST_AUTH__TOKENS_FILE", tokens_file.to_str().unwrap())
        .start()
        .expect("hoist starts");
    let img = image(73, &[200_000], "v1");
    let file = archive_file(&dir, "app.tar", &img.tar);
    let browser = Browser::start().await;
    browser.open(&hoist.url).await;
    assert!(browser.displayed("token").await, "the token field is shown");
    assert!(!browser.displayed("login-fields").await);
    browser.choose_file(&file).await;
    browser.fill("reference", "page/app:v1").await;

    browser.fill("token", "hoist_not-a-token").await;
    browser.element("push").await.click().await.expect("click");
    let (code, words, message) = browser.outcome().await.expect_err("refused");
    browser.screenshot("6-wrong-token").await;
    assert_eq!(code, "UNAUTHORIZED");
    assert!(words.starts_with("Refused"), "{words}");
    assert!(message.contains("HTTP 401"), "{message}");
    assert!(reg.all_tags().is_empty());

    browser.fill("token", &token).await;
    browser.element("push").await.click().await.expect("click");
    let result = browser.outcome().await.expect("the push succeeds");
    let digest = registry_digest(&reg, "page/app", "v1");
    assert!(
        result.contains(&format!("page/app:v1@{digest}")),
        "{result}"
    );
    assert!(result.contains("as page-user"), "{result}");
    let stored = browser
        .client
        .execute(
            "return [localStorage.length, sessionStorage.length, document.cookie, location.href]",
            vec![],
        )
        .await
        .expect("script");
    assert_eq!(stored[0], 0);
    assert_eq!(stored[1], 0);
    assert_eq!(stored[2], "");
    assert!(!stored[3].as_str().unwrap().contains(&token), "{stored}");
    browser.close().await;
}

/// Pass-through (`[auth] mode = "registry"`): the page asks for a registry login instead of a
/// token and sends it as Basic, UTF-8 and all; a wrong password is refused by the registry
/// (401 UNAUTHORIZED, in words) and the right one pushes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_pass_through_mode_the_page_asks_for_the_registry_login() {
    let dir = support::scratch();
    let (user, password) = ("alice", "pässwörd");
    let reg = htpasswd_registry(&dir, user, password);
    let hoist = Hoist::options(&reg.url())
        .env("HOIST_AUTH__MODE", "registry")
        .start()
        .expect("hoist starts");
    let img = image(75, &[200_000], "v1");
    let file = archive_file(&dir, "app.tar", &img.tar);
    let browser = Browser::start().await;
    browser.open(&hoist.url).await;
    assert!(browser.displayed("login-fields").await);
    assert!(!browser.displayed("token-field").await);
    browser.choose_file(&file).await;
    browser.fill("reference", "pass/app:v1").await;
    browser.fill("username", user).await;

    browser.fill("password", "wrong").await;
    browser.element("push").await.click().await.expect("click");
    let (code, words, _) = browser.outcome().await.expect_err("refused");
    assert_eq!(code, "UNAUTHORIZED");
    assert!(words.starts_with("Refused"), "{words}");

    browser.fill("password", password).await;
    browser.element("push").await.click().await.expect("click");
    let result = browser.outcome().await.expect("the push succeeds");
    let digest = registry_digest_as(&reg, &format!("{user}:{password}"), "pass/app", "v1");
    assert!(
        result.contains(&format!("pass/app:v1@{digest}")),
        "{result}"
    );
    assert!(result.contains("as alice"), "{result}");
    browser.close().await;
}
