//! Failures shown in words: a refused reference and a bad archive with their codes (nothing
//! tagged), and answers that are not hoist's: a proxy's HTML 502 and a lost connection.

use crate::page_support::Browser;
use crate::page_support::links::{BAD_GATEWAY_PAGE, FailingProxy, Failure};
use crate::page_support::setups::{archive_file, env};
use crate::support;
use crate::support::archives::{image, image_corrupt};
use crate::support::get_text;

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
