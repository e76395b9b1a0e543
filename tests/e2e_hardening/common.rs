//! What the hardening tests share: a registry and hoist with chosen settings, a push that
//! must get an answer, the OCI media types, and an OCI layout named by its index.

use serde_json::json;

use crate::support::archives::*;
use crate::support::{Answer, Hoist, Registry, push_bytes};

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

pub fn env(vars: &[(&str, &str)]) -> (Registry, Hoist) {
    let reg = Registry::start().expect("registry starts");
    let hoist = Hoist::with_env(&reg.url(), vars).expect("hoist starts");
    (reg, hoist)
}

pub fn push(hoist: &Hoist, path: &str, body: &[u8]) -> Answer {
    push_bytes(hoist, path, body).expect("curl runs")
}

/// An OCI layout whose index names the image `name` (`io.containerd.image.name`).
pub fn named(mut oci: Oci, name: &str) -> Oci {
    oci.index["manifests"][0]["annotations"]["io.containerd.image.name"] = json!(name);
    oci
}
