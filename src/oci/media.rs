//! Media types, and how a layer's encoding maps to one.

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";

/// How a layer's tar is stored: as it is, gzip or zstd.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LayerEncoding {
    Tar,
    Gzip,
    Zstd,
}

impl LayerEncoding {
    /// The layer media type; `docker` picks the docker schema 2 name where one exists.
    /// An uncompressed layer always gets the OCI type: Quay refuses the docker one.
    pub fn media_type(self, docker: bool) -> &'static str {
        match (self, docker) {
            (LayerEncoding::Gzip, true) => DOCKER_LAYER_GZIP,
            (LayerEncoding::Gzip, false) => OCI_LAYER_GZIP,
            (LayerEncoding::Zstd, _) => OCI_LAYER_ZSTD,
            (LayerEncoding::Tar, _) => OCI_LAYER,
        }
    }
}

/// Whether a config's media type says this is an image (with diff_ids to check), not an
/// artifact.
pub fn is_image_config(media_type: &str) -> bool {
    media_type == OCI_CONFIG || media_type == DOCKER_CONFIG
}
