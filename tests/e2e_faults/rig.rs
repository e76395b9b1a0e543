//! The rig every case starts (registry, fault proxy, hoist) and the checks the cases share:
//! nothing tagged, the faulted upload session cancelled, a clean push afterwards that skips
//! what was committed.

use std::time::{Duration, Instant};

use anyhow::Result;

use crate::support::archives::{Image, image};
use crate::support::fault_proxy::{Proxy, Seen};
use crate::support::{Answer, Hoist, Registry, push_bytes, tail};

/// The repository every case pushes to.
pub const REPO: &str = "e2e/faults";

/// A registry, the fault proxy in front of it, and hoist pushing through the proxy.
pub struct Rig {
    pub registry: Registry,
    pub proxy: Proxy,
    pub hoist: Hoist,
}

impl Rig {
    /// Starts the three, hoist with `env` and its trace log.
    pub fn start(env: &[(&str, &str)]) -> Result<Rig> {
        let registry = Registry::start()?;
        let proxy = Proxy::start(&registry.url())?;
        let hoist = Hoist::options(&proxy.url())
            .envs(env)
            .log("hoist=trace,info")
            .start()?;
        Ok(Rig {
            registry,
            proxy,
            hoist,
        })
    }

    /// Pushes an archive to `REPO:v1`.
    pub fn push(&self, img: &Image) -> Result<Answer> {
        push_bytes(&self.hoist, &format!("/push/{REPO}:v1"), &img.tar)
    }

    /// What hoist answered, what the proxy saw and hoist's log, for failure messages.
    pub fn context(&self, a: &Answer) -> String {
        format!(
            "answer: {} {}\nproxy saw:\n  {}\nhoist stderr (tail):\n{}",
            a.status,
            a.body,
            self.proxy.describe(),
            tail(&self.hoist.stderr(), 30)
        )
    }

    /// Nothing tagged, read from the registry itself (not through the proxy).
    pub fn assert_no_tag(&self, a: &Answer) {
        let tags = self.registry.tags(REPO);
        assert!(
            tags.is_empty(),
            "a failed push wrote tags {tags:?}\n{}",
            self.context(a)
        );
    }

    /// The upload session whose PATCH met the fault was cancelled.
    pub fn assert_patch_session_cancelled(&self, a: &Answer) {
        self.assert_session_cancelled(a, "PATCH");
    }

    /// The upload session whose `method` request met the fault was cancelled: hoist sent a
    /// DELETE on its URL, the registry answered it 2xx, and its storage holds no open session.
    pub fn assert_session_cancelled(&self, a: &Answer, method: &str) {
        let log = self.proxy.log();
        let faulted = log
            .iter()
            .find(|s| s.method == method && s.fault.is_some())
            .unwrap_or_else(|| panic!("no {method} met the fault\n{}", self.context(a)));
        let path = faulted.path().to_string();
        // The DELETE is best effort and may come just after the answer.
        let deadline = Instant::now() + Duration::from_secs(5);
        let delete = loop {
            let deletes: Vec<Seen> = self
                .proxy
                .log()
                .into_iter()
                .filter(|s| s.method == "DELETE" && s.path() == path && s.status.is_some())
                .collect();
            if let Some(d) = deletes.last() {
                break d.clone();
            }
            if Instant::now() > deadline {
                panic!(
                    "the upload session {path} was not cancelled (no DELETE)\n{}",
                    self.context(a)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(
            matches!(delete.status, Some(200..=299)),
            "the DELETE on {path} was answered {:?}, not 2xx: the session is still open\n{}",
            delete.status,
            self.context(a)
        );
        self.registry
            .assert_no_open_uploads(method, Duration::from_secs(5));
    }

    /// A clean push afterwards: 201, the tag, and every blob the registry already had is
    /// reported `exists` (not sent again), the others `uploaded`.
    pub fn assert_clean_push_skips_committed(&self, img: &Image) -> Result<Answer> {
        self.proxy.set_rules(Vec::new());
        let blobs: Vec<&String> = img.layers.iter().chain([&img.config]).collect();
        let committed: Vec<bool> = blobs
            .iter()
            .map(|d| self.registry.has_blob(REPO, d))
            .collect();
        let a = self.push(img)?;
        assert_eq!(a.status, 201, "clean push failed\n{}", self.context(&a));
        for (d, had) in blobs.iter().zip(&committed) {
            let want = if *had { "exists" } else { "uploaded" };
            assert_eq!(
                a.outcome(d),
                want,
                "blob {d} (committed before: {had})\n{}",
                self.context(&a)
            );
        }
        let patches = self
            .proxy
            .log()
            .iter()
            .filter(|s| s.method == "PATCH")
            .count();
        let expected = committed.iter().filter(|c| !**c).count();
        assert_eq!(
            patches,
            expected,
            "one PATCH per blob not yet committed\n{}",
            self.context(&a)
        );
        assert_eq!(self.registry.tags(REPO), vec!["v1".to_string()]);
        Ok(a)
    }
}

/// Two 1 MiB layers pushed one at a time, so the first is committed before the second fails.
pub fn two_layers(seed: u64) -> Image {
    image(seed, &[1 << 20, 1 << 20], "v1")
}

/// One blob in flight at a time (`max_inflight_blobs = 1`).
pub const ONE_AT_A_TIME: (&str, &str) = ("HOIST_MAX_INFLIGHT_BLOBS", "1");
