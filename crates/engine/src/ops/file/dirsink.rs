//! The directory sink: entries applied onto a root directory as an
//! unpacker applies a layer. Keys are already resolved, so every parent is
//! opened component by component from the root with `O_NOFOLLOW`; a
//! symlink met there means the tree changed under us and is an error, so
//! nothing outside the root is ever reached. The final component is never
//! followed: what is in the way is removed (a directory only when a
//! non-directory replaces it, as a layer would), files are created
//! `O_EXCL`. Directory modes and times are set last, deepest first.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, Timespec, Timestamps, Uid, XattrFlags};
use rustix::io::Errno;

use super::emit::{Sink, SinkError};
use super::vfs::{Key, Meta};
use crate::layer::Special;

const BUFFER: usize = 1 << 20;

pub(crate) struct DirSink {
    root: OwnedFd,
    root_path: PathBuf,
    /// The open directories of the last parent path, shallowest first.
    stack: Vec<(Vec<u8>, OwnedFd)>,
    privileged: bool,
    /// Deferred directory modes and times (the last one given wins).
    dirs: BTreeMap<Key, (u32, Timestamps)>,
    warnings: Vec<String>,
    warned_owner: bool,
    buf: Vec<u8>,
}

fn path_flags() -> OFlags {
    OFlags::PATH | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

fn times(meta: &Meta) -> Timestamps {
    let t = Timespec {
        tv_sec: meta.mtime,
        tv_nsec: meta.nsec.into(),
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

impl DirSink {
    pub(crate) fn open(root: &Path) -> io::Result<DirSink> {
        let fd = rustix::fs::open(
            root,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(DirSink {
            root: fd,
            root_path: root.to_path_buf(),
            stack: Vec::new(),
            privileged: rustix::process::geteuid().is_root(),
            dirs: BTreeMap::new(),
            warnings: Vec::new(),
            warned_owner: false,
            buf: Vec::new(),
        })
    }

    fn fail(&self, action: &'static str, key: &Key, e: impl Into<io::Error>) -> SinkError {
        SinkError::Io {
            action,
            path: self.root_path.join(key.as_path()),
            source: e.into(),
        }
    }

    /// Opens (`O_PATH`) the parent directory of `key`, reusing what is open.
    fn parent(&mut self, key: &Key) -> Result<BorrowedFd<'_>, SinkError> {
        let parent = key.parent();
        let comps: Vec<&[u8]> = if parent.is_root() {
            Vec::new()
        } else {
            parent.as_bytes().split(|&b| b == b'/').collect()
        };
        let keep = self
            .stack
            .iter()
            .zip(&comps)
            .take_while(|((name, _), c)| name == *c)
            .count();
        self.stack.truncate(keep);
        for comp in &comps[keep..] {
            let fd = {
                let cur = self
                    .stack
                    .last()
                    .map_or(self.root.as_fd(), |(_, fd)| fd.as_fd());
                rustix::fs::openat(cur, *comp, path_flags(), Mode::empty())
            };
            let fd = match fd {
                Ok(fd) => fd,
                Err(e @ (Errno::LOOP | Errno::NOTDIR)) => {
                    self.stack.clear();
                    let what = io::Error::other(format!(
                        "a parent is no longer a directory ({e}); the root changed during the copy"
                    ));
                    return Err(self.fail("opening the parent of", key, what));
                }
                Err(e) => {
                    self.stack.clear();
                    return Err(self.fail("opening the parent of", key, e));
                }
            };
            self.stack.push((comp.to_vec(), fd));
        }
        Ok(self
            .stack
            .last()
            .map_or(self.root.as_fd(), |(_, fd)| fd.as_fd()))
    }

    /// Clears the way for `key`; `true` when an existing directory is kept
    /// because a directory is wanted.
    fn prepare(&mut self, key: &Key, want_dir: bool) -> Result<bool, SinkError> {
        let name = key.name().to_vec();
        let dir = self.parent(key)?;
        let st = match rustix::fs::statat(dir, &name[..], AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => return Ok(false),
            Err(e) => return Err(self.fail("inspecting", key, e)),
        };
        let is_dir = FileType::from_raw_mode(st.st_mode) == FileType::Directory;
        if want_dir && is_dir {
            return Ok(true);
        }
        let result = if is_dir {
            remove_all(dir, &name)
        } else {
            rustix::fs::unlinkat(dir, &name[..], AtFlags::empty()).map_err(Into::into)
        };
        if is_dir {
            // Open descendants of what was removed must not be reused.
            self.stack.clear();
        }
        result
            .map(|()| false)
            .map_err(|e| self.fail("replacing", key, e))
    }

    fn chown(
        &mut self,
        key: &Key,
        fd: Option<BorrowedFd<'_>>,
        meta: &Meta,
    ) -> Result<(), SinkError> {
        if !self.privileged {
            if !self.warned_owner {
                self.warned_owner = true;
                self.warnings
                    .push("ownership not applied: not running as root".to_string());
            }
            return Ok(());
        }
        let (uid, gid) = (Some(Uid::from_raw(meta.uid)), Some(Gid::from_raw(meta.gid)));
        let result = match fd {
            Some(fd) => rustix::fs::fchown(fd, uid, gid),
            None => {
                let name = key.name().to_vec();
                let dir = self.parent(key)?;
                rustix::fs::chownat(dir, &name[..], uid, gid, AtFlags::SYMLINK_NOFOLLOW)
            }
        };
        result.map_err(|e| self.fail("changing the owner of", key, e))
    }

    /// Best effort, as BuildKit's copier logs and goes on.
    fn xattrs(&mut self, key: &Key, fd: Option<BorrowedFd<'_>>, meta: &Meta) {
        for (name, value) in &meta.xattrs {
            let result = match fd {
                Some(fd) => rustix::fs::fsetxattr(fd, &name[..], value, XattrFlags::empty()),
                None => {
                    let leaf = key.name().to_vec();
                    let Ok(dir) = self.parent(key) else { return };
                    let mut path = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
                    path.extend_from_slice(&leaf);
                    rustix::fs::lsetxattr(&path[..], &name[..], value, XattrFlags::empty())
                }
            };
            if let Err(e) = result {
                self.warnings.push(format!(
                    "xattr {} not set on {key}: {e}",
                    String::from_utf8_lossy(name)
                ));
            }
        }
    }
}

/// Removes `name` in `dir` and everything below it, never following a link.
fn remove_all(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    let st = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
        return Ok(rustix::fs::unlinkat(dir, name, AtFlags::empty())?);
    }
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let fd = rustix::fs::openat(dir, name, flags, Mode::empty())?;
    let mut names = Vec::new();
    let mut listing = rustix::fs::Dir::read_from(&fd)?;
    while let Some(entry) = listing.read() {
        let entry = entry?;
        let n = entry.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(n.to_vec());
        }
    }
    for n in names {
        remove_all(fd.as_fd(), &n)?;
    }
    Ok(rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)?)
}

