//! What the push and cancel tests share: waiting for the upload bar to be part way.

use crate::page_support::{Browser, PUSH_WITHIN, wait_for};

pub async fn wait_for_upload_part_way(browser: &Browser) {
    wait_for("the upload part way", PUSH_WITHIN, || async {
        let bar = "const bar = document.getElementById('upload-bar'); return [bar.value, bar.max]";
        let bar = browser.client.execute(bar, vec![]).await.ok()?;
        let (value, max) = (bar[0].as_f64()?, bar[1].as_f64()?);
        (value > 0.0 && value < max && max > 1e6).then_some(())
    })
    .await;
}
