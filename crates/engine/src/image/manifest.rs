//! Image manifests and indexes (OCI and Docker schema2 share one shape),
//! platform selection on an index, and [`AnyManifest`] for a document
//! whose kind is known only from its media type or content.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize};

use super::ImageError;
use super::canonical::{Document, Raw};
use super::descriptor::{Descriptor, Platform};
use super::media_types;
use super::platform::{Matcher, normalize};
use super::serde_util::{self, Extra, nullable};
use crate::digest::Digest;

/// Annotation BuildKit puts on attestation manifests in an index.
pub const REFERENCE_TYPE_ANNOTATION: &str = "vnd.docker.reference.type";
/// Annotation naming the image an attestation manifest is about.
pub const REFERENCE_DIGEST_ANNOTATION: &str = "vnd.docker.reference.digest";

/// An image manifest: a config and layers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Always 2 (schema 1 is refused on parse).
    #[serde(rename = "schemaVersion", deserialize_with = "schema_version_2")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(
        rename = "artifactType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    /// Always written, even empty (the field is required).
    #[serde(default, deserialize_with = "nullable")]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub annotations: BTreeMap<String, String>,
    #[serde(flatten, serialize_with = "serde_util::extra")]
    pub extra: Extra,
}

impl Document for Manifest {
    const KIND: &'static str = "manifest";
}

impl Manifest {
    /// A schema-2 manifest with the given media type (OCI or Docker).
    pub fn new(media_type: &str, config: Descriptor, layers: Vec<Descriptor>) -> Manifest {
        Manifest {
            schema_version: 2,
            media_type: Some(media_type.to_string()),
            artifact_type: None,
            config,
            layers,
            subject: None,
            annotations: BTreeMap::new(),
            extra: Extra::new(),
        }
    }

    /// The media type, OCI's when the document does not say.
    pub fn media_type(&self) -> &str {
        self.media_type
            .as_deref()
            .unwrap_or(media_types::OCI_MANIFEST)
    }
}

/// An image index (OCI) or manifest list (Docker): manifests per platform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Index {
    #[serde(rename = "schemaVersion", deserialize_with = "schema_version_2")]
    pub schema_version: u32,
    #[serde(rename = "mediaType", default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    #[serde(
        rename = "artifactType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub artifact_type: Option<String>,
    #[serde(deserialize_with = "nullable")]
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Descriptor>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub annotations: BTreeMap<String, String>,
    #[serde(flatten, serialize_with = "serde_util::extra")]
    pub extra: Extra,
}

impl Document for Index {
    const KIND: &'static str = "index";
}

impl Index {
    pub fn new(media_type: &str, manifests: Vec<Descriptor>) -> Index {
        Index {
            schema_version: 2,
            media_type: Some(media_type.to_string()),
            artifact_type: None,
            manifests,
            subject: None,
            annotations: BTreeMap::new(),
            extra: Extra::new(),
        }
    }

    /// The media type, OCI's when the document does not say.
    pub fn media_type(&self) -> &str {
        self.media_type.as_deref().unwrap_or(media_types::OCI_INDEX)
    }

    /// The entries that are images, not attestations (BuildKit marks those
    /// with a `vnd.docker.reference.type` annotation).
    pub fn images(&self) -> impl Iterator<Item = &Descriptor> {
        self.manifests
            .iter()
            .filter(|d| !d.annotations.contains_key(REFERENCE_TYPE_ANNOTATION))
    }

    /// The manifest to use for `wanted`, as BuildKit picks a base image
    /// (containerd's `platforms.Only`): the exact platform if present, else
    /// the most preferred one it can run (see [`super::platform`]); among
    /// equals, the first in the index. Attestations are skipped. An entry
    /// without a platform is taken only when nothing matched.
    pub fn manifest_for(&self, wanted: &Platform) -> Option<&Descriptor> {
        self.select_with(&Matcher::compatible(wanted))
    }

    /// Like [`Index::manifest_for`], accepting only `wanted` itself
    /// (after normalisation: `arm64/v8` is `arm64`).
    pub fn manifest_for_strict(&self, wanted: &Platform) -> Option<&Descriptor> {
        self.select_with(&Matcher::strict(wanted))
    }

