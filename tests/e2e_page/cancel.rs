//! Cancel mid-upload, reached with the keyboard: the page says cancelled in words, nothing is
//! tagged, no upload session is left open, and hoist still answers.

use std::time::Duration;

use fantoccini::key::Key;

use crate::common::wait_for_upload_part_way;
use crate::page_support::links::SlowLink;
use crate::page_support::setups::{archive_file, env};
use crate::page_support::{Browser, PUSH_WITHIN, wait_for};
use crate::support;
use crate::support::archives::image;
use crate::support::get_text;

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
