//! The browser suite's own harness: Debian's `chromium`, headless, driven through its
//! `chromedriver` over WebDriver (the `fantoccini` crate), with helpers that read the upload
//! page the way a person sees it. Every wait polls a condition and is bounded.
//! [`links`] holds the loopback stand-ins between the browser and hoist: a slow link (so a
//! push lasts long enough to be seen) and a proxy that fails on its own; [`setups`] the
//! registries, tokens and archives the tests start from.

pub mod links;
pub mod setups;

use std::future::Future;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

use crate::support::{free_port, have};

/// How long a page may take to finish a push it was given.
pub const PUSH_WITHIN: Duration = Duration::from_secs(90);

/// Polls `probe` every 50 ms until it gives a value; panics naming `what` after `within`.
pub async fn wait_for<T, F, Fut>(what: &str, within: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "waited {within:?} for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A headless chromium behind its own chromedriver on a free loopback port; both are killed
/// (by the chromedriver's process group) when this is dropped.
pub struct Browser {
    driver: Child,
    pub client: Client,
}

impl Browser {
    /// Starts chromedriver and a browser session. A missing chromium or chromedriver fails
    /// the test: a browser test that skips itself tests nothing.
    pub async fn start() -> Browser {
        assert!(
            have("chromium") && have("chromedriver"),
            "the browser tests need chromium and chromedriver: install chromium chromium-driver \
             (apt-get install --no-install-recommends chromium chromium-driver; scripts/test.sh does)"
        );
        let port = free_port().expect("a free port");
        let driver = Command::new("chromedriver")
            .args([format!("--port={port}"), "--allowed-ips=127.0.0.1".into()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("starting chromedriver");
        let mut browser_args = vec![
            "--headless=new",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-proxy-server",
            "--window-size=1000,1500",
        ];
        // Chromium refuses to run its sandbox as root (CI containers).
        if current_uid() == 0 {
            browser_args.push("--no-sandbox");
        }
        let caps = json!({ "goog:chromeOptions": { "args": browser_args } });
        let caps = caps.as_object().expect("an object").clone();
        let url = format!("http://127.0.0.1:{port}");
        let client = wait_for(
            "chromedriver to start a session",
            Duration::from_secs(30),
            || {
                let caps = caps.clone();
                let url = url.clone();
                async move {
                    let mut builder = ClientBuilder::rustls().expect("rustls connector");
                    builder.capabilities(caps).connect(&url).await.ok()
                }
            },
        )
        .await;
        Browser { driver, client }
    }

    /// Opens the page at `url` and waits until its script has run.
    pub async fn open(&self, url: &str) {
        self.client.goto(url).await.expect("goto");
        wait_for("the page's script", Duration::from_secs(10), || async {
            let ready = self
                .client
                .execute("return typeof send === 'function'", vec![]);
            ready.await.ok().filter(|v| v == true)
        })
        .await;
    }

    pub async fn element(&self, id: &str) -> Element {
        let found = self.client.find(Locator::Id(id)).await;
        found.unwrap_or_else(|e| panic!("#{id}: {e}"))
    }

    /// The text a person sees in `#id` (empty when hidden).
    pub async fn text(&self, id: &str) -> String {
        self.element(id).await.text().await.expect("text")
    }

    pub async fn displayed(&self, id: &str) -> bool {
        self.element(id)
            .await
            .is_displayed()
            .await
            .expect("displayed")
    }

    pub async fn enabled(&self, id: &str) -> bool {
        self.element(id).await.is_enabled().await.expect("enabled")
    }

    /// Types into a field, replacing what it held.
    pub async fn fill(&self, id: &str, value: &str) {
        let field = self.element(id).await;
        field.clear().await.expect("clear");
        field.send_keys(value).await.expect("type");
    }

    /// Chooses the archive: WebDriver's stand-in for the system's file dialog.
    pub async fn choose_file(&self, path: &Path) {
        let input = self.element("file").await;
        input
            .send_keys(path.to_str().expect("utf-8 path"))
            .await
            .expect("choose file");
    }

    /// Presses keys on the keyboard, one after the other.
    pub async fn press(&self, keys: &[char]) {
        let mut actions = KeyActions::new("keyboard".into());
        for &key in keys {
            actions = actions
                .then(KeyAction::Down { value: key })
                .then(KeyAction::Up { value: key });
        }
        self.client
            .perform_actions(actions)
            .await
            .expect("key actions");
    }

    /// The id of the element that has the keyboard focus.
    pub async fn focused(&self) -> String {
        let active = self.client.active_element().await.expect("active element");
        active.attr("id").await.expect("id").unwrap_or_default()
    }

    /// Waits until the push ends: `Ok(result text)` or `Err((code, words, message))`.
    pub async fn outcome(&self) -> Result<String, (String, String, String)> {
        wait_for("the push to end", PUSH_WITHIN, || async {
            if self.displayed("result").await {
                return Some(Ok(self.text("result").await));
            }
            if self.displayed("failure").await {
                let code = self.text("error-code").await;
                let words = self.text("error-words").await;
                return Some(Err((code, words, self.text("error-message").await)));
            }
            None
        })
        .await
    }

    /// Saves what the browser shows as `target/page-screenshots/NAME.png`; returns the path.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/page-screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        let png = self.client.screenshot().await.expect("screenshot");
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        eprintln!("screenshot: {}", path.display());
        path
    }

    /// Ends the session (the browser quits), then chromedriver.
    pub async fn close(self) {
        let _ = self.client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The whole group: chromedriver and the browser processes it started.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .status();
        let _ = self.driver.wait();
    }
}

fn current_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").expect("/proc/self").uid()
}
