//! `hoist push` as a user and a CI job run it: progress on a terminal (a pty from `script`)
//! and in a pipe, `--quiet`, `--json`, exit codes, `--dry-run`, `--platform`, and the cache
//! of blob locations that lets a second process mount what a first one pushed. A real
//! registry on loopback; every result is read back from the registry.
//!
//! - [`progress`]: the bar on a terminal, lines in a pipe, `--quiet`.
//! - [`results`]: `--json`, `--dry-run`, `--platform`.
//! - [`exit_codes`]: 2, 3, 64 and 66.
//! - [`cache`]: the location cache file.
//! - [`common`]: what every test shares.

mod cache;
mod common;
mod exit_codes;
mod progress;
mod results;

#[path = "../support/mod.rs"]
mod support;
