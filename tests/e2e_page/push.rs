//! A push through the page over a slow link: progress while it runs, then
//! `repository:tag@digest` and the blob counts, read back from the registry; the raw answer
//! folded behind a toggle; pushed again, every blob already there.

use crate::common::wait_for_upload_part_way;
use crate::page_support::links::SlowLink;
use crate::page_support::setups::{archive_file, env, registry_digest};
use crate::page_support::{Browser, PUSH_WITHIN, wait_for};
use crate::support;
use crate::support::archives::image;

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
