//! Reading what clients upload: sniffing and whole-archive decompression (`decode`), the
//! validated tar walk (`walk`), entry-name hygiene (`paths`) and the image-archive metadata
//! formats (`layout`). Knows nothing of registries.

pub mod decode;
mod error;
pub mod layout;
pub mod paths;
pub mod walk;

pub use error::ArchiveError;
