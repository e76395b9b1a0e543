//! The attacks a review of the shared gateway found (issue "Hardening the shared gateway"),
//! one test per numbered finding, each against a real registry and a real `hoist serve`.
//! Run against the commit before the fixes (dc6c9d8, with this harness copied in), every test
//! here failed but `refused_multipart_uploads_are_answered_not_reset`: the reset the review
//! saw in 1 of 30 pushes did not reproduce there, so that one is a guard, not a proof.
//!
//! - [`mounts`]: foreign layers by mount (finding 1).
//! - [`manifests`]: a manifest bomb, Docker 25+ manifests, config names, references
//!   (findings 2, 6, 11).
//! - [`slow_clients`]: silent and slow-drip clients, refused uploads answered (findings 3,
//!   4, 10).
//! - [`entries`]: tar header extensions, xz memory, sparse entries, long strings cut
//!   (findings 5, 10).
//! - [`tags`]: tag counts, all or nothing, ambiguity, an unknown parameter (findings 7-9).
//! - [`common`]: what every test shares.

mod common;
mod entries;
mod manifests;
mod mounts;
mod slow_clients;
mod tags;

#[path = "../support/mod.rs"]
mod support;
