//! What image blobs reference, and the walk from roots (refs, cache
//! records) through indexes, manifests and configs to layers and snapshot
//! chain ids. GC marks with it, `check` and `tag` test completeness with
//! it, `list_images` sizes images with it.
//!
//! The JSON is read generically (`serde_json::Value`) in [`references`]
//! and [`config_facts`], the two functions to switch to the typed image
//! model once it exists.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::Store;
use super::error::Result;
use super::snapshots::chain_ids;
use crate::digest::{Digest, DigestError};

pub(crate) const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub(crate) const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub(crate) const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";

/// Manifests, indexes and configs larger than this are refused as JSON.
pub(crate) const MAX_JSON: u64 = 16 << 20;
/// Blobs named by cache records are only opened to look for references
/// when at most this large.
const MAX_UNKNOWN: u64 = 1 << 20;

/// How a blob is reached, which says how to read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// A manifest or an index.
    Image,
    ImageConfig,
    /// An artifact's config: kept, not read.
    OtherConfig,
    Layer,
    /// Named by a cache record: kept, read if small JSON.
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Index,
    Manifest,
}

/// One reference out of a manifest or index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Child {
    pub(crate) digest: Digest,
    pub(crate) role: Role,
    /// Must be in the store for the image to be complete. An index's
    /// platforms and a `subject` are optional: pulls fetch one platform.
    pub(crate) required: bool,
}

/// Why a stored JSON blob cannot be walked: it is unreadable, or not the
/// manifest, index or config its role says.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WalkError {
    /// Larger than a JSON document may be.
    #[error("{0} bytes is too large for JSON")]
    TooLarge(u64),
    /// The blob could not be read (or failed its digest).
    #[error(transparent)]
    Read(#[from] Box<super::error::StoreError>),
    /// Not JSON.
    #[error("invalid JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// A descriptor without `digest`.
    #[error("{0} has no digest")]
    NoDigest(String),
    /// A descriptor whose `digest` does not parse.
    #[error("{field} digest: {source}")]
    Digest {
        field: String,
        #[source]
        source: DigestError,
    },
    /// A manifest without `config`.
    #[error("manifest has no config")]
    NoConfig,
    /// `rootfs.diff_ids` with other than strings.
    #[error("rootfs.diff_ids holds a non-string")]
    DiffIdNotString,
    /// A diff ID that does not parse.
    #[error("rootfs.diff_ids: {0}")]
    DiffId(#[source] DigestError),
}

pub(crate) fn kind_of_media_type(media_type: &str) -> Option<Kind> {
    match media_type {
        OCI_INDEX | DOCKER_LIST => Some(Kind::Index),
        OCI_MANIFEST | DOCKER_MANIFEST => Some(Kind::Manifest),
        _ => None,
    }
}

/// The kind of a manifest/index and what it references; `Ok(None)` if the
/// JSON is neither. By its `mediaType`, else the hint, else its shape.
pub(crate) fn references(
    json: &Value,
    hint: Option<&str>,
) -> Result<Option<(Kind, Vec<Child>)>, WalkError> {
    let own = json.get("mediaType").and_then(Value::as_str);
    let kind = own
        .and_then(kind_of_media_type)
        .or_else(|| hint.and_then(kind_of_media_type))
        .or_else(|| {
            if json.get("manifests").is_some_and(Value::is_array) {
                Some(Kind::Index)
            } else if json.get("config").is_some_and(Value::is_object)
                && json.get("layers").is_some_and(Value::is_array)
            {
                Some(Kind::Manifest)
            } else {
                None
            }
        });
    let Some(kind) = kind else {
        return Ok(None);
    };
    let mut children = Vec::new();
    let list = |key: &str| {
        json.get(key)
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
    };
    match kind {
        Kind::Index => {
            for m in list("manifests") {
                let (digest, _) = descriptor(m, "manifests[]")?;
                children.push(Child {
                    digest,
                    role: Role::Image,
                    required: false,
                });
            }
        }
        Kind::Manifest => {
            let config = json.get("config").ok_or(WalkError::NoConfig)?;
            let (digest, mt) = descriptor(config, "config")?;
            let role = match mt {
                None | Some(OCI_CONFIG | DOCKER_CONFIG) => Role::ImageConfig,
                Some(_) => Role::OtherConfig,
            };
            children.push(Child {
                digest,
                role,
                required: true,
            });
            for l in list("layers") {
                let (digest, mt) = descriptor(l, "layers[]")?;
                let foreign =
                    mt.is_some_and(|m| m.contains("foreign") || m.contains("nondistributable"));
                children.push(Child {
                    digest,
                    role: Role::Layer,
                    required: !foreign,
                });
            }
        }
    }
    if let Some(subject) = json.get("subject").filter(|s| !s.is_null()) {
        let (digest, _) = descriptor(subject, "subject")?;
        children.push(Child {
            digest,
            role: Role::Image,
            required: false,
        });
    }
    Ok(Some((kind, children)))
}

fn descriptor<'a>(v: &'a Value, field: &str) -> Result<(Digest, Option<&'a str>), WalkError> {
    let raw = v
        .get("digest")
        .and_then(Value::as_str)
        .ok_or_else(|| WalkError::NoDigest(field.to_owned()))?;
    let digest = raw.parse().map_err(|source| WalkError::Digest {
        field: field.to_owned(),
        source,
    })?;
    Ok((digest, v.get("mediaType").and_then(Value::as_str)))
}

