//! Hostile archives against a real `hoist serve` and a real registry.
//!
//! Each case starts from a tiny valid image (`Oci::valid`, `Docker::valid` in
//! `support/archives/raw.rs`) and breaks one thing. For every rejection we check the contract
//! of docs/API.md: the status, the stable `error.code`, that the message names the entry or
//! digest at fault, that nothing was tagged, that no upload session was left open, and that
//! hoist still accepts a valid push afterwards. The `valid` tests push the unbroken images (and
//! the legitimate shapes hostile cases imitate: symlinked layers, forward links, `./` prefixes,
//! multi-member gzip) so the rejections are meaningful.
//!
//! The cases are grouped by what is broken, one module each; `env` holds the harness that
//! checks the rejection contract, `bodies` the archive builders several groups share.

mod bodies;
mod clients;
mod completeness;
mod digests;
mod documents;
mod duplicates;
mod env;
mod headers;
mod limits;
mod links;
mod paths;
mod references;
mod structure;
mod valid;

#[path = "../support/mod.rs"]
mod support;
