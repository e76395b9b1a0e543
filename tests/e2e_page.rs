//! The upload page (`GET /`) in a real browser: headless chromium through WebDriver, pushing
//! through the page as a person would, checking what the page says and reading the result
//! back from the registry. Screenshots (before, during, after a push, of failures and of a
//! cancelled push) go to `target/page-screenshots/`.

mod page_support;
mod support;

use std::time::Duration;

use fantoccini::key::Key;

use page_support::links::{BAD_GATEWAY_PAGE, FailingProxy, Failure, SlowLink};
use page_support::setups::{
    api_token, archive_file, env, htpasswd_registry, registry_digest, registry_digest_as,
};
use page_support::{Browser, PUSH_WITHIN, wait_for};
use support::archives::{self, DupLink, image, image_corrupt};
use support::{Hoist, Registry, get_text};

/// A push through the page over a slow link (4 MB/s, a 29 MB archive): while it runs the page
/// shows bytes sent to hoist and to the registry and the button is disabled; at the end it
/// shows `repository:tag@digest` per tag, the blob counts and the seconds, and the registry
/// holds that image. Pushed again (straight to hoist), every blob is "already there".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_through_the_page_shows_progress_then_ref_at_digest_and_is_in_the_registry() {
    let (reg, hoist) = env();
    let link = SlowLink::start(&hoist.addr(), 4_000_000);
    let dir = support::scratch();
    let img = image(71, &[14 << 20, 14 << 20], "v1");
    let file = archive_file(&dir, "app.tar", &img.tar);
    let browser = Browser::start().await;
    browser.open(&link.url).await;
    assert!(
        !browser.displayed("token-field").await,
        "no token without auth"
    );
    browser.choose_file(&file).await;
    browser.fill("reference", "page/app:v1").await;
    browser.fill("tags", "extra, latest").await;
    browser.screenshot("1-before-push").await;

    browser.element("push").await.click().await.expect("click");
    watch_the_push_in_flight(&browser).await;

    let result = browser.outcome().await.expect("the push succeeds");
    browser.screenshot("4-after-push").await;
    let digest = registry_digest(&reg, "page/app", "v1");
    for tag in ["v1", "extra", "latest"] {
        assert!(
            result.contains(&format!("page/app:{tag}@{digest}")),
            "{result}"
        );
    }
    assert!(
        result.contains("Blobs: 3 uploaded, 0 already there, 0 mounted."),
        "{result}"
    );
    assert!(result.contains(" seconds"), "{result}");
    // Counted from the stream's `blob` events (the two layers; the config is pushed from
    // memory), apart from the report's counts above.
    let registry = browser.text("registry-text").await;
    assert!(registry.ends_with(" sent, 2 layers done"), "{registry}");
    assert!(browser.enabled("push").await);
    assert!(
        !browser.displayed("cancel").await,
        "no Cancel after the push"
    );
    let mut tags = reg.tags("page/app");
    tags.sort();
    assert_eq!(tags, ["extra", "latest", "v1"]);
    for blob in img.layers.iter().chain([&img.config]) {
        assert!(reg.has_blob("page/app", blob), "{blob}");
    }
    assert_raw_answer_behind_a_toggle(&browser).await;

    browser.open(&hoist.url).await;
    browser.choose_file(&file).await;
    browser.fill("reference", "page/app:v1").await;
    browser.element("push").await.click().await.expect("click");
    let again = browser.outcome().await.expect("the second push succeeds");
    assert!(
        again.contains("Blobs: 0 uploaded, 3 already there, 0 mounted."),
        "{again}"
    );
    browser.close().await;
}

/// While the push runs: the upload bar part way (screenshot), then bytes sent to the registry
/// (screenshot); the button disabled all along, Cancel offered, the status not yet saying
/// how it ended.
async fn watch_the_push_in_flight(browser: &Browser) {
    wait_for_upload_part_way(browser).await;
    browser.screenshot("2-during-upload").await;
    assert!(
        !browser.enabled("push").await,
        "the button is disabled while pushing"
    );
    // Chromium reads hoist's streamed answer once the archive has left it (HTTP/1.1), so the
    // registry's side shows from then on, while hoist is still sending blobs.
    wait_for("bytes sent to the registry", PUSH_WITHIN, || async {
        let registry = browser.text("registry-text").await;
        (!registry.is_empty() && !registry.starts_with("0 B")).then_some(())
    })
    .await;
    browser.screenshot("3-during-push").await;
    assert!(
        !browser.enabled("push").await,
        "the button is disabled while pushing"
    );
    assert!(
        browser.displayed("cancel").await && browser.enabled("cancel").await,
        "Cancel is there while hoist pushes to the registry"
    );
    let status = browser.text("status").await;
    assert!(
        !status.starts_with("Pushed") && !status.starts_with("Failed"),
        "{status}"
    );
}

