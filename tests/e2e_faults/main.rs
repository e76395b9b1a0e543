//! Fault injection between hoist and a real registry: a small HTTP/1.1 proxy on a loopback port
//! forwards to `docker-registry`, rewrites `Location` back to itself, and answers chosen
//! requests (by method, path and occurrence) with a fault instead: 503 + `Retry-After`, a 500
//! or a dropped connection in the middle of a PATCH body, a stall, a `Location` on another host,
//! an nginx HTML error page, or a body read slowly. Each case checks what hoist answers, that no
//! tag was written (read from the registry directly), that an open upload session was cancelled,
//! and that a clean push afterwards succeeds and skips what was committed.
//!
//! One module per kind of fault; the rig every case starts and the checks they share are in
//! `rig`.
//!
//! - `retries`: 503 and 429 answered to requests whose body is at hand, sent again after
//!   `Retry-After`.
//! - `mid_body`: a PATCH broken off mid-body (a 500, a dropped connection, an early 202).
//! - `stalls`: a registry that stops answering, and slow traffic that is not a stall.
//! - `locations`: upload Locations hoist must not follow.
//! - `refusals`: final answers (403, 404, an HTML error page) quoted and not retried.
//! - `commits`: faults on a blob's commit and on a mount.
//! - `chunked`: faults in chunked mode (`upload_chunk_bytes`).
//! - `backpressure`: a registry that stops reading holds the client back.
//! - `connect`: a registry that cannot be reached, or whose connect hangs.

mod backpressure;
mod chunked;
mod commits;
mod connect;
mod locations;
mod mid_body;
mod refusals;
mod retries;
mod rig;
mod stalls;

#[path = "../support/mod.rs"]
mod support;
