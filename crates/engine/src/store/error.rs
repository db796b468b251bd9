//! The store's error type. Every variant names the path, digest or image
//! name it is about, so a message is useful without a backtrace.

use std::io;
use std::path::{Path, PathBuf};

use crate::digest::Digest;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot lock {}: {source}", path.display())]
    Lock {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("no store root: set HOIST_ROOT, XDG_DATA_HOME or HOME")]
    NoRoot,
    #[error(
        "store at {} has layout version {found:?}; this hoist supports version {supported}",
        path.display()
    )]
    UnsupportedVersion {
        path: PathBuf,
        found: String,
        supported: u32,
    },
    #[error("blob {0} is not in the store")]
    BlobNotFound(Digest),
    #[error("fetching blob {digest}: {source}")]
    Fetch {
        digest: Digest,
        #[source]
        source: super::lazy::FetchError,
    },
    #[error("blob written as {expected} hashed to {actual}")]
    BlobDigestMismatch { expected: Digest, actual: Digest },
    #[error("blob {digest} has {actual} bytes, expected {expected}")]
    BlobSizeMismatch {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
    #[error("blob {digest} at {} is corrupt: {source}", path.display())]
    CorruptBlob {
        digest: Digest,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("blob {digest} is not a valid {what}: {reason}")]
    InvalidBlob {
        digest: Digest,
        what: &'static str,
        reason: String,
    },
    #[error("image {digest} is incomplete: blob {missing} is not in the store")]
    IncompleteImage { digest: Digest, missing: Digest },
    #[error("no image named {0:?}")]
    RefNotFound(String),
    #[error("invalid image name {0:?}: must be non-empty, without spaces, and not a digest")]
    InvalidName(String),
    #[error("refs database {} is unreadable: {source}", path.display())]
    RefsDb {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "cannot collect garbage in {} while this handle holds {count} lease(s)",
        root.display()
    )]
    LeaseHeld { root: PathBuf, count: usize },
    #[error("store is damaged at {digest}: {reason}; run `hoist check`")]
    Damaged { digest: Digest, reason: String },
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Attach a path to an `io::Error`.
pub(crate) trait IoContext<T> {
    fn at(self, path: &Path) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: &Path) -> Result<T> {
        self.map_err(|source| StoreError::Io {
            path: path.to_path_buf(),
            source,
        })
    }
}
