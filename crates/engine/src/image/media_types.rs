//! Media types of OCI images and Docker schema2 images, and what they say:
//! manifest or index, layer or not, which compression, the equivalent in
//! the other family.

/// `application/vnd.oci.image.manifest.v1+json`
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// `application/vnd.oci.image.index.v1+json`
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// `application/vnd.oci.image.config.v1+json`
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// The empty descriptor's media type (`{}`), for artifacts.
pub const OCI_EMPTY: &str = "application/vnd.oci.empty.v1+json";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const OCI_LAYER_NONDISTRIBUTABLE_TAR: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar";
pub const OCI_LAYER_NONDISTRIBUTABLE_GZIP: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";
pub const OCI_LAYER_NONDISTRIBUTABLE_ZSTD: &str =
    "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd";

/// `application/vnd.docker.distribution.manifest.v2+json`
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// `application/vnd.docker.distribution.manifest.list.v2+json`
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// `application/vnd.docker.container.image.v1+json`
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// containerd's and BuildKit's (non-standard) zstd Docker layer.
pub const DOCKER_LAYER_ZSTD: &str = "application/vnd.docker.image.rootfs.diff.tar.zstd";
pub const DOCKER_LAYER_FOREIGN_TAR: &str = "application/vnd.docker.image.rootfs.foreign.diff.tar";
pub const DOCKER_LAYER_FOREIGN_GZIP: &str =
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
/// Schema 1 manifests: recognised only to be refused.
pub const DOCKER_MANIFEST_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1+json";
pub const DOCKER_MANIFEST_SCHEMA1_SIGNED: &str =
    "application/vnd.docker.distribution.manifest.v1+prettyjws";

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// An image manifest (OCI or Docker schema2).
pub fn is_manifest(media_type: &str) -> bool {
    matches!(media_type, OCI_MANIFEST | DOCKER_MANIFEST)
}

/// An index (OCI image index or Docker manifest list).
pub fn is_index(media_type: &str) -> bool {
    matches!(media_type, OCI_INDEX | DOCKER_MANIFEST_LIST)
}

/// An image config (OCI or Docker).
pub fn is_config(media_type: &str) -> bool {
    matches!(media_type, OCI_CONFIG | DOCKER_CONFIG)
}

/// A filesystem layer of either family, distributable or not.
pub fn is_layer(media_type: &str) -> bool {
    layer_compression(media_type).is_some()
}

/// A layer that registries may not hold (OCI non-distributable, Docker
/// foreign): its descriptor may carry `urls` to fetch it from.
pub fn is_nondistributable(media_type: &str) -> bool {
    matches!(
        media_type,
        OCI_LAYER_NONDISTRIBUTABLE_TAR
            | OCI_LAYER_NONDISTRIBUTABLE_GZIP
            | OCI_LAYER_NONDISTRIBUTABLE_ZSTD
            | DOCKER_LAYER_FOREIGN_TAR
            | DOCKER_LAYER_FOREIGN_GZIP
    )
}

/// The compression of a layer media type; `None` when it is not a layer.
pub fn layer_compression(media_type: &str) -> Option<Compression> {
    match media_type {
        OCI_LAYER_TAR
        | OCI_LAYER_NONDISTRIBUTABLE_TAR
        | DOCKER_LAYER_TAR
        | DOCKER_LAYER_FOREIGN_TAR => Some(Compression::None),
        OCI_LAYER_GZIP
        | OCI_LAYER_NONDISTRIBUTABLE_GZIP
        | DOCKER_LAYER_GZIP
        | DOCKER_LAYER_FOREIGN_GZIP => Some(Compression::Gzip),
        OCI_LAYER_ZSTD | OCI_LAYER_NONDISTRIBUTABLE_ZSTD | DOCKER_LAYER_ZSTD => {
            Some(Compression::Zstd)
        }
        _ => None,
    }
}

