//! Where a file op reads the destination image, through one face with two
//! backends: a directory (a materialised snapshot; also every `COPY --from`
//! source) or the layers' path indexes ([`IndexStack`]), which answer the
//! same questions without a file being created: what is at a path (type,
//! link target), a directory's metadata, a file's bytes (`/etc/passwd`).
//!
//! Both backends see the final component as it is (never followed); the
//! resolution through symlinks is [`super::vfs::Vfs::resolve`]'s, the same
//! for both.

use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::vfs::{Found, Key, Meta, Vfs, is_absent, read_xattrs};
use crate::layer::{EntryKind, IndexStack};

/// The destination image as a file op sees it.
#[derive(Debug, Clone)]
pub enum DestView {
    /// A directory holding the image's filesystem.
    Dir(PathBuf),
    /// The image's layers, read through their path indexes.
    Index(Arc<IndexStack>),
}

/// A regular file of the view, opened.
pub(crate) enum ViewFile {
    Missing,
    /// Something that is not a regular file (a directory, a device...).
    NotFile,
    File(Box<dyn Read>, u64),
}

impl DestView {
    /// Where `key` is on disk (directory views only).
    pub(crate) fn dir_path(&self, key: &Key) -> Option<PathBuf> {
        match self {
            DestView::Dir(root) => Some(root.join(key.as_path())),
            DestView::Index(_) => None,
        }
    }

    /// How errors name `key`: its path on disk, or its path in the image.
    pub(crate) fn shown(&self, key: &Key) -> PathBuf {
        self.dir_path(key)
            .unwrap_or_else(|| PathBuf::from(key.to_string()))
    }

    /// What is at `key` (not the root; the final component not followed).
    pub(crate) fn found(&self, key: &Key) -> io::Result<Found> {
        match self {
            DestView::Dir(root) => {
                let path = root.join(key.as_path());
                let md = match std::fs::symlink_metadata(&path) {
                    Ok(md) => md,
                    Err(e) if is_absent(&e) => return Ok(Found::Missing),
                    Err(e) => return Err(e),
                };
                let ft = md.file_type();
                Ok(if ft.is_dir() {
                    Found::Dir
                } else if ft.is_symlink() {
                    Found::Symlink(
                        std::fs::read_link(&path)?
                            .into_os_string()
                            .into_encoded_bytes(),
                    )
                } else {
                    Found::Other
                })
            }
            DestView::Index(stack) => Ok(match stack.stat(key.as_bytes()) {
                None => Found::Missing,
                Some(s) => match s.kind {
                    EntryKind::Dir => Found::Dir,
                    EntryKind::Symlink => Found::Symlink(s.link),
                    _ => Found::Other,
                },
            }),
        }
    }

    /// The metadata of what is at `key` (mode, owner, times, xattrs).
    pub(crate) fn meta(&self, key: &Key) -> io::Result<Meta> {
        match self {
            DestView::Dir(root) => {
                let path = root.join(key.as_path());
                let md = std::fs::symlink_metadata(&path)?;
                let mut meta = Meta::from_stat(&md);
                meta.xattrs = read_xattrs(&path)?;
                Ok(meta)
            }
            DestView::Index(stack) => {
                if key.is_root() {
                    return Ok(Meta {
                        mode: 0o755,
                        ..Meta::default()
                    });
                }
                let s = stack
                    .stat(key.as_bytes())
                    .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
                Ok(Meta {
                    mode: s.mode,
                    uid: s.uid,
                    gid: s.gid,
                    mtime: s.mtime,
                    nsec: s.nsec,
                    xattrs: s.xattrs,
                })
            }
        }
    }

    /// Opens the regular file at `key` (a symlink there is not followed).
    pub(crate) fn open(&self, key: &Key) -> io::Result<ViewFile> {
        match self {
            DestView::Dir(root) => {
                let path = root.join(key.as_path());
                let f = match std::fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(nofollow_nonblock())
                    .open(&path)
                {
                    Ok(f) => f,
                    Err(e) if is_absent(&e) => return Ok(ViewFile::Missing),
                    Err(e) => return Err(e),
                };
                let md = f.metadata()?;
                if !md.is_file() {
                    return Ok(ViewFile::NotFile);
                }
                Ok(ViewFile::File(Box::new(f), md.len()))
            }
            DestView::Index(stack) => {
                if let Some((reader, size)) = stack.open(key.as_bytes())? {
                    return Ok(ViewFile::File(reader, size));
                }
                Ok(match self.found(key)? {
                    Found::Missing => ViewFile::Missing,
                    Found::Symlink(_) => {
                        // As `open(O_NOFOLLOW)` on a symlink.
                        return Err(io::Error::from_raw_os_error(
                            rustix::io::Errno::LOOP.raw_os_error(),
                        ));
                    }
                    _ => ViewFile::NotFile,
                })
            }
        }
    }

    /// Whether `path` (absolute in the image) is a directory, following
    /// symlinks inside the image root (`WORKDIR`'s check).
    pub fn is_dir(&self, path: &str) -> bool {
        let vfs = Vfs::with_view(Some(self.clone()));
        vfs.resolve(&Key::root(), path.as_bytes(), true)
            .ok()
            .is_some_and(|key| vfs.lookup(&key).ok() == Some(Found::Dir))
    }

    /// The bytes of the regular file at `path` (absolute in the image,
    /// symlinks followed inside the root), at most `limit` of them; `None`
    /// when there is no regular file there.
    pub fn read_file(&self, path: &str, limit: u64) -> io::Result<Option<Vec<u8>>> {
        let vfs = Vfs::with_view(Some(self.clone()));
        let Ok(key) = vfs.resolve(&Key::root(), path.as_bytes(), true) else {
            return Ok(None);
        };
        match self.open(&key) {
            Ok(ViewFile::File(f, _)) => {
                let mut out = Vec::new();
                f.take(limit).read_to_end(&mut out)?;
                Ok(Some(out))
            }
            Ok(_) => Ok(None),
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::LOOP.raw_os_error()) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A directory view of `root`.
    pub fn dir(root: &Path) -> DestView {
        DestView::Dir(root.to_path_buf())
    }
}

/// `O_NOFOLLOW | O_NONBLOCK`: a symlink is not followed, a FIFO does not
/// block the open (it is then refused as not a regular file).
fn nofollow_nonblock() -> i32 {
    let flags = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK;
    i32::try_from(flags.bits()).unwrap_or(0)
}
