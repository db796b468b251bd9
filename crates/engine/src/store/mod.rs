//! The local store: hoist has no daemon, so its images live here.
//!
//! ```text
//! <root>/
//!   (the root is 0700, 0710 at most; snapshots/, diffs/, tmp/, cache-mounts/ 0700: see `modes`)
//!   version                 layout version ("1"), written last on creation
//!   blobs/sha256/<hex>      content-addressed blobs, read-only, verified on read
//!   refs.json               tagged images: name → manifest/index digest + media type
//!   snapshots/<hex>/        unpacked layer trees, keyed by OCI ChainID
//!   diffs/<hex>/            a chain's top layer alone, in overlayfs's format (a RUN's upper dir, or a layer unpacked so)
//!   indexes/<hex>           per-layer path indexes, by blob digest (a cache: rebuilt from the blob)
//!   cache-mounts/<hex>/     RUN --mount=type=cache directories (removed by prune --all)
//!   cache/<hex>             build-cache records, sha256(key) → record bytes
//!   tmp/                    in-progress writes; anything here is garbage
//!   locks/                  flock files (see `lock`)
//! ```
//!
//! **Invariant:** every write lands in `tmp/` first, is fsynced, and is
//! renamed into place (then the directory is fsynced). A process killed at
//! any point leaves temp files, never a half-written blob, ref or snapshot;
//! the next command works without repair and `gc` deletes the temp files.
//!
//! **Invariant:** a ref only ever names a manifest or index whose config
//! and layers are in the store (`set_ref`/`tag` check before writing).
//!
//! **Invariant:** blob bytes are trusted only after hashing: `open_blob`
//! returns a [`VerifyingReader`](crate::digest::VerifyingReader), `check`
//! re-hashes everything.
//!
//! Concurrency: any number of processes share a store. Readers and writers
//! take the store lock shared, GC takes it exclusive; the refs database is
//! updated read-modify-write under its own short exclusive lock.
//!
//! Submodules: `blobs`, `refs` (images and names), `snapshots`, `cache`,
//! `walk` (what a manifest references), `lazy` (blobs fetched on first read), `gc` (also disk usage), `check`.

mod blobs;
mod cache;
mod check;
mod error;
mod fsutil;
mod gc;
mod lazy;
mod lock;
mod modes;
mod refs;
mod snapshots;
mod walk;

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

pub use blobs::{BlobInfo, BlobWriter};
pub use check::{CheckReport, Damage};
pub use error::{Result, StoreError};
pub use gc::{DuReport, GcOptions, GcReport, ImageUsage, Usage};
pub use lazy::{BlobFetcher, FetchError};
pub use lock::Lease;
pub(crate) use modes::create_private_dir;
pub use refs::ImageRecord;
pub use snapshots::{SnapshotKind, SnapshotReservation, TreeMarker, chain_ids};

use error::IoContext;
use lock::{FileLock, LockMode};

/// The layout version this code reads and writes.
pub const LAYOUT_VERSION: u32 = 1;

/// A handle on one store directory. Cheap to clone; clones share the count
/// of leases held through them.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    leases: Arc<AtomicUsize>,
    fetchers: lazy::Fetchers,
}

impl Store {
    /// Open the store at `root`, creating its layout if it is missing.
    /// Fails on a store written by a newer hoist.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store> {
        let root = root.into();
        let store = Store {
            root,
            leases: Arc::new(AtomicUsize::new(0)),
            fetchers: lazy::Fetchers::default(),
        };
        // The root and the trees of unpacked layers: nobody else's (`modes`).
        modes::create_private_dir(&store.root)?;
        for dir in [store.snapshots_dir(), store.diffs_dir(), store.tmp_dir()] {
            modes::create_private_dir(&dir)?;
        }
        for dir in [store.blobs_dir(), store.cache_dir(), store.locks_dir()] {
            fs::create_dir_all(&dir).at(&dir)?;
        }
        let version = store.root.join("version");
        match fs::read_to_string(&version) {
            Ok(found) => {
                if found.trim() != LAYOUT_VERSION.to_string() {
                    return Err(StoreError::UnsupportedVersion {
                        path: store.root.clone(),
                        found: found.trim().to_string(),
                        supported: LAYOUT_VERSION,
                    });
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fsutil::atomic_write(
                    &store.tmp_dir(),
                    &version,
                    format!("{LAYOUT_VERSION}\n").as_bytes(),
                )?;
            }
            Err(e) => return Err(e).at(&version),
        }
        Ok(store)
    }

    /// Open the store at [`default_root`].
    pub fn open_default() -> Result<Store> {
        Store::open(default_root()?)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Hold the store shared until the lease is dropped: GC (in any
    /// process) waits, so content written under the lease stays even while
    /// nothing references it yet. Do not call [`Store::gc`] from a handle
    /// that holds a lease; it returns [`StoreError::LeaseHeld`].
    pub fn lease(&self) -> Result<Lease> {
        let lock = self.lock_store(LockMode::Shared)?;
        Ok(Lease::new(lock, self.leases.clone(), self.root.clone()))
    }

    pub(crate) fn leases_held(&self) -> usize {
        self.leases.load(Ordering::SeqCst)
    }

    pub(crate) fn lock_store(&self, mode: LockMode) -> Result<FileLock> {
        FileLock::acquire(&self.locks_dir().join("store.lock"), mode)
    }

    pub(crate) fn lock_refs(&self) -> Result<FileLock> {
        FileLock::acquire(&self.locks_dir().join("refs.lock"), LockMode::Exclusive)
    }

    pub(crate) fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    pub(crate) fn snapshots_dir(&self) -> PathBuf {
        self.root.join("snapshots")
    }

    pub(crate) fn diffs_dir(&self) -> PathBuf {
        self.root.join("diffs")
    }

    pub(crate) fn cache_dir(&self) -> PathBuf {
        self.root.join("cache")
    }

    pub(crate) fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    pub(crate) fn locks_dir(&self) -> PathBuf {
        self.root.join("locks")
    }

    pub(crate) fn refs_path(&self) -> PathBuf {
        self.root.join("refs.json")
    }
}

/// The default store root: `$HOIST_ROOT`; else `/var/lib/hoist` for root;
/// else `$XDG_DATA_HOME/hoist`, or `~/.local/share/hoist`.
pub fn default_root() -> Result<PathBuf> {
    let is_root = rustix::process::geteuid().is_root();
    default_root_with(|k| std::env::var_os(k), is_root)
}

/// [`default_root`] with the environment and the effective uid given.
pub fn default_root_with(env: impl Fn(&str) -> Option<OsString>, is_root: bool) -> Result<PathBuf> {
    let set = |k: &str| env(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(root) = set("HOIST_ROOT") {
        return Ok(root);
    }
    if is_root {
        return Ok(PathBuf::from("/var/lib/hoist"));
    }
    // The XDG spec says to ignore a relative XDG_DATA_HOME.
    if let Some(data) = set("XDG_DATA_HOME").filter(|p| p.is_absolute()) {
        return Ok(data.join("hoist"));
    }
    match set("HOME") {
        Some(home) => Ok(home.join(".local").join("share").join("hoist")),
        None => Err(StoreError::NoRoot),
    }
}
