//! End-to-end tests of who may push where (issue 7), against a real registry and a real
//! hoist process on loopback. Refused pushes must leave nothing tagged and no blob linked.
//!
//! - [`tokens`]: API tokens and their scopes (checked from the URL before the body, from the
//!   archive once its names are known), mounts only from repositories the client may push
//!   to, the tokens file re-read while running.
//! - [`oidc`]: CI identity tokens from a local OIDC issuer, and the attacks on them.
//! - [`gateway`]: pass-through to an htpasswd registry, the browser (Origin) defence, the
//!   per-client limit, and the refusal to run an open gateway off loopback.

mod gateway;
mod oidc;
#[path = "../support/mod.rs"]
mod support;
mod tokens;

use std::time::{Duration, Instant};

use support::Hoist;
use support::access::push_as;
use support::archives::{Image, image};

/// One gzip layer of `bytes` bytes of noise (distinct per `seed`), for pushes to `/push/REPO:TAG`.
fn small_image(seed: u64, bytes: usize) -> Image {
    image(seed, &[bytes], "v1")
}

/// Pushes until `want` is answered or `within` passes (hoist re-reads the tokens file once a
/// second; a held push frees its slot only once hoist sees it gone).
fn push_until(
    hoist: &Hoist,
    path: &str,
    auth: &str,
    img: &Image,
    want: u16,
    within: Duration,
) -> u16 {
    let deadline = Instant::now() + within;
    loop {
        let got = push_as(hoist, path, auth, &img.tar).status;
        if got == want || Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}
