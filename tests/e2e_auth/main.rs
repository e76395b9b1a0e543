//! Authentication to the backend registry, end to end against the real `docker-registry`:
//! htpasswd Basic auth, and token auth with a token issuer run inside the test (it checks
//! Basic credentials, records the scopes asked for and signs real RS256 JWTs with an `x5c`
//! chain the registry verifies against its `rootcertbundle`). Secrets must never show up in
//! hoist's stderr or in its answers.
//!
//! - [`basic`]: htpasswd, right, wrong and no credentials.
//! - [`token`]: token auth, mounts with two scopes, wrong or no credentials.
//! - [`renewal`]: short-lived tokens renewed, a token refused mid-push.
//! - [`docker_config`]: credentials from a docker `config.json`.
//! - [`issuer`] and [`signer`]: the token issuer; [`common`]: what every test shares.

mod basic;
mod common;
mod docker_config;
mod issuer;
mod renewal;
mod signer;
mod token;

#[path = "../support/mod.rs"]
mod support;
