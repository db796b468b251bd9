//! The build context: the directory (or stdin tar) that `COPY` and `ADD`
//! read from.
//!
//! - [`ignore`]: `.dockerignore` with Docker's rules ([`read_dockerignore`],
//!   [`Matcher`]).
//! - [`Context`] (`walk`): opens a context, reads its ignore file, and
//!   answers `COPY` source lists with a [`Selection`], reading only the
//!   paths the sources name. `from_tar` unpacks a stdin context safely.
//! - [`hash`]: content digests of a selection for cache keys, as BuildKit's
//!   `contenthash` defines them (type, mode, link target, content; never
//!   ownership or times), hashed in parallel, with a persistent
//!   [`HashCache`] keyed by (device, inode, size, mtime, ctime).
//!
//! **Invariant:** nothing outside the context root is read: sources are
//! clamped to the root, symlinks inside a selection are listed as links and
//! never followed, and a symlink named as a source is resolved as if the
//! root were `/`.

pub mod contained;
mod gopath;
mod goregex;
pub mod hash;
mod hashcache;
pub mod ignore;
mod resolve;
mod untar;
mod walk;

use std::io;
use std::path::PathBuf;

pub use contained::{read_bounded, read_in_dir, split_file};
pub use hash::{
    EntryHash, HashCache, HashStats, PathChange, SelectionHash, changed_paths, hash_selection,
};
pub use ignore::{IgnoreError, MatchState, Matcher, Pattern, read_dockerignore};
pub use walk::{Context, Entry, EntryKind, SelectedSource, Selection, WalkStats};

/// Errors from opening a context, selecting from it and hashing it.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("{path}: {source}")]
    Dockerignore {
        path: PathBuf,
        #[source]
        source: IgnoreError,
    },
    #[error("invalid exclude pattern: {0}")]
    Exclude(#[source] IgnoreError),
    #[error(
        "file not found in build context or excluded by .dockerignore: stat {source_path}: file does not exist"
    )]
    NotFound { source_path: String },
    #[error("{source_path}: not a directory")]
    NotADirectory { source_path: String },
    #[error("invalid source path {source_path:?}: {reason}")]
    BadSource { source_path: String, reason: String },
    #[error("too many levels of symbolic links resolving {source_path} in the build context")]
    SymlinkLoop { source_path: String },
    /// A file read by name (the Dockerfile, `.dockerignore`) is a symlink
    /// that leads out of the directory it is read in.
    #[error(
        "{} is a symlink to {}, outside {}: refused (it is resolved inside that directory, as BuildKit does)",
        path.display(), target.display(), dir.display()
    )]
    SymlinkOut {
        path: PathBuf,
        target: PathBuf,
        dir: PathBuf,
    },
    #[error("build context root {path} is not a directory")]
    NotAContext { path: PathBuf },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("context tar entry {name:?}: {reason}")]
    Tar { name: String, reason: String },
    #[error("hash cache: {0}")]
    Store(#[from] crate::store::StoreError),
}

pub type Result<T, E = ContextError> = std::result::Result<T, E>;

/// Attaches the path to an I/O error.
pub(crate) trait IoAt<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoAt<T> for io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|source| ContextError::Io {
            path: path.into(),
            source,
        })
    }
}
