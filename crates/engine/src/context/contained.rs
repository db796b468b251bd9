//! Files read by name from a directory the build trusts only as a whole:
//! the Dockerfile (in its own directory) and `.dockerignore` (in the
//! context, or `<Dockerfile>.dockerignore` beside the Dockerfile).
//! BuildKit reads them from a snapshot of that directory, so a symlink
//! resolves inside it; hoist resolves it the same way (as if the directory
//! were `/`), and one that only exists by leading out is refused by name,
//! without reading (or echoing) a byte of what it points at.

use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rustix::fs::FileType;

use super::{ContextError, Result};
use crate::layer::Resolver;
use crate::layer::resolve::Root;

/// The bytes of the regular file `name` (a relative path) in `dir`, its
/// symlinks resolved inside `dir`. Missing: [`ContextError::Io`] with
/// `NotFound`; a symlink whose target exists only outside `dir`:
/// [`ContextError::SymlinkOut`].
pub fn read_in_dir(dir: &Path, name: &Path) -> Result<Vec<u8>> {
    let path = dir.join(name);
    let io_at = |source: std::io::Error| ContextError::Io {
        path: path.clone(),
        source,
    };
    let root = Root::open(dir, Resolver::Auto).map_err(|source| ContextError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let fd = match root.open_file(name.as_os_str().as_bytes()) {
        Ok(fd) => fd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(escape(dir, name, &path).unwrap_or_else(|| io_at(e)));
        }
        Err(e) => return Err(io_at(e)),
    };
    let st = rustix::fs::fstat(&fd).map_err(|e| io_at(e.into()))?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err(io_at(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        )));
    }
    // Refused by its size before a byte is read; `read_bounded` still
    // bounds a file that grows meanwhile.
    if st.st_size as u64 > hoist_dockerfile::limits::MAX_FILE_BYTES as u64 {
        return Err(io_at(too_large()));
    }
    read_bounded(std::fs::File::from(fd)).map_err(io_at)
}

fn too_large() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!(
            "larger than {} (the limit on a Dockerfile or ignore file)",
            hoist_dockerfile::limits::human(hoist_dockerfile::limits::MAX_FILE_BYTES)
        ),
    )
}

/// All of `r`, refused past [`hoist_dockerfile::limits::MAX_FILE_BYTES`]
/// (a Dockerfile or ignore file is read whole; a hostile one must not take
/// the builder's memory with it). Reads at most one byte past the limit.
pub fn read_bounded(r: impl Read) -> std::io::Result<Vec<u8>> {
    let limit = hoist_dockerfile::limits::MAX_FILE_BYTES;
    let mut bytes = Vec::new();
    r.take(limit as u64 + 1).read_to_end(&mut bytes)?;
    if bytes.len() > limit {
        return Err(too_large());
    }
    Ok(bytes)
}

/// When `name` in `dir` is a symlink that the host resolves to an existing
/// path outside `dir`: the error saying so (nothing is read).
fn escape(dir: &Path, name: &Path, path: &Path) -> Option<ContextError> {
    let link = std::fs::symlink_metadata(path).ok()?;
    if !link.file_type().is_symlink() {
        return None;
    }
    let outside = std::fs::canonicalize(path).ok()?;
    let inside = std::fs::canonicalize(dir).ok()?;
    if outside.starts_with(&inside) {
        return None;
    }
    let target = std::fs::read_link(path).ok()?;
    Some(ContextError::SymlinkOut {
        path: dir.join(name),
        target,
        dir: dir.to_path_buf(),
    })
}

/// `path` split into its directory (`.` when it has none) and file name.
pub fn split_file(path: &Path) -> (PathBuf, PathBuf) {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map_or_else(|| path.to_path_buf(), PathBuf::from);
    (dir, name)
}