impl Sink for DirSink {
    fn dir(&mut self, key: &Key, meta: &Meta) -> Result<(), SinkError> {
        let name = key.name().to_vec();
        if !self.prepare(key, true)? {
            let dir = self.parent(key)?;
            rustix::fs::mkdirat(dir, &name[..], Mode::from_raw_mode(0o700))
                .map_err(|e| self.fail("creating directory", key, e))?;
        }
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let dir = self.parent(key)?;
        let fd = rustix::fs::openat(dir, &name[..], flags, Mode::empty())
            .map_err(|e| self.fail("opening directory", key, e))?;
        self.chown(key, Some(fd.as_fd()), meta)?;
        self.xattrs(key, Some(fd.as_fd()), meta);
        self.dirs.insert(key.clone(), (meta.mode, times(meta)));
        Ok(())
    }

    fn file(
        &mut self,
        key: &Key,
        meta: &Meta,
        size: u64,
        data: &mut dyn Read,
    ) -> Result<(), SinkError> {
        self.prepare(key, false)?;
        let name = key.name().to_vec();
        let dir = self.parent(key)?;
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(dir, &name[..], flags, Mode::from_raw_mode(0o600))
            .map_err(|e| self.fail("creating file", key, e))?;
        let mut file = File::from(fd);
        if self.buf.is_empty() {
            self.buf = vec![0; BUFFER];
        }
        let mut written = 0u64;
        loop {
            let n = match data.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.fail("reading the source of", key, e)),
            };
            if let Err(e) = file.write_all(&self.buf[..n]) {
                return Err(self.fail("writing", key, e));
            }
            written += n as u64;
        }
        if written != size {
            let e = io::Error::other(format!(
                "source changed while copied: {written} bytes instead of {size}"
            ));
            return Err(self.fail("writing", key, e));
        }
        self.chown(key, Some(file.as_fd()), meta)?;
        rustix::fs::fchmod(&file, Mode::from_raw_mode(meta.mode))
            .map_err(|e| self.fail("setting the mode of", key, e))?;
        self.xattrs(key, Some(file.as_fd()), meta);
        rustix::fs::futimens(&file, &times(meta))
            .map_err(|e| self.fail("setting the times of", key, e))
    }

    fn symlink(&mut self, key: &Key, target: &[u8], meta: &Meta) -> Result<(), SinkError> {
        self.prepare(key, false)?;
        let name = key.name().to_vec();
        let dir = self.parent(key)?;
        rustix::fs::symlinkat(target, dir, &name[..])
            .map_err(|e| self.fail("creating symlink", key, e))?;
        self.chown(key, None, meta)?;
        self.xattrs(key, None, meta);
        let dir = self.parent(key)?;
        rustix::fs::utimensat(dir, &name[..], &times(meta), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| self.fail("setting the times of", key, e))
    }

    fn hardlink(&mut self, key: &Key, target: &Key, _meta: &Meta) -> Result<(), SinkError> {
        self.prepare(key, false)?;
        // Open the target's parent on its own (the cache follows `key`).
        let mut tdir = rustix::fs::openat(&self.root, c".", path_flags(), Mode::empty())
            .map_err(|e| self.fail("opening the root for", key, e))?;
        for comp in target
            .parent()
            .as_bytes()
            .split(|&b| b == b'/')
            .filter(|c| !c.is_empty())
        {
            tdir = rustix::fs::openat(&tdir, comp, path_flags(), Mode::empty())
                .map_err(|e| self.fail("opening the link target of", key, e))?;
        }
        let tname = target.name().to_vec();
        let name = key.name().to_vec();
        let dir = self.parent(key)?;
        rustix::fs::linkat(&tdir, &tname[..], dir, &name[..], AtFlags::empty())
            .map_err(|e| self.fail("creating hard link", key, e))
    }

    fn special(&mut self, key: &Key, special: Special, meta: &Meta) -> Result<(), SinkError> {
        let (kind, dev) = match special {
            Special::Char { major, minor } => {
                (FileType::CharacterDevice, rustix::fs::makedev(major, minor))
            }
            Special::Block { major, minor } => {
                (FileType::BlockDevice, rustix::fs::makedev(major, minor))
            }
            Special::Fifo => (FileType::Fifo, 0),
        };
        self.prepare(key, false)?;
        let name = key.name().to_vec();
        let dir = self.parent(key)?;
        match rustix::fs::mknodat(dir, &name[..], kind, Mode::from_raw_mode(meta.mode), dev) {
            Ok(()) => {}
            Err(Errno::PERM) if kind != FileType::Fifo => {
                self.warnings
                    .push(format!("device node {key} skipped: not permitted"));
                return Ok(());
            }
            Err(e) => return Err(self.fail("creating node", key, e)),
        }
        self.chown(key, None, meta)?;
        let dir = self.parent(key)?;
        // Just made by us, not a symlink: chmodat cannot be led astray.
        rustix::fs::chmodat(
            dir,
            &name[..],
            Mode::from_raw_mode(meta.mode),
            AtFlags::empty(),
        )
        .map_err(|e| self.fail("setting the mode of", key, e))?;
        self.xattrs(key, None, meta);
        let dir = self.parent(key)?;
        rustix::fs::utimensat(dir, &name[..], &times(meta), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| self.fail("setting the times of", key, e))
    }

    fn finish(&mut self) -> Result<Vec<String>, SinkError> {
        let dirs = std::mem::take(&mut self.dirs);
        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        // Reverse key order: contents before their directory.
        for (key, (mode, ts)) in dirs.iter().rev() {
            let name = key.name().to_vec();
            let dir = self.parent(key)?;
            let fd = match rustix::fs::openat(dir, &name[..], flags, Mode::empty()) {
                Ok(fd) => fd,
                // Replaced later in the op.
                Err(Errno::NOENT | Errno::NOTDIR | Errno::LOOP) => continue,
                Err(e) => return Err(self.fail("opening directory", key, e)),
            };
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(*mode))
                .map_err(|e| self.fail("setting the mode of", key, e))?;
            rustix::fs::futimens(&fd, ts).map_err(|e| self.fail("setting the times of", key, e))?;
        }
        self.stack.clear();
        Ok(std::mem::take(&mut self.warnings))
    }
}
