//! A thin client for the OCI distribution API, shaped for streaming: HEAD, mount, one PATCH
//! carrying a whole blob, PUT `?digest=`, manifests. See `shared/reference/registry-protocol.md`.

mod auth;
mod client;
mod error;
mod upload;

pub use client::{Registry, Started, Upload};
pub use error::RegistryError;
