//! The cache's format, version 1 (documented in `docs/cache.md`).
//!
//! A cache is one OCI image manifest (an artifact):
//!
//! ```text
//! manifest  mediaType  application/vnd.oci.image.manifest.v1+json
//!           artifactType  application/vnd.hoist.cache.v1
//!           config  application/vnd.hoist.cache.config.v1+json  → CacheConfig
//!           layers  the layer blobs the records name (shared with images
//!                   pushed to the same registry: same digests), then the
//!                   tars of exported cache-mount directories
//! ```
//!
//! The config maps hoist's step cache keys to layers. A step that made no
//! layer (an empty `RUN`) has a record without one. `type=inline` puts
//! the same records (without mounts) in the image config under
//! [`INLINE_KEY`], with `blob` indexes into the image's own layers.
//!
//! **Invariant:** a reader refuses a `version` it does not know (the
//! import is skipped with a warning; the build goes on without it).

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::image::Descriptor;

pub const ARTIFACT_TYPE: &str = "application/vnd.hoist.cache.v1";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.hoist.cache.config.v1+json";
/// A `RUN --mount=type=cache` directory as a tar blob.
pub const MOUNT_MEDIA_TYPE: &str = "application/vnd.hoist.cache.mount.v1.tar+gzip";
/// The image-config key of an inline cache.
pub const INLINE_KEY: &str = "hoist.cache.v1";
pub const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheConfig {
    pub version: u32,
    pub steps: Vec<StepRecord>,
    /// What the files a `COPY --from` reads hash to, by the source's
    /// content (its ChainID), so an importing build need not fetch a
    /// stage's layers to compute the key of a step that copies from it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<SourceRecord>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<MountRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRecord {
    pub key: String,
    pub digest: Digest,
}

/// One step: its cache key and the layer it made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// hoist's cache key of the step (`sha256:…`).
    pub key: String,
    /// Index of the blob in the manifest's `layers`; `None`: no layer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob: Option<usize>,
    /// The layer as the build's image lists it (hoist's stores keep built
    /// layers uncompressed: a `tar` descriptor whose digest is the
    /// diff_id); the blob carries the same tar, compressed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layer: Option<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff_id: Option<Digest>,
    /// The history time of the step, so a hit gives the same image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
}

/// One exported `RUN --mount=type=cache` directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountRecord {
    /// The store's name for the directory (the hash of its id and owner).
    pub dir: String,
    pub blob: usize,
}

/// A cache config this hoist cannot read.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// Not the JSON of a cache config.
    #[error("cache config: {0}")]
    Json(#[source] serde_json::Error),
    /// Another version of the format.
    #[error("cache format version {0} (this hoist reads {VERSION})")]
    Version(u32),
}

impl CacheConfig {
    pub fn parse(bytes: &[u8]) -> Result<CacheConfig, FormatError> {
        let config: CacheConfig = serde_json::from_slice(bytes).map_err(FormatError::Json)?;
        if config.version != VERSION {
            return Err(FormatError::Version(config.version));
        }
        Ok(config)
    }
}
