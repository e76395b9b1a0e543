//! A thin client for the OCI distribution API, shaped for streaming: HEAD, mount, one PATCH
//! carrying a whole blob (watched for stalls), PUT `?digest=`, manifests; upload sessions that
//! cancel themselves; hoist's own credentials. See `shared/reference/registry-protocol.md`.

mod auth;
mod client;
pub mod credentials;
mod error;
mod manifest;
mod observe;
mod probe;
mod session;
mod stall;
mod upload;

pub use client::{Registry, Settings, SetupError, Started, Upload};
pub use credentials::Credentials;
pub use error::RegistryError;
pub use manifest::Manifest;
pub use session::Session;
pub use stall::Progress;
