//! The image model, with no I/O: digests, references, media types and the documents
//! (manifests, indexes, configs, docker `manifest.json`) an archive holds.

pub mod digest;
pub mod document;
pub mod media;
pub mod reference;

pub use digest::{Digest, Sha256};
pub use document::{Descriptor, DockerImage, Document, ImageConfig, strict_json};
pub use media::LayerEncoding;
