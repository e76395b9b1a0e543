//! End-to-end tests of hoist's operating surface: the `hoist push` command, chunked upload
//! mode, the upload page and health route, load shedding (503 BUSY), CORS, config errors,
//! and a client that goes quiet. Real registry, real hoist process, loopback only.
//!
//! - [`push_command`]: `hoist push` from a file and from stdin.
//! - [`patches`]: chunked mode and `patch_content_length`.
//! - [`routes`]: the upload page, `/healthz`, CORS, `/metrics`.
//! - [`config`]: an unknown key, the shipped config file.
//! - [`load`]: BUSY, a quiet client, SIGTERM, memory over repeated pushes.
//! - [`pipeline`]: a forward symlink, mounts, a layer bomb.
//! - [`common`]: what several tests share.

mod common;
mod config;
mod load;
mod patches;
mod pipeline;
mod push_command;
mod routes;

#[path = "../support/mod.rs"]
mod support;
