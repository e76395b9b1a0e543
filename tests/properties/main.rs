//! Property suite (issue 8): generated and mutated input against the parsers that see
//! client bytes first (reference and digest parsing, manifest parsing, the decode stage, the
//! tar walk, image resolution), and the layer gzip hoist writes (`layer_gzip`: one member that
//! inflates to the layer, the same bytes however the layer is handed over). Every property
//! holds for any input: never a panic, never memory beyond a cap, always a clean typed error;
//! where the input is well formed, the result is what was generated.
//!
//! Short by default (proptest's 256 cases per property, a few seconds in the suite);
//! `scripts/fuzz.sh` runs the same properties long (`PROPTEST_CASES`). A failure prints the
//! smallest input proptest shrank it to, and `proptest-regressions/` keeps it for the next run.

mod decode;
mod documents;
mod layer_gzip;
mod memory;
mod references;
mod resolve;
mod walk;

#[path = "../support/mod.rs"]
mod support;
