//! Tagged images: `refs.json` maps a name (a normalised reference string
//! the caller gives, e.g. `docker.io/library/alpine:3.20`) to a manifest or
//! index digest and its media type.
//!
//! Updates are read-modify-write under `locks/refs.lock` and replace the
//! file atomically, so concurrent taggers never lose an update and readers
//! (who take no refs lock) always see a whole file. A name is only ever
//! pointed at an image whose required blobs are all present.

use std::collections::BTreeMap;
use std::fs;
use std::io;

use serde::{Deserialize, Serialize};

use super::Store;
use super::error::{IoContext, Result, StoreError};
use super::fsutil;
use super::lock::LockMode;
use super::walk::{self, Kind, Role, Walk};
use crate::digest::Digest;

/// A tagged image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageRecord {
    pub name: String,
    pub digest: Digest,
    pub media_type: String,
    /// The image config's `created` (the newest one, for an index).
    pub created: Option<String>,
    /// Bytes of every stored blob the image reaches (manifests, configs,
    /// compressed layers).
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RefEntry {
    pub(crate) digest: Digest,
    #[serde(rename = "mediaType")]
    pub(crate) media_type: String,
}

#[derive(Serialize, Deserialize)]
struct RefsFile {
    version: u32,
    refs: BTreeMap<String, RefEntry>,
}

pub(crate) type Refs = BTreeMap<String, RefEntry>;

/// Whether the blob's first byte opens a JSON object (layers, the bulk of
/// the store, are tar or compressed and are not read further).
fn starts_json(store: &Store, digest: &Digest) -> bool {
    use std::io::Read;
    let mut first = [0u8; 1];
    fs::File::open(store.blob_path(digest))
        .and_then(|mut f| f.read_exact(&mut first))
        .is_ok_and(|()| first[0] == b'{')
}

fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 4096
        && !name.chars().any(|c| c.is_whitespace() || c.is_control())
        && name.parse::<Digest>().is_err();
    if ok {
        Ok(())
    } else {
        Err(StoreError::InvalidName(name.to_string()))
    }
}

