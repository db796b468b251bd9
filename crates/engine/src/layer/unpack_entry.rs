//! Applying one tar entry inside the root: paths are cleaned (leading `/`
//! stripped, `..` refused), the parent is resolved inside the root, and the
//! final component is created with `*at` calls that never follow it: an
//! existing entry in the way (a symlink included) is removed first, files
//! are created `O_EXCL | O_NOFOLLOW`. Whiteouts delete or clear lower
//! contents but spare what this layer itself created (image-spec).
//! Directory modes and mtimes are set at the end, deepest first, so that
//! creating children does not disturb them and a read-only directory can
//! still be filled.
//!
//! As root of a user namespace (rootless), ids the namespace does not map
//! cannot be owners (`EINVAL`): such an entry keeps what part of its owner
//! can be set, and the layer gets one warning with the count, as
//! containers/storage's `ignore_chown_errors`. Device nodes cannot be made
//! there either (`EPERM`) and are skipped with a warning, as Buildah does.

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use rustix::fs::{AtFlags, FileType, Gid, Mode, OFlags, Timespec, Timestamps, Uid, XattrFlags};
use rustix::io::Errno;

use super::LayerError;
use super::reader::{Entry, Kind, TarError, TarReader};
use super::resolve::{DeferredDir, Root, clear_dir, identity, make_way, open_dir, remove_all};
use super::unpack::{Ownership, UnpackWarning, tar_error};
use super::whiteout::{Name, classify, is_dropped_xattr, is_reserved};
use crate::digest::Digest;

const COPY_BUFFER: usize = 1 << 20;

pub(crate) struct Applier<'a> {
    root: &'a Root,
    digest: &'a Digest,
    privileged: bool,
    ownership: Ownership,
    /// Paths this layer created: whiteouts and opaque markers spare them.
    created: HashSet<Vec<u8>>,
    /// Directories whose mode and times are set at the end.
    dirs: Vec<DeferredDir>,
    warnings: Vec<UnpackWarning>,
    /// Entries whose ids are not mapped in our user namespace, and the
    /// index of the one warning about them.
    unmapped: u64,
    unmapped_warning: usize,
    /// Whether we run in a user namespace; read on the first failed chown.
    in_userns: Option<bool>,
    entries: u64,
    last: Vec<u8>,
    buf: Vec<u8>,
    /// Whiteouts kept in overlayfs's format (see `UnpackOptions`).
    pub(crate) overlay_format: bool,
}

pub(crate) fn to_path(bytes: &[u8]) -> PathBuf {
    PathBuf::from(OsStr::from_bytes(bytes))
}

/// The components of an entry path: leading `/`, `.` and empty components
/// dropped; `..` and NUL refused.
pub(crate) fn components(path: &[u8]) -> Result<Vec<&[u8]>, &'static str> {
    if path.contains(&0) {
        return Err("NUL byte in path");
    }
    let mut out = Vec::new();
    for comp in path.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => return Err("`..` component"),
            _ => out.push(comp),
        }
    }
    Ok(out)
}

fn join(comps: &[&[u8]]) -> Vec<u8> {
    comps.join(&b'/')
}

