//! Every archive form, pushed through a real `hoist serve` into a real registry and read back
//! with the registry API and skopeo.
//!
//! - `fixtures`: the fixtures in `support/archives/` are shaped like the tools' output (no
//!   hoist, no registry needed); `dump_fixtures` (ignored) writes them out.
//! - `readback`: the harness (push, read back from the registry and with skopeo) and its check
//!   against a third-party pusher.
//! - `docker_archives`, `oci_layouts`: each form pushed and read back.

mod docker_archives;
mod fixtures;
mod oci_layouts;
mod readback;

#[path = "../support/mod.rs"]
mod support;
