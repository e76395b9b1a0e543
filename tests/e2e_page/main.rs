//! The upload page (`GET /`) in a real browser: headless chromium through WebDriver, pushing
//! through the page as a person would, checking what the page says and reading the result
//! back from the registry. Screenshots (before, during, after a push, of failures and of a
//! cancelled push) go to `target/page-screenshots/`.
//!
//! - [`push`]: a push shown live, then its result, read back.
//! - [`cancel`]: Cancel mid-upload.
//! - [`failures`]: a refused reference, a bad archive, a proxy's 502, a lost connection.
//! - [`login`]: a token asked for, a registry login in pass-through mode.
//! - [`keyboard`]: keyboard-only use.
//! - [`common`]: what several tests share; the browser harness is `tests/page_support/`.

mod cancel;
mod common;
mod failures;
mod keyboard;
mod login;
mod push;

#[path = "../page_support/mod.rs"]
mod page_support;
#[path = "../support/mod.rs"]
mod support;