/// The media type hoist writes for a distributable layer.
pub fn layer_media_type(docker: bool, compression: Compression) -> &'static str {
    match (docker, compression) {
        (false, Compression::None) => OCI_LAYER_TAR,
        (false, Compression::Gzip) => OCI_LAYER_GZIP,
        (false, Compression::Zstd) => OCI_LAYER_ZSTD,
        (true, Compression::None) => DOCKER_LAYER_TAR,
        (true, Compression::Gzip) => DOCKER_LAYER_GZIP,
        (true, Compression::Zstd) => DOCKER_LAYER_ZSTD,
    }
}

/// Pairs of (OCI, Docker) media types that mean the same thing.
const EQUIVALENTS: &[(&str, &str)] = &[
    (OCI_MANIFEST, DOCKER_MANIFEST),
    (OCI_INDEX, DOCKER_MANIFEST_LIST),
    (OCI_CONFIG, DOCKER_CONFIG),
    (OCI_LAYER_TAR, DOCKER_LAYER_TAR),
    (OCI_LAYER_GZIP, DOCKER_LAYER_GZIP),
    (OCI_LAYER_ZSTD, DOCKER_LAYER_ZSTD),
    (OCI_LAYER_NONDISTRIBUTABLE_TAR, DOCKER_LAYER_FOREIGN_TAR),
    (OCI_LAYER_NONDISTRIBUTABLE_GZIP, DOCKER_LAYER_FOREIGN_GZIP),
];

/// The OCI media type equivalent to `media_type` (itself if already OCI);
/// `None` if it has none (e.g. an unknown or artifact type).
pub fn to_oci(media_type: &str) -> Option<&'static str> {
    EQUIVALENTS
        .iter()
        .find(|(oci, docker)| *oci == media_type || *docker == media_type)
        .map(|(oci, _)| *oci)
}

/// The Docker schema2 media type equivalent to `media_type` (itself if
/// already Docker); `None` if Docker has none (e.g. non-distributable zstd).
pub fn to_docker(media_type: &str) -> Option<&'static str> {
    EQUIVALENTS
        .iter()
        .find(|(oci, docker)| *oci == media_type || *docker == media_type)
        .map(|(_, docker)| *docker)
}

/// A Docker schema2 (not OCI) media type.
pub fn is_docker(media_type: &str) -> bool {
    media_type.starts_with("application/vnd.docker.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_media_types_classify() {
        assert!(is_manifest(OCI_MANIFEST) && is_manifest(DOCKER_MANIFEST));
        assert!(!is_manifest(OCI_INDEX) && !is_manifest(DOCKER_MANIFEST_SCHEMA1));
        assert!(is_index(OCI_INDEX) && is_index(DOCKER_MANIFEST_LIST));
        assert!(!is_index(OCI_MANIFEST));
        assert!(is_config(DOCKER_CONFIG) && !is_layer(DOCKER_CONFIG));
        assert!(is_nondistributable(DOCKER_LAYER_FOREIGN_GZIP));
        assert!(!is_nondistributable(OCI_LAYER_GZIP));
        assert_eq!(layer_compression(OCI_LAYER_TAR), Some(Compression::None));
        assert_eq!(
            layer_compression(DOCKER_LAYER_GZIP),
            Some(Compression::Gzip)
        );
        assert_eq!(
            layer_compression(OCI_LAYER_NONDISTRIBUTABLE_ZSTD),
            Some(Compression::Zstd)
        );
        assert_eq!(layer_compression(OCI_MANIFEST), None);
        assert_eq!(layer_compression("application/octet-stream"), None);
    }

    #[test]
    fn image_media_types_equivalents_round_trip() {
        for (oci, docker) in EQUIVALENTS {
            assert_eq!(to_docker(oci), Some(*docker));
            assert_eq!(to_oci(docker), Some(*oci));
            assert_eq!(to_oci(oci), Some(*oci));
            assert_eq!(layer_compression(oci), layer_compression(docker));
            assert!(is_docker(docker) && !is_docker(oci));
        }
        assert_eq!(to_docker(OCI_LAYER_NONDISTRIBUTABLE_ZSTD), None);
        assert_eq!(to_oci("application/vnd.example+json"), None);
        for c in [Compression::None, Compression::Gzip, Compression::Zstd] {
            assert_eq!(layer_compression(layer_media_type(false, c)), Some(c));
            assert_eq!(layer_compression(layer_media_type(true, c)), Some(c));
        }
    }
}
