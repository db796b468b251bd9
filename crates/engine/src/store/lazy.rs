//! Blobs the store does not hold yet but knows where to fetch: layers of
//! an imported build cache (a registry or an OCI layout directory). A
//! cache hit needs only a layer's descriptor; its bytes are fetched the
//! first time something reads them (`open_blob`, [`Store::ensure_blob`]),
//! so a build that hits on every step downloads only what its output
//! needs.
//!
//! The store only keeps the list of [`BlobFetcher`]s; fetching (and the
//! verification of what is fetched) is theirs. They live as long as the
//! handle's clones, never on disk.

use std::sync::{Arc, RwLock};

use super::Store;
use super::error::{Result, StoreError};
use crate::digest::Digest;

/// Why a [`BlobFetcher`] could not fetch a blob it knows: the fetcher's
/// own error type.
pub type FetchError = Box<dyn std::error::Error + Send + Sync>;

/// Something that can put a missing blob into a store.
pub trait BlobFetcher: Send + Sync {
    /// Fetch `digest` into `store` (verified); `Ok(false)` when this
    /// fetcher does not know the blob.
    fn fetch(&self, store: &Store, digest: &Digest) -> std::result::Result<bool, FetchError>;

    /// The repository (`host/name`) of a registry that holds `digest`, so
    /// a push to the same registry can mount it instead of uploading.
    fn origin(&self, digest: &Digest) -> Option<String>;
}

/// The fetchers a store handle (and its clones) consults.
#[derive(Clone, Default)]
pub(crate) struct Fetchers(Arc<RwLock<Vec<Arc<dyn BlobFetcher>>>>);

impl std::fmt::Debug for Fetchers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0.read().map(|v| v.len()).unwrap_or(0);
        write!(f, "Fetchers({n})")
    }
}

impl Fetchers {
    fn all(&self) -> Vec<Arc<dyn BlobFetcher>> {
        self.0.read().map(|v| v.clone()).unwrap_or_default()
    }
}

impl Store {
    /// Consult `fetcher` for blobs this handle (and its clones) lacks.
    pub fn add_fetcher(&self, fetcher: Arc<dyn BlobFetcher>) {
        if let Ok(mut v) = self.fetchers.0.write() {
            v.push(fetcher);
        }
    }

    /// Make sure the blob is in the store, fetching it if a fetcher knows
    /// it; `false` when it is neither here nor fetchable.
    pub fn ensure_blob(&self, digest: &Digest) -> Result<bool> {
        if self.has_blob(digest)? {
            return Ok(true);
        }
        for fetcher in self.fetchers.all() {
            match fetcher.fetch(self, digest) {
                Ok(true) => return self.has_blob(digest),
                Ok(false) => {}
                Err(source) => {
                    return Err(StoreError::Fetch {
                        digest: digest.clone(),
                        source,
                    });
                }
            }
        }
        Ok(false)
    }

    /// A registry repository that holds `digest` (from an imported cache).
    pub fn blob_origin(&self, digest: &Digest) -> Option<String> {
        self.fetchers.all().iter().find_map(|f| f.origin(digest))
    }
}
