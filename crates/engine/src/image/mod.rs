//! The OCI image model: hoist's own serde types for manifests, indexes,
//! image configs, descriptors and `docker save` archives.
//!
//! Why not `oci-spec`: it serialises maps from `HashMap` (unstable digests),
//! drops unknown fields and loses Docker's config fields (`Healthcheck`,
//! `OnBuild`, `Shell`, ...). Here every map is a `BTreeMap`, every object
//! keeps the fields it does not know in a flattened `extra` map, and
//! serialisation is canonical ([`to_canonical_json`]).
//!
//! - [`media_types`]: OCI and Docker schema2 media types and their helpers.
//! - [`descriptor`]: [`Descriptor`] and [`Platform`].
//! - [`manifest`]: [`Manifest`], [`Index`], [`AnyManifest`].
//! - [`platform`]: containerd's platform normalisation and matching, used by
//!   [`Index::manifest_for`].
//! - [`config`]: [`ImageConfig`] and its [`RunConfig`] (Docker's JSON names).
//! - [`docker_archive`]: `manifest.json` and `repositories` of `docker save`.
//! - [`layout`]: the `oci-layout` file.
//! - [`canonical`]: [`to_canonical_json`] and [`Raw`], a parsed document that
//!   keeps the exact bytes (and so the digest) it came from.
//!
//! **Invariant:** the same value always serialises to the same bytes:
//! struct fields in declaration order, map keys sorted (also inside unknown
//! fields kept as `serde_json::Value`), compact, no HTML escaping.
//!
//! **Invariant:** a document read from elsewhere (a registry, a layout, a
//! tarball) is held as [`Raw`] and written back with its original bytes, so
//! its digest never changes by passing through hoist.

pub mod canonical;
pub mod config;
pub mod descriptor;
pub mod docker_archive;
pub mod layout;
pub mod manifest;
pub mod media_types;
pub mod platform;
mod serde_util;

#[cfg(test)]
mod tests;

pub use canonical::{Document, Raw, to_canonical_json};
pub use config::{HealthConfig, History, ImageConfig, RootFs, RunConfig};
pub use descriptor::{Descriptor, Platform};
pub use docker_archive::{ArchiveEntry, ArchiveManifest, Repositories};
pub use layout::OciLayout;
pub use manifest::{AnyManifest, Index, Manifest};
pub use media_types::Compression;

use crate::digest::Digest;

/// Errors of the image model. Messages are lower-case and name the
/// document kind and its digest where there is one.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("cannot parse {kind} {digest}: {source}")]
    Parse {
        kind: &'static str,
        digest: Digest,
        #[source]
        source: serde_json::Error,
    },
    #[error("cannot serialise {kind}: {source}")]
    Serialise {
        kind: &'static str,
        #[source]
        source: serde_json::Error,
    },
    #[error("{kind} has digest {actual}, expected {expected}")]
    DigestMismatch {
        kind: &'static str,
        expected: Digest,
        actual: Digest,
    },
    #[error("{kind} {digest} is {actual} bytes, expected {expected}")]
    SizeMismatch {
        kind: &'static str,
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error(
        "document {digest} is neither an image manifest nor an index (media type {media_type:?})"
    )]
    NotAManifest {
        digest: Digest,
        media_type: Option<String>,
    },
    /// BuildKit's words (containerd's `no match for platform in manifest`),
    /// then what was wanted and what the index has.
    #[error(
        "no match for platform in manifest: not found (no image for {wanted}; it has {available})"
    )]
    NoMatchingPlatform { wanted: String, available: String },
    #[error("invalid platform {0:?}: expected os/arch[/variant]")]
    InvalidPlatform(String),
    #[error("invalid image reference {0:?} in repositories: expected name:tag")]
    InvalidRepoTag(String),
}