fn times(entry: &Entry) -> Timestamps {
    let t = Timespec {
        tv_sec: entry.mtime,
        tv_nsec: entry.mtime_nsec.into(),
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

impl<'a> Applier<'a> {
    pub(crate) fn new(
        root: &'a Root,
        digest: &'a Digest,
        privileged: bool,
        ownership: &Ownership,
    ) -> Applier<'a> {
        let ownership = match ownership {
            Ownership::Auto if privileged => Ownership::Preserve,
            Ownership::Auto => Ownership::Skip,
            other => other.clone(),
        };
        Applier {
            root,
            digest,
            privileged,
            ownership,
            created: HashSet::new(),
            dirs: Vec::new(),
            warnings: Vec::new(),
            unmapped: 0,
            unmapped_warning: 0,
            in_userns: None,
            entries: 0,
            last: Vec::new(),
            buf: Vec::new(),
            overlay_format: false,
        }
    }

    /// The path of the entry being (or last) applied, for error messages.
    pub(crate) fn last_path(&self) -> PathBuf {
        to_path(&self.last)
    }

    fn unsafe_entry(&self, reason: impl Into<String>) -> LayerError {
        LayerError::Unsafe {
            digest: self.digest.clone(),
            path: self.last_path(),
            reason: reason.into(),
        }
    }

    fn fail(&self, op: &'static str, source: impl Into<io::Error>) -> LayerError {
        LayerError::Apply {
            digest: self.digest.clone(),
            path: self.last_path(),
            op,
            source: source.into(),
        }
    }

    fn warn(&mut self, message: String) {
        self.warnings.push(UnpackWarning {
            path: self.last_path(),
            message,
        });
    }

    pub(crate) fn apply<R: Read>(
        &mut self,
        entry: Entry,
        data: &mut TarReader<R>,
    ) -> Result<(), LayerError> {
        self.entries += 1;
        self.last.clone_from(&entry.path);
        let comps = components(&entry.path).map_err(|reason| self.unsafe_entry(reason))?;
        let Some((name, parent)) = comps.split_last() else {
            return Ok(()); // the root itself: left as it is
        };
        if parent.iter().any(|c| is_reserved(c)) {
            return Err(self.unsafe_entry("a `.wh.` name used as a directory"));
        }
        match classify(name) {
            Name::Plain => {}
            Name::Opaque => return self.opaque(parent),
            Name::Delete(target) => return self.whiteout(parent, target),
            Name::Meta => {
                self.warn("AUFS metadata entry ignored".into());
                return Ok(());
            }
            Name::Invalid => return Err(self.unsafe_entry("whiteout of `.`, `..` or nothing")),
        }
        let dir = self
            .root
            .dir(parent, true)
            .map_err(|e| self.fail("resolving the parent of", e))?;
        let dir = dir.as_fd();
        match entry.kind {
            Kind::Dir => self.make_dir(dir, name, &comps, &entry)?,
            Kind::File => self.make_file(dir, name, &entry, data)?,
            Kind::Symlink => self.make_symlink(dir, name, &entry)?,
            Kind::Hardlink => self.make_hardlink(dir, name, &entry)?,
            Kind::Char | Kind::Block | Kind::Fifo => {
                if !self.make_node(dir, name, &entry)? {
                    return Ok(());
                }
            }
        }
        self.created.insert(join(&comps));
        Ok(())
    }

    /// Clears the way for a new `name` in `dir`; `true` if an existing
    /// directory is kept because a directory is wanted.
    fn prepare(
        &self,
        dir: BorrowedFd<'_>,
        name: &[u8],
        want_dir: bool,
    ) -> Result<bool, LayerError> {
        make_way(dir, name, want_dir).map_err(|e| self.fail("replacing", e))
    }

    fn make_dir(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &[u8],
        comps: &[&[u8]],
        entry: &Entry,
    ) -> Result<(), LayerError> {
        if !self.prepare(dir, name, true)? {
            rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o700))
                .map_err(|e| self.fail("creating directory", e))?;
        }
        let fd = open_dir(dir, name).map_err(|e| self.fail("opening directory", e))?;
        self.chown(Some(fd.as_fd()), dir, name, entry)?;
        self.xattrs(Some(fd.as_fd()), dir, name, entry);
        let id = identity(fd.as_fd()).map_err(|e| self.fail("inspecting directory", e))?;
        self.dirs.push(DeferredDir {
            path: join(comps),
            id,
            mode: entry.mode,
            times: times(entry),
        });
        Ok(())
    }

    fn make_file<R: Read>(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &[u8],
        entry: &Entry,
        data: &mut TarReader<R>,
    ) -> Result<(), LayerError> {
        self.prepare(dir, name, false)?;
        let flags =
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd: OwnedFd = rustix::fs::openat(dir, name, flags, Mode::from_raw_mode(0o600))
            .map_err(|e| self.fail("creating file", e))?;
        let mut file = File::from(fd);
        if self.buf.is_empty() {
            self.buf = vec![0; COPY_BUFFER];
        }
        loop {
            let n = match data.read(&mut self.buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(tar_error(
                        self.digest,
                        data.offset(),
                        self.last_path(),
                        TarError::from(e),
                    ));
                }
            };
            file.write_all(&self.buf[..n])
                .map_err(|e| self.fail("writing", e))?;
        }
        self.chown(Some(file.as_fd()), dir, name, entry)?;
        rustix::fs::fchmod(&file, Mode::from_raw_mode(entry.mode))
            .map_err(|e| self.fail("setting the mode of", e))?;
        self.xattrs(Some(file.as_fd()), dir, name, entry);
        rustix::fs::futimens(&file, &times(entry)).map_err(|e| self.fail("setting the times of", e))
    }

    fn make_symlink(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &[u8],
        entry: &Entry,
    ) -> Result<(), LayerError> {
        if entry.link.is_empty() || entry.link.contains(&0) {
            return Err(self.unsafe_entry("symlink target is empty or contains NUL"));
        }
        self.prepare(dir, name, false)?;
        rustix::fs::symlinkat(&entry.link[..], dir, name)
            .map_err(|e| self.fail("creating symlink", e))?;
        self.chown(None, dir, name, entry)?;
        self.xattrs(None, dir, name, entry);
        rustix::fs::utimensat(dir, name, &times(entry), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| self.fail("setting the times of", e))
    }

    fn make_hardlink(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &[u8],
        entry: &Entry,
    ) -> Result<(), LayerError> {
        let target = components(&entry.link)
            .map_err(|r| self.unsafe_entry(format!("hardlink target: {r}")))?;
        let Some((tname, tparent)) = target.split_last() else {
            return Err(self.unsafe_entry("hardlink to the root"));
        };
        let missing = || self.unsafe_entry("hardlink target does not exist in the root");
        let tdir = match self.root.dir(tparent, false) {
            Ok(fd) => fd,
            Err(e) if matches!(e.raw_os_error(), Some(c) if c == Errno::NOENT.raw_os_error() || c == Errno::NOTDIR.raw_os_error()) =>
            {
                return Err(missing());
            }
            Err(e) => return Err(self.fail("resolving the hardlink target of", e)),
        };
        let st = match rustix::fs::statat(&tdir, *tname, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(Errno::NOENT) => return Err(missing()),
            Err(e) => return Err(self.fail("inspecting the hardlink target of", e)),
        };
        if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
            return Err(self.unsafe_entry("hardlink to a directory"));
        }
        if let Ok(existing) = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)
            && (existing.st_dev, existing.st_ino) == (st.st_dev, st.st_ino)
        {
            return Ok(());
        }
        self.prepare(dir, name, false)?;
        rustix::fs::linkat(&tdir, *tname, dir, name, AtFlags::empty())
            .map_err(|e| self.fail("creating hardlink", e))
    }

    /// Devices and FIFOs; `false` when a device was skipped.
    fn make_node(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &[u8],
        entry: &Entry,
    ) -> Result<bool, LayerError> {
        let kind = match entry.kind {
            Kind::Char => FileType::CharacterDevice,
            Kind::Block => FileType::BlockDevice,
            _ => FileType::Fifo,
        };
        if kind != FileType::Fifo && !self.privileged {
            self.warn("device node skipped: not running as root".into());
            return Ok(false);
        }
        self.prepare(dir, name, false)?;
        let dev = rustix::fs::makedev(entry.dev.0, entry.dev.1);
        match rustix::fs::mknodat(dir, name, kind, Mode::from_raw_mode(entry.mode), dev) {
            Ok(()) => {}
            // Root in a user namespace cannot make devices either.
            Err(Errno::PERM) if kind != FileType::Fifo => {
                self.warn("device node skipped: not permitted".into());
                return Ok(false);
            }
            Err(e) => return Err(self.fail("creating node", e)),
        }
        self.chown(None, dir, name, entry)?;
        // Just made by us and not a symlink: chmodat cannot be led astray.
        rustix::fs::chmodat(dir, name, Mode::from_raw_mode(entry.mode), AtFlags::empty())
            .map_err(|e| self.fail("setting the mode of", e))?;
        self.xattrs(None, dir, name, entry);
        rustix::fs::utimensat(dir, name, &times(entry), AtFlags::SYMLINK_NOFOLLOW)
            .map_err(|e| self.fail("setting the times of", e))?;
        Ok(true)
    }

    /// Sets the owner, through `fd` when there is one, else on `name` in
    /// `dir` without following it.
    fn chown(
        &mut self,
        fd: Option<BorrowedFd<'_>>,
        dir: BorrowedFd<'_>,
        name: &[u8],
        entry: &Entry,
    ) -> Result<(), LayerError> {
        let (uid, gid, strict) = match &self.ownership {
            Ownership::Auto | Ownership::Skip => return Ok(()),
            Ownership::Preserve => (entry.uid, entry.gid, true),
            Ownership::Map(map) => match map(entry.uid, entry.gid) {
                Some((uid, gid)) => (uid, gid, false),
                None => {
                    self.warn(format!(
                        "no host ids for {}:{}; owner left as is",
                        entry.uid, entry.gid
                    ));
                    return Ok(());
                }
            },
        };
        let (uid, gid) = (Some(Uid::from_raw(uid)), Some(Gid::from_raw(gid)));
        let result = match fd {
            Some(fd) => rustix::fs::fchown(fd, uid, gid),
            None => rustix::fs::chownat(dir, name, uid, gid, AtFlags::SYMLINK_NOFOLLOW),
        };
        match result {
            Ok(()) => Ok(()),
            Err(Errno::INVAL) if strict && self.in_user_namespace() => {
                self.unmapped_owner(fd, dir, name, entry);
                Ok(())
            }
            Err(e) if strict => Err(self.fail("changing the owner of", e)),
            Err(e) => {
                self.warn(format!("chown to {}:{} failed: {e}", entry.uid, entry.gid));
                Ok(())
            }
        }
    }

    fn in_user_namespace(&mut self) -> bool {
        *self
            .in_userns
            .get_or_insert_with(crate::ops::run::in_user_namespace)
    }

    /// The entry's uid or gid (or both) is not mapped in our user namespace:
    /// set whichever one is, count the entry, warn once per layer.
    fn unmapped_owner(
        &mut self,
        fd: Option<BorrowedFd<'_>>,
        dir: BorrowedFd<'_>,
        name: &[u8],
        entry: &Entry,
    ) {
        let owners = [
            (Some(Uid::from_raw(entry.uid)), None),
            (None, Some(Gid::from_raw(entry.gid))),
        ];
        for (uid, gid) in owners {
            // Either may fail again (it is the unmapped one): that is the case
            // being tolerated.
            let _ = match fd {
                Some(fd) => rustix::fs::fchown(fd, uid, gid),
                None => rustix::fs::chownat(dir, name, uid, gid, AtFlags::SYMLINK_NOFOLLOW),
            };
        }
        self.unmapped += 1;
        if self.unmapped == 1 {
            self.unmapped_warning = self.warnings.len();
            self.warn(format!(
                "owner {}:{} is not mapped in this user namespace (see /etc/subuid and \
                 /etc/subgid); the unmapped ids are left as they were",
                entry.uid, entry.gid
            ));
        }
    }

    /// Best effort: a failure is a warning (no `trusted.*` when not root,
    /// no `user.*` on some filesystems).
    fn xattrs(
        &mut self,
        fd: Option<BorrowedFd<'_>>,
        dir: BorrowedFd<'_>,
        name: &[u8],
        entry: &Entry,
    ) {
        for (key, value) in &entry.xattrs {
            let shown = String::from_utf8_lossy(key);
            if is_dropped_xattr(key) {
                self.warn(format!("xattr {shown} dropped"));
                continue;
            }
            let result = match fd {
                Some(fd) => rustix::fs::fsetxattr(fd, &key[..], value, XattrFlags::empty()),
                None => {
                    // No fd for a symlink or a node: name it through our
                    // directory fd; the final component is not followed.
                    let mut path = format!("/proc/self/fd/{}/", dir.as_raw_fd()).into_bytes();
                    path.extend_from_slice(name);
                    rustix::fs::lsetxattr(&path[..], &key[..], value, XattrFlags::empty())
                }
            };
            if let Err(e) = result {
                self.warn(format!("xattr {shown} not set: {e}"));
            }
        }
    }

    /// `.wh.NAME`: removes `parent/NAME` unless this layer made it.
    fn whiteout(&mut self, parent: &[&[u8]], target: &[u8]) -> Result<(), LayerError> {
        let mut full = parent.to_vec();
        full.push(target);
        if self.created.contains(&join(&full)) {
            return Ok(());
        }
        if self.overlay_format {
            // overlayfs's whiteout: a 0:0 character device in its place.
            let dir = self
                .root
                .dir(parent, true)
                .map_err(|e| self.fail("resolving the parent of", e))?;
            return rustix::fs::mknodat(
                dir.as_fd(),
                to_path(target).as_path(),
                rustix::fs::FileType::CharacterDevice,
                Mode::empty(),
                0,
            )
            .map_err(|e| self.fail("making an overlay whiteout", e));
        }
        let dir = match self.root.dir(parent, false) {
            Ok(fd) => fd,
            Err(e) if is_absent(&e) => return Ok(()),
            Err(e) => return Err(self.fail("resolving the parent of", e)),
        };
        remove_all(dir.as_fd(), target).map_err(|e| self.fail("applying whiteout", e))
    }

    /// `.wh..wh..opq`: clears `dir`'s contents from lower layers.
    fn opaque(&mut self, dir: &[&[u8]]) -> Result<(), LayerError> {
        if self.overlay_format {
            let fd = self
                .root
                .dir(dir, true)
                .map_err(|e| self.fail("resolving the opaque directory of", e))?;
            // The resolved descriptor is `O_PATH`, on which `fsetxattr`
            // is `EBADF`: the xattr goes through the directory itself,
            // opened for reading from it (`.` is that very inode).
            let fd = open_dir(fd.as_fd(), b".")
                .map_err(|e| self.fail("opening the opaque directory of", e))?;
            let in_userns = *self
                .in_userns
                .get_or_insert_with(crate::ops::run::in_user_namespace);
            let key = if in_userns {
                "user.overlay.opaque"
            } else {
                "trusted.overlay.opaque"
            };
            return rustix::fs::fsetxattr(fd.as_fd(), key, b"y", rustix::fs::XattrFlags::empty())
                .map_err(|e| self.fail("marking an overlay opaque directory", e));
        }
        let fd = match dir.split_last() {
            None => open_dir(self.root.fd(), b"."),
            Some((name, parent)) => match self.root.dir(parent, false) {
                Ok(p) => open_dir(p.as_fd(), name),
                Err(e) => Err(e),
            },
        };
        let fd = match fd {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(Errno::NOENT.raw_os_error()) => return Ok(()),
            Err(e)
                if e.raw_os_error() == Some(Errno::LOOP.raw_os_error())
                    || e.raw_os_error() == Some(Errno::NOTDIR.raw_os_error()) =>
            {
                return Err(self.unsafe_entry("opaque marker in a symlink or a non-directory"));
            }
            Err(e) => return Err(self.fail("opening the opaque directory of", e)),
        };
        let created = &self.created;
        let mut prefix = join(dir);
        clear_dir(fd.as_fd(), &mut prefix, &|p| created.contains(p))
            .map_err(|e| self.fail("applying opaque marker", e))
    }

    /// Sets the deferred directory modes and times, deepest first; returns
    /// the entry count and the warnings.
    pub(crate) fn finish(mut self) -> Result<(u64, Vec<UnpackWarning>), LayerError> {
        let dirs = std::mem::take(&mut self.dirs);
        // Found again in the root and applied only to the inode that was
        // made: a later entry that replaced it (or a parent) is skipped.
        for d in dirs.iter().rev() {
            self.last.clone_from(&d.path);
            d.apply(self.root, true)
                .map_err(|e| self.fail("setting the mode and times of", e))?;
        }
        if self.unmapped > 1
            && let Some(w) = self.warnings.get_mut(self.unmapped_warning)
        {
            w.message
                .push_str(&format!(" ({} entries of this layer)", self.unmapped));
        }
        Ok((self.entries, self.warnings))
    }
}

fn is_absent(e: &io::Error) -> bool {
    e.raw_os_error() == Some(Errno::NOENT.raw_os_error())
        || e.raw_os_error() == Some(Errno::NOTDIR.raw_os_error())
}
