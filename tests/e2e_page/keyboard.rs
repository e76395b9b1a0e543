//! The page with the keyboard alone: Tab through every field in order, arrow keys to pick
//! zstd, Enter to push, focus on the result; the registry's layers are zstd.

use fantoccini::key::Key;

use crate::page_support::Browser;
use crate::page_support::setups::{archive_file, env, registry_digest};
use crate::support;
use crate::support::archives::{self, DupLink};

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
