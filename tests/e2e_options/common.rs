//! What several option tests share: a small OCI-layout archive.

use crate::support::archives::{self, OciShape};

pub fn oci_bytes(name: &str) -> archives::Built {
    archives::oci_layout(OciShape::Plain, name)
}
