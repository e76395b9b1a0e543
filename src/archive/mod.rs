//! Reading what clients upload: the one body feeder (`input`), sniffing and whole-archive
//! decompression (`decode`), the validated tar walk (`walk`), entry-name hygiene (`paths`)
//! and what names say (`names`). Knows nothing of registries or images.

pub mod decode;
mod error;
mod guard;
pub mod input;
pub mod names;
pub mod paths;
pub mod walk;

pub use error::ArchiveError;