/// Cancel while the archive is on its way (slow link): Cancel shows only during the push and
/// is reached with Tab and pressed with Enter; the page then says the push was cancelled and
/// nothing tagged (no success, no failure), Push is back, the registry holds no tag and no
/// open upload session, and hoist still answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_during_the_upload_stops_the_push_and_tags_nothing() {
    let (reg, hoist) = env();
    let link = SlowLink::start(&hoist.addr(), 2_000_000);
    let dir = support::scratch();
    let img = image(76, &[8 << 20, 8 << 20], "v1");
    let file = archive_file(&dir, "app.tar", &img.tar);
    let browser = Browser::start().await;
    browser.open(&link.url).await;
    assert!(
        !browser.displayed("cancel").await,
        "no Cancel before a push"
    );
    browser.choose_file(&file).await;
    browser.fill("reference", "cancel/app:v1").await;
    browser.element("push").await.click().await.expect("click");
    wait_for_upload_part_way(&browser).await;
    assert!(browser.displayed("cancel").await && browser.enabled("cancel").await);
    // hoist already streams the first layer to the registry: there is a session to close.
    wait_for("an upload session in the registry", PUSH_WITHIN, || async {
        (!reg.open_uploads().is_empty()).then_some(())
    })
    .await;

    // From the last field, Tab skips the disabled Push and lands on Cancel.
    let focus = "document.getElementById('compression').focus()";
    browser.client.execute(focus, vec![]).await.expect("focus");
    browser.press(&[char::from(Key::Tab)]).await;
    assert_eq!(
        browser.focused().await,
        "cancel",
        "Cancel is keyboard reachable"
    );
    browser.press(&[char::from(Key::Enter)]).await;

    wait_for("the cancelled state", PUSH_WITHIN, || async {
        browser.displayed("cancelled").await.then_some(())
    })
    .await;
    browser.screenshot("10-cancelled").await;
    let words = browser.text("cancelled").await;
    assert!(words.contains("Cancelled: nothing was tagged"), "{words}");
    let status = browser.text("status").await;
    assert!(status.starts_with("Cancelled"), "{status}");
    assert!(!browser.displayed("result").await, "never a success");
    assert!(!browser.displayed("failure").await);
    assert_eq!(browser.focused().await, "cancelled-heading");
    assert!(browser.enabled("push").await, "Push is back");
    assert!(
        !browser.displayed("cancel").await,
        "Cancel goes with the push"
    );

    reg.assert_no_open_uploads("cancelled from the page", Duration::from_secs(15));
    assert!(reg.all_tags().is_empty(), "{:?}", reg.all_tags());
    get_text(&format!("{}/healthz", hoist.url)).expect("hoist still answers");
    // The page shows nothing new later: no success arrives after the cancel.
    assert!(!browser.displayed("result").await, "never a success");
    browser.close().await;
}

async fn wait_for_upload_part_way(browser: &Browser) {
    wait_for("the upload part way", PUSH_WITHIN, || async {
        let bar = "const bar = document.getElementById('upload-bar'); return [bar.value, bar.max]";
        let bar = browser.client.execute(bar, vec![]).await.ok()?;
        let (value, max) = (bar[0].as_f64()?, bar[1].as_f64()?);
        (value > 0.0 && value < max && max > 1e6).then_some(())
    })
    .await;
}

