//! What a successful push must have produced: repository, tags, layer compression, whether
//! the archive's manifest survived byte for byte, blob outcomes, the body size.

/// How the pushed layers must be compressed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Layers {
    /// gzip: `tar+gzip` (OCI) or `rootfs.diff.tar.gzip` (docker).
    Gzip,
    /// zstd: `tar+zstd` (OCI only).
    Zstd,
    /// uncompressed: `application/vnd.oci.image.layer.v1.tar`.
    Tar,
}

/// What a successful push must have produced.
pub(crate) struct Expect<'a> {
    pub(crate) repository: &'a str,
    pub(crate) tags: &'a [&'a str],
    pub(crate) layers: Layers,
    /// The oci-archive's manifest was pushed as it is (its digest unchanged), or hoist
    /// rewrote it (uncompressed docker layers compressed or re-typed).
    pub(crate) byte_exact: bool,
    /// Blob outcomes must all be `exists` (a repeat push), or all `uploaded`/`mounted`.
    pub(crate) all_exist: bool,
    /// For a raw body: its size, which must be `bytes_received`.
    pub(crate) body_size: Option<u64>,
}

/// A docker-archive whose uncompressed layers hoist gzips: a new manifest.
pub(crate) fn docker_gzip<'a>(repository: &'a str, tags: &'a [&'a str]) -> Expect<'a> {
    Expect {
        repository,
        tags,
        layers: Layers::Gzip,
        byte_exact: false,
        all_exist: false,
        body_size: None,
    }
}

/// An oci-archive whose gzip layers pass through: the archive's manifest, byte-exact.
pub(crate) fn oci_exact<'a>(repository: &'a str, tags: &'a [&'a str]) -> Expect<'a> {
    Expect {
        repository,
        tags,
        layers: Layers::Gzip,
        byte_exact: true,
        all_exist: false,
        body_size: None,
    }
}
