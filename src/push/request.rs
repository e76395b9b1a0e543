//! What a caller asks of one push.

use crate::codec::LayerCompression;

/// Where the images go.
#[derive(Debug, Clone)]
pub enum Target {
    /// `/push/{repository}[:{tag}]`.
    Named {
        repository: String,
        tag: Option<String>,
    },
    /// `/push`: the names the archive carries.
    FromArchive,
}

/// One push, as asked.
#[derive(Debug, Clone)]
pub struct Request {
    pub target: Target,
    pub extra_tags: Vec<String>,
    pub layer_compression: LayerCompression,
}