/// The raw answer is there but folded away; opened, it is the NDJSON stream ending in `done`.
async fn assert_raw_answer_behind_a_toggle(browser: &Browser) {
    assert!(browser.displayed("raw").await);
    assert!(!browser.displayed("raw-text").await, "folded at first");
    browser
        .client
        .find(fantoccini::Locator::Css("#raw summary"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let raw = browser.text("raw-text").await;
    let last = raw.lines().last().unwrap_or_default();
    let last: serde_json::Value = serde_json::from_str(last).expect("an NDJSON line");
    assert_eq!(last["event"], "done", "{raw}");
}

/// A reference hoist refuses before the push (400 and a JSON body) and an archive whose layer
/// does not match its digest (an `error` event mid-stream): each shown with its code and in
/// words, and nothing is tagged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_request_and_a_bad_archive_are_shown_with_their_codes_and_nothing_is_tagged() {
    let (reg, hoist) = env();
    let dir = support::scratch();
    let img = image_corrupt(72, &[300_000], "v1");
    let file = archive_file(&dir, "corrupt.tar", &img.tar);
    let browser = Browser::start().await;
    browser.open(&hoist.url).await;
    browser.choose_file(&file).await;

    browser.fill("reference", "Bad/Repo:1").await;
    browser.element("push").await.click().await.expect("click");
    let (code, words, message) = browser.outcome().await.expect_err("refused");
    assert_eq!(code, "REFERENCE_INVALID");
    assert!(
        words.contains("repository, tags or options were refused"),
        "{words}"
    );
    assert!(message.contains("HTTP 400"), "{message}");
    assert!(
        browser
            .text("status")
            .await
            .starts_with("Failed: REFERENCE_INVALID")
    );

    browser.fill("reference", "bad/app:v1").await;
    browser.element("push").await.click().await.expect("click");
    let (code, words, message) = browser.outcome().await.expect_err("refused");
    browser.screenshot("5-bad-archive").await;
    assert_eq!(code, "DIGEST_MISMATCH");
    assert!(words.contains("not a valid image archive"), "{words}");
    assert!(
        message.contains(&img.layers[0]) || message.contains("digest"),
        "{message}"
    );
    assert_eq!(
        browser.focused().await,
        "failure-heading",
        "focus goes to the failure"
    );
    assert!(browser.enabled("push").await);
    assert!(reg.all_tags().is_empty(), "{:?}", reg.all_tags());
    browser.close().await;
}

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

/// Answers that are not hoist's: a proxy's HTML 502 page is told as such with its status, and
/// a connection dropped mid-upload as a lost connection; the button comes back each time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_error_page_and_a_dropped_connection_are_told_in_words() {
    let (_reg, hoist) = env();
    let page = get_text(&format!("{}/", hoist.url)).expect("hoist's page");
    let dir = support::scratch();
    let img = image(74, &[400_000], "v1");
    let file = archive_file(&dir, "app.tar", &img.tar);
    let browser = Browser::start().await;

    let proxy = FailingProxy::start(page.clone(), Failure::HtmlBadGateway);
    browser.open(&proxy.url).await;
    browser.choose_file(&file).await;
    browser.fill("reference", "page/app:v1").await;
    browser.element("push").await.click().await.expect("click");
    let (code, words, _) = browser.outcome().await.expect_err("a 502");
    browser.screenshot("7-proxy-502").await;
    assert_eq!(code, "HTTP 502");
    assert!(words.contains("proxy or load balancer"), "{words}");
    let raw = browser
        .element("raw-text")
        .await
        .prop("textContent")
        .await
        .unwrap();
    assert_eq!(
        raw.as_deref(),
        Some(BAD_GATEWAY_PAGE),
        "the page quoted as text"
    );
    assert!(browser.enabled("push").await);

    let proxy = FailingProxy::start(page, Failure::Drop);
    browser.open(&proxy.url).await;
    browser.choose_file(&file).await;
    browser.element("push").await.click().await.expect("click");
    let (code, words, _) = browser.outcome().await.expect_err("a dropped connection");
    browser.screenshot("8-connection-lost").await;
    assert_eq!(code, "NETWORK_LOST");
    assert!(words.contains("connection to hoist was lost"), "{words}");
    assert!(browser.enabled("push").await);
    browser.close().await;
}

/// Keyboard only: Tab reaches every field in order, arrow keys pick zstd, Enter on the
/// button pushes, focus lands on the result; the registry's manifest has zstd layers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_works_with_the_keyboard_alone() {
    let (reg, hoist) = env();
    let dir = support::scratch();
    let legacy = archives::legacy(DupLink::Symlink);
    let file = archive_file(&dir, "legacy.tar", &legacy.bytes);
    let browser = Browser::start().await;
    browser.open(&hoist.url).await;
    let tab = char::from(Key::Tab);

    browser.press(&[tab]).await;
    assert_eq!(browser.focused().await, "file", "the archive comes first");
    browser.choose_file(&file).await;
    browser.press(&[tab]).await;
    assert_eq!(browser.focused().await, "reference");
    browser
        .press(&"kbd/app:1".chars().collect::<Vec<_>>())
        .await;
    browser.press(&[tab]).await;
    assert_eq!(browser.focused().await, "tags");
    browser.press(&"two".chars().collect::<Vec<_>>()).await;
    browser.press(&[tab]).await;
    assert_eq!(browser.focused().await, "compression");
    browser
        .press(&[char::from(Key::Down), char::from(Key::Down)])
        .await;
    let value = browser
        .element("compression")
        .await
        .prop("value")
        .await
        .unwrap();
    assert_eq!(value.as_deref(), Some("zstd"));
    browser.press(&[tab]).await;
    assert_eq!(browser.focused().await, "push");
    browser.press(&[char::from(Key::Enter)]).await;

    let result = browser.outcome().await.expect("the push succeeds");
    browser.screenshot("9-keyboard-push").await;
    assert_eq!(
        browser.focused().await,
        "result-heading",
        "focus goes to the result"
    );
    let digest = registry_digest(&reg, "kbd/app", "1");
    assert!(result.contains(&format!("kbd/app:1@{digest}")), "{result}");
    assert!(
        result.contains(&format!("kbd/app:two@{digest}")),
        "{result}"
    );
    let (manifest, _) = reg.manifest("kbd/app", "1").unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    for layer in manifest["layers"].as_array().unwrap() {
        let media_type = layer["mediaType"].as_str().unwrap();
        assert!(media_type.ends_with("+zstd"), "{media_type}");
    }
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