impl Store {
    /// The refs database as it is now.
    pub(crate) fn read_refs(&self) -> Result<Refs> {
        let path = self.refs_path();
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Refs::new()),
            Err(e) => return Err(e).at(&path),
        };
        let file: RefsFile =
            serde_json::from_slice(&bytes).map_err(|source| StoreError::RefsDb {
                path: path.clone(),
                source,
            })?;
        Ok(file.refs)
    }

    /// Read-modify-write the refs database under its exclusive lock.
    pub(crate) fn update_refs<T>(&self, f: impl FnOnce(&mut Refs) -> Result<T>) -> Result<T> {
        let _lock = self.lock_refs()?;
        let before = self.read_refs()?;
        let mut refs = before.clone();
        let out = f(&mut refs)?;
        if refs != before {
            let mut bytes =
                serde_json::to_vec_pretty(&RefsFile { version: 1, refs }).map_err(|source| {
                    StoreError::RefsDb {
                        path: self.refs_path(),
                        source,
                    }
                })?;
            bytes.push(b'\n');
            fsutil::atomic_write(&self.tmp_dir(), &self.refs_path(), &bytes)?;
        }
        Ok(out)
    }

    fn image_record(&self, name: &str, entry: &RefEntry) -> Result<ImageRecord> {
        let mut walk = Walk::default();
        walk.visit(self, &entry.digest, Role::Image, true)?;
        Ok(ImageRecord {
            name: name.to_string(),
            digest: entry.digest.clone(),
            media_type: entry.media_type.clone(),
            created: walk.created.take(),
            size: walk.total_size(),
        })
    }

    /// Check that `digest` is a stored manifest or index whose required
    /// blobs are present; its media type.
    fn check_image(&self, digest: &Digest) -> Result<String> {
        let invalid = |reason: String| StoreError::InvalidBlob {
            digest: digest.clone(),
            what: "image manifest or index",
            reason,
        };
        match self.blob_size(digest)? {
            None => return Err(StoreError::BlobNotFound(digest.clone())),
            Some(size) if size > walk::MAX_JSON => {
                return Err(invalid(format!("{size} bytes is too large")));
            }
            Some(_) => {}
        }
        let json = walk::read_json(self, digest).map_err(|e| invalid(e.to_string()))?;
        let (kind, children) = walk::references(&json, None)
            .map_err(|e| invalid(e.to_string()))?
            .ok_or_else(|| invalid("neither a manifest nor an index".into()))?;
        let mut walk = Walk::default();
        walk.visit(self, digest, Role::Image, true)?;
        if let Some((bad, reason)) = walk.broken.first() {
            return Err(StoreError::InvalidBlob {
                digest: bad.clone(),
                what: "image manifest, index or config",
                reason: reason.clone(),
            });
        }
        let missing = walk.first_required_missing().map(|m| m.digest.clone());
        // An index none of whose platforms is stored is no image at all.
        let missing = missing.or_else(|| {
            (kind == Kind::Index && walk.blobs.len() == 1)
                .then(|| children.first().map(|c| c.digest.clone()))
                .flatten()
        });
        if let Some(missing) = missing {
            return Err(StoreError::IncompleteImage {
                digest: digest.clone(),
                missing,
            });
        }
        let own = json.get("mediaType").and_then(|v| v.as_str());
        Ok(match (own, kind) {
            (Some(mt), _) => mt.to_string(),
            (None, Kind::Index) => walk::OCI_INDEX.to_string(),
            (None, Kind::Manifest) => walk::OCI_MANIFEST.to_string(),
        })
    }

    /// Point `name` at the stored manifest or index `digest` (what a build
    /// or pull calls last). `media_type` defaults to the blob's own.
    pub fn set_ref(
        &self,
        name: &str,
        digest: &Digest,
        media_type: Option<&str>,
    ) -> Result<ImageRecord> {
        check_name(name)?;
        let _lock = self.lock_store(LockMode::Shared)?;
        let own = self.check_image(digest)?;
        let entry = RefEntry {
            digest: digest.clone(),
            media_type: media_type.map_or(own, String::from),
        };
        self.update_refs(|refs| {
            refs.insert(name.to_string(), entry.clone());
            Ok(())
        })?;
        self.image_record(name, &entry)
    }

    /// Give the image `src` (a name or a `sha256:` digest of a stored
    /// manifest/index) the name `dst`.
    pub fn tag(&self, src: &str, dst: &str) -> Result<ImageRecord> {
        if let Ok(digest) = src.parse::<Digest>() {
            return self.set_ref(dst, &digest, None);
        }
        let entry = self
            .read_refs()?
            .remove(src)
            .ok_or_else(|| StoreError::RefNotFound(src.to_string()))?;
        self.set_ref(dst, &entry.digest, Some(&entry.media_type))
    }

    /// The image called `name`.
    pub fn resolve(&self, name: &str) -> Result<ImageRecord> {
        let _lock = self.lock_store(LockMode::Shared)?;
        let entry = self
            .read_refs()?
            .remove(name)
            .ok_or_else(|| StoreError::RefNotFound(name.to_string()))?;
        self.image_record(name, &entry)
    }

    /// Every tagged image, sorted by name.
    pub fn list_images(&self) -> Result<Vec<ImageRecord>> {
        let _lock = self.lock_store(LockMode::Shared)?;
        self.read_refs()?
            .iter()
            .map(|(name, entry)| self.image_record(name, entry))
            .collect()
    }

    /// Image manifests the store holds that no name reaches (earlier
    /// results of a build whose tag moved, builds without `-t`, the
    /// uncompressed form of a built image), complete (every required blob
    /// present), with their own `created`; GC removes them. Only manifests
    /// whose config is an image config: a cache artifact is no image.
    pub fn unnamed_images(&self) -> Result<Vec<(Digest, Option<String>)>> {
        let _lock = self.lock_store(LockMode::Shared)?;
        let mut named = Walk::default();
        for entry in self.read_refs()?.values() {
            named.visit(self, &entry.digest, Role::Image, true)?;
        }
        let mut out = Vec::new();
        for (digest, size) in self.list_blob_files()? {
            let Ok(digest) = digest else { continue };
            if size > walk::MAX_JSON
                || named.blobs.contains_key(&digest)
                || !starts_json(self, &digest)
            {
                continue;
            }
            let Ok(json) = walk::read_json(self, &digest) else {
                continue;
            };
            let Ok(Some((Kind::Manifest, children))) = walk::references(&json, None) else {
                continue;
            };
            if !children.iter().any(|c| c.role == Role::ImageConfig) {
                continue;
            }
            let mut walk = Walk::default();
            walk.visit(self, &digest, Role::Image, true)?;
            if walk.broken.is_empty() && walk.first_required_missing().is_none() {
                out.push((digest, walk.created.take()));
            }
        }
        Ok(out)
    }

    /// Remove the name; the blobs stay until GC.
    pub fn untag(&self, name: &str) -> Result<ImageRecord> {
        let _lock = self.lock_store(LockMode::Shared)?;
        let entry = self.update_refs(|refs| {
            refs.remove(name)
                .ok_or_else(|| StoreError::RefNotFound(name.to_string()))
        })?;
        self.image_record(name, &entry)
    }

    /// `rmi`: remove a name, or, given a `sha256:` digest, every name that
    /// points at it. The blobs stay until GC.
    pub fn rmi(&self, name_or_digest: &str) -> Result<Vec<ImageRecord>> {
        let Ok(digest) = name_or_digest.parse::<Digest>() else {
            return Ok(vec![self.untag(name_or_digest)?]);
        };
        let _lock = self.lock_store(LockMode::Shared)?;
        let removed = self.update_refs(|refs| {
            let names: Vec<String> = refs
                .iter()
                .filter(|(_, e)| e.digest == digest)
                .map(|(n, _)| n.clone())
                .collect();
            if names.is_empty() {
                return Err(StoreError::RefNotFound(name_or_digest.to_string()));
            }
            Ok(names
                .into_iter()
                .filter_map(|n| refs.remove(&n).map(|e| (n, e)))
                .collect::<Vec<_>>())
        })?;
        removed
            .iter()
            .map(|(n, e)| self.image_record(n, e))
            .collect()
    }
}