/// An image config's `rootfs.diff_ids` and `created`.
pub(crate) fn config_facts(json: &Value) -> Result<(Vec<Digest>, Option<String>), WalkError> {
    let mut diff_ids = Vec::new();
    if let Some(ids) = json.pointer("/rootfs/diff_ids").and_then(Value::as_array) {
        for id in ids {
            let id = id.as_str().ok_or(WalkError::DiffIdNotString)?;
            diff_ids.push(id.parse().map_err(WalkError::DiffId)?);
        }
    }
    let created = json
        .get("created")
        .and_then(Value::as_str)
        .map(String::from);
    Ok((diff_ids, created))
}

/// Every string in a JSON document that is a digest (cache records name
/// the blobs and snapshots they need this way).
pub(crate) fn digests_in(json: &Value, out: &mut BTreeSet<Digest>) {
    match json {
        Value::String(s) => {
            if let Ok(d) = s.parse() {
                out.insert(d);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| digests_in(v, out)),
        Value::Object(map) => map.values().for_each(|v| digests_in(v, out)),
        _ => {}
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Missing {
    pub(crate) digest: Digest,
    pub(crate) parent: Option<Digest>,
    pub(crate) required: bool,
}

/// Everything reached from a set of roots.
#[derive(Debug, Default)]
pub(crate) struct Walk {
    /// Present blobs reached, with their sizes.
    pub(crate) blobs: BTreeMap<Digest, u64>,
    /// Snapshot chain ids of reached image configs (every prefix).
    pub(crate) chains: BTreeSet<Digest>,
    pub(crate) missing: Vec<Missing>,
    /// Manifests, indexes or configs that could not be read or parsed.
    pub(crate) broken: Vec<(Digest, String)>,
    /// The newest `created` among the image configs reached.
    pub(crate) created: Option<String>,
    seen: BTreeSet<Digest>,
}

impl Walk {
    /// Walk from `root`, reached in `role`.
    pub(crate) fn visit(
        &mut self,
        store: &Store,
        root: &Digest,
        role: Role,
        required: bool,
    ) -> Result<()> {
        let mut stack = vec![(root.clone(), role, required, None::<Digest>)];
        while let Some((digest, role, required, parent)) = stack.pop() {
            if !self.seen.insert(digest.clone()) {
                continue;
            }
            let Some(size) = store.blob_size(&digest)? else {
                self.missing.push(Missing {
                    digest,
                    parent,
                    required,
                });
                continue;
            };
            self.blobs.insert(digest.clone(), size);
            let json = match role {
                Role::Layer | Role::OtherConfig => continue,
                Role::Unknown if size > MAX_UNKNOWN => continue,
                _ if size > MAX_JSON => Err(WalkError::TooLarge(size)),
                _ => read_json(store, &digest),
            };
            let json = match (json, role) {
                (Ok(json), _) => json,
                (Err(_), Role::Unknown) => continue,
                (Err(reason), _) => {
                    self.broken.push((digest, reason.to_string()));
                    continue;
                }
            };
            if role == Role::ImageConfig
                || (role == Role::Unknown && json.pointer("/rootfs/diff_ids").is_some())
            {
                match config_facts(&json) {
                    Ok((diff_ids, created)) => {
                        self.chains.extend(chain_ids(&diff_ids));
                        if created > self.created {
                            self.created = created;
                        }
                    }
                    Err(reason) if role != Role::Unknown => {
                        self.broken.push((digest, reason.to_string()));
                    }
                    Err(_) => {}
                }
                continue;
            }
            match references(&json, None) {
                Ok(Some((_, children))) => {
                    for c in children.into_iter().rev() {
                        stack.push((c.digest, c.role, c.required, Some(digest.clone())));
                    }
                }
                Ok(None) if role == Role::Unknown => {}
                Ok(None) => self
                    .broken
                    .push((digest, "neither an image manifest nor an index".into())),
                Err(reason) => {
                    if role != Role::Unknown {
                        self.broken.push((digest, reason.to_string()));
                    }
                }
            }
        }
        Ok(())
    }

    /// The first required blob found missing.
    pub(crate) fn first_required_missing(&self) -> Option<&Missing> {
        self.missing.iter().find(|m| m.required)
    }

    pub(crate) fn total_size(&self) -> u64 {
        self.blobs.values().sum()
    }
}

pub(crate) fn read_json(store: &Store, digest: &Digest) -> Result<Value, WalkError> {
    let bytes = store
        .read_blob_verified(digest)
        .map_err(|e| WalkError::Read(Box::new(e)))?;
    serde_json::from_slice(&bytes).map_err(WalkError::Json)
}
