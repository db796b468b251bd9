//! Fetching an imported cache's layers on first read (a
//! [`BlobFetcher`](crate::store::BlobFetcher)): from the registry
//! repository or the OCI layout directory the cache came from. A layer
//! the build lists uncompressed (hoist's own layers) arrives compressed:
//! the blob is fetched, verified, and unpacked into the uncompressed
//! blob, which is verified against its digest too; the store keeps both
//! and remembers that one is the other compressed, so a later push sends
//! (or mounts) the same compressed blob.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::digest::Digest;
use crate::image::Descriptor;
use crate::layer::Compression;
use crate::layer::LayerError;
use crate::reference::Repository;
use crate::registry::{BlobRef, Client};
use crate::store::{BlobFetcher, FetchError, Store, StoreError};
use crate::transfer::TransferError;

/// Why a blob an imported cache lists could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum CacheFetchError {
    /// The store could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The layout directory's blob could not be opened.
    #[error("{}: {source}", path.display())]
    LayoutOpen {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The layout directory's blob could not be stored (a wrong digest or
    /// size, say).
    #[error("{}: {source}", path.display())]
    LayoutPut {
        path: PathBuf,
        #[source]
        source: StoreError,
    },
    /// The registry's blob could not be pulled.
    #[error("{repo}: {source}")]
    Registry {
        repo: String,
        #[source]
        source: Box<TransferError>,
    },
    /// A compressed layer to unpack whose media type is no layer's.
    #[error("{0} is not a layer blob")]
    NotALayer(Digest),
    /// Decompressing the blob failed.
    #[error("unpacking {digest}: {source}")]
    Unpack {
        digest: Digest,
        #[source]
        source: LayerError,
    },
    /// The unpacked layer could not be stored.
    #[error("{digest} unpacked: {source}")]
    Unpacked {
        digest: Digest,
        #[source]
        source: StoreError,
    },
}

/// Where the cache's blobs are.
#[derive(Clone)]
pub enum Origin {
    /// `runtime`: the one the blobs are fetched on (the CLI's).
    Registry {
        client: Client,
        repo: Repository,
        runtime: crate::runtime::Handle,
    },
    Layout(PathBuf),
}

/// A digest the build may ask for: the blob of the cache that carries it,
/// and (for an uncompressed layer) that it must be unpacked from it.
#[derive(Debug, Clone)]
struct Wanted {
    blob: Descriptor,
    /// The uncompressed layer's size, when the wanted digest is the blob
    /// decompressed.
    unpacked_size: Option<u64>,
}

pub struct CacheFetcher {
    origin: Origin,
    wanted: Mutex<HashMap<Digest, Wanted>>,
    /// Blobs fetched and their bytes (as transferred).
    pub fetched_blobs: AtomicUsize,
    pub fetched_bytes: AtomicU64,
}

impl std::fmt::Debug for CacheFetcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.origin {
            Origin::Registry { repo, .. } => write!(f, "CacheFetcher(registry {repo})"),
            Origin::Layout(dir) => write!(f, "CacheFetcher(local {})", dir.display()),
        }
    }
}

impl CacheFetcher {
    pub fn new(origin: Origin) -> CacheFetcher {
        CacheFetcher {
            origin,
            wanted: Mutex::new(HashMap::new()),
            fetched_blobs: AtomicUsize::new(0),
            fetched_bytes: AtomicU64::new(0),
        }
    }

    /// `blob` of the cache can be fetched; and `layer`, when it is the
    /// blob's uncompressed form, can be made from it.
    pub fn offer(&self, blob: &Descriptor, layer: Option<&Descriptor>) {
        let mut wanted = self.wanted.lock().unwrap_or_else(|p| p.into_inner());
        wanted.insert(
            blob.digest.clone(),
            Wanted {
                blob: blob.clone(),
                unpacked_size: None,
            },
        );
        if let Some(layer) = layer
            && layer.digest != blob.digest
        {
            wanted.insert(
                layer.digest.clone(),
                Wanted {
                    blob: blob.clone(),
                    unpacked_size: Some(layer.size),
                },
            );
        }
    }

    fn download(&self, store: &Store, blob: &Descriptor) -> Result<(), CacheFetchError> {
        if store.has_blob(&blob.digest)? {
            return Ok(());
        }
        match &self.origin {
            Origin::Layout(dir) => {
                let path = dir.join("blobs/sha256").join(blob.digest.hex());
                let file = match std::fs::File::open(&path) {
                    Ok(file) => file,
                    Err(source) => return Err(CacheFetchError::LayoutOpen { path, source }),
                };
                if let Err(source) = store.put_blob(file, Some(&blob.digest), Some(blob.size)) {
                    return Err(CacheFetchError::LayoutPut { path, source });
                }
            }
            Origin::Registry {
                client,
                repo,
                runtime,
            } => {
                // The caller may be inside a runtime (a push's task reading
                // the store) or not (the solver): `block_on` handles both.
                let b = BlobRef::new(blob.digest.clone(), blob.size);
                crate::runtime::block_on(
                    runtime,
                    crate::transfer::pull::fetch_blob(client, store, repo, &b),
                )
                .map_err(|source| CacheFetchError::Registry {
                    repo: repo.to_string(),
                    source: Box::new(source),
                })?;
            }
        }
        self.fetched_blobs.fetch_add(1, Ordering::SeqCst);
        self.fetched_bytes.fetch_add(blob.size, Ordering::SeqCst);
        Ok(())
    }

    /// Unpack the stored compressed `blob` into the uncompressed layer
    /// `digest` (the import remembered the pair for pushes).
    fn unpack(
        &self,
        store: &Store,
        blob: &Descriptor,
        digest: &Digest,
        size: u64,
    ) -> Result<(), CacheFetchError> {
        let from = Compression::of_layer(&blob.media_type)
            .ok_or_else(|| CacheFetchError::NotALayer(blob.digest.clone()))?;
        let reader = store.open_blob(&blob.digest)?;
        let writer = store.blob_writer()?;
        let (_, writer) = crate::layer::recompress(reader, from, Compression::None, None, writer)
            .map_err(|source| CacheFetchError::Unpack {
            digest: blob.digest.clone(),
            source,
        })?;
        writer
            .commit(Some(digest), Some(size))
            .map_err(|source| CacheFetchError::Unpacked {
                digest: blob.digest.clone(),
                source,
            })?;
        Ok(())
    }
}

impl BlobFetcher for CacheFetcher {
    fn fetch(&self, store: &Store, digest: &Digest) -> Result<bool, FetchError> {
        let wanted = {
            let map = self.wanted.lock().unwrap_or_else(|p| p.into_inner());
            map.get(digest).cloned()
        };
        let Some(wanted) = wanted else {
            return Ok(false);
        };
        self.download(store, &wanted.blob)?;
        if let Some(size) = wanted.unpacked_size {
            self.unpack(store, &wanted.blob, digest, size)?;
        }
        Ok(true)
    }

    fn origin(&self, digest: &Digest) -> Option<String> {
        let Origin::Registry { repo, .. } = &self.origin else {
            return None;
        };
        let map = self.wanted.lock().unwrap_or_else(|p| p.into_inner());
        map.get(digest)
            .filter(|w| w.blob.digest == *digest)
            .map(|_| repo.to_string())
    }
}