    /// [`Index::manifest_for`], or an error listing what the index offers.
    pub fn select(&self, wanted: &Platform) -> Result<&Descriptor, ImageError> {
        self.manifest_for(wanted).ok_or_else(|| {
            let offered: Vec<String> = self
                .images()
                .filter_map(|d| d.platform.as_ref())
                .map(|p| normalize(p).to_string())
                .collect();
            ImageError::NoMatchingPlatform {
                wanted: wanted.to_string(),
                available: if offered.is_empty() {
                    "no platforms".to_string()
                } else {
                    offered.join(", ")
                },
            }
        })
    }

    fn select_with(&self, matcher: &Matcher) -> Option<&Descriptor> {
        let best = self
            .images()
            .filter_map(|d| Some((matcher.rank(d.platform.as_ref()?)?, d)))
            .min_by_key(|(rank, _)| *rank)
            .map(|(_, d)| d);
        best.or_else(|| self.images().find(|d| d.platform.is_none()))
    }
}

fn schema_version_2<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    let v = u32::deserialize(d)?;
    if v == 2 {
        Ok(v)
    } else {
        Err(serde::de::Error::custom(format!(
            "unsupported schemaVersion {v} (only 2 is supported)"
        )))
    }
}

/// A manifest or an index, as pulled by reference before its kind is known.
#[derive(Debug, Clone, PartialEq)]
pub enum AnyManifest {
    Manifest(Box<Raw<Manifest>>),
    Index(Box<Raw<Index>>),
}

impl AnyManifest {
    /// Parse `bytes`, deciding the kind from `media_type` (e.g. the
    /// `Content-Type` a registry sent) if it names a manifest or index, else
    /// from the document's own `mediaType`, else from its shape
    /// (`manifests` means an index, `config` a manifest).
    pub fn parse(
        bytes: impl Into<Vec<u8>>,
        media_type: Option<&str>,
    ) -> Result<AnyManifest, ImageError> {
        let bytes = bytes.into();
        let kind = match media_type {
            Some(mt) if media_types::is_manifest(mt) => Some(false),
            Some(mt) if media_types::is_index(mt) => Some(true),
            _ => None,
        };
        let is_index = match kind {
            Some(k) => k,
            None => sniff(&bytes)?,
        };
        if is_index {
            Raw::parse(bytes).map(|i| AnyManifest::Index(Box::new(i)))
        } else {
            Raw::parse(bytes).map(|m| AnyManifest::Manifest(Box::new(m)))
        }
    }

    pub fn digest(&self) -> &Digest {
        match self {
            AnyManifest::Manifest(m) => m.digest(),
            AnyManifest::Index(i) => i.digest(),
        }
    }

    pub fn bytes(&self) -> &[u8] {
        match self {
            AnyManifest::Manifest(m) => m.bytes(),
            AnyManifest::Index(i) => i.bytes(),
        }
    }

    pub fn media_type(&self) -> &str {
        match self {
            AnyManifest::Manifest(m) => m.media_type(),
            AnyManifest::Index(i) => i.media_type(),
        }
    }
}

/// Is this JSON an index (true) or a manifest (false)?
fn sniff(bytes: &[u8]) -> Result<bool, ImageError> {
    #[derive(Deserialize)]
    struct Shape {
        #[serde(rename = "mediaType", default)]
        media_type: Option<String>,
        #[serde(default)]
        manifests: Option<serde::de::IgnoredAny>,
        #[serde(default)]
        config: Option<serde::de::IgnoredAny>,
    }
    let shape: Shape = serde_json::from_slice(bytes).map_err(|source| ImageError::Parse {
        kind: "manifest or index",
        digest: Digest::of(bytes),
        source,
    })?;
    match shape.media_type.as_deref() {
        Some(mt) if media_types::is_index(mt) => return Ok(true),
        Some(mt) if media_types::is_manifest(mt) => return Ok(false),
        _ => {}
    }
    match (shape.manifests.is_some(), shape.config.is_some()) {
        (true, false) => Ok(true),
        (false, true) => Ok(false),
        _ => Err(ImageError::NotAManifest {
            digest: Digest::of(bytes),
            media_type: shape.media_type,
        }),
    }
}
