//! An I/O error on a named file: `PATH: cause`, the shape the sandbox's
//! notices and lines print.

use std::path::{Path, PathBuf};

/// `path` could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct FileError {
    /// The file.
    pub path: PathBuf,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

/// The error for `path`, for `map_err`.
pub(crate) fn at(path: &Path) -> impl FnOnce(std::io::Error) -> FileError + '_ {
    move |source| FileError {
        path: path.to_path_buf(),
        source,
    }
}
