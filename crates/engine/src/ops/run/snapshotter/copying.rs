//! The copying snapshotter, for hosts where overlayfs cannot be mounted
//! (some container runtimes, old kernels, filesystems overlay refuses as
//! an upper dir). It gives the rest of the pipeline exactly what the
//! overlay gives it: an upper dir in overlayfs's own format.
//!
//! ```text
//! lower stack (top first) ──merge──▶ merged (a plain tree) ──step──▶ merged'
//! merged' vs lower stack  ──diff───▶ upper: changed and new entries,
//!                                    0:0 char devices for deletions,
//!                                    opaque dirs (overlay.opaque=y)
//! ```
//!
//! [`merge`] reads the lower dirs as overlayfs does (a 0:0 character device
//! hides a name, an opaque directory hides what is below it) and copies
//! what shows through: types, modes, owners, times (ns), xattrs (not
//! overlay's), hardlinks within one lower, symlinks as symlinks (never
//! followed). The sandbox uses `merged` as the root as it is
//! (`Rootfs::copy`). After a successful step, [`diff`] compares `merged`
//! with the lower stack by type, mode, owner, mtime (ns), size, symlink
//! target, device number, xattrs, new hard links and, where all of that is
//! equal, bytes (as `prune` does), and moves what changed into the upper
//! dir (a rename; a copy across filesystems). A directory that replaced a
//! lower non-directory, or that the step made again (born after the copy;
//! where the filesystem keeps no birth time: whose lower contents are all
//! gone or replaced) is opaque, as overlayfs makes it, and everything in it
//! goes up. `merged` is then removed.
//!
//! What it guarantees (the shared suite, `tests/snapshotter_suite.rs`,
//! holds it to the same upper dir as [`super::OverlaySnapshotter`]'s):
//! the step sees the tree the overlay would show, and the upper dir holds
//! exactly what changed, no unchanged copy-ups. Where it differs: the
//! root is on the store's filesystem, not an overlay mount; a write to
//! one name of a lower hard-link pair changes both (overlayfs breaks the
//! pair); a directory is taken for re-made only if it was born after the
//! copy ended (a filesystem clock tick) or nothing of the lower shows
//! through it any more.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::fs::{self, Metadata};
use std::io;
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rustix::fs::{AtFlags, CWD, FileType, Gid, Mode, Timespec, Timestamps, Uid, XattrFlags};

use hoist_sandbox::Rootfs;

use super::prune::{is_opaque, is_whiteout, same_bytes, same_meta};
use super::{Prepared, Snapshotter, SnapshotterKind};
use crate::ops::run::RunError;

/// The copying snapshotter: a plain copy of the lower stack as the root,
/// diffed into the upper dir after the step.
#[derive(Debug, Clone, Copy, Default)]
pub struct CopySnapshotter;

impl Snapshotter for CopySnapshotter {
    type State = Merged;

    const KIND: SnapshotterKind = SnapshotterKind::Copy;

    fn prepare(
        &self,
        lower: &[PathBuf],
        upper: &Path,
        scratch: &Path,
    ) -> Result<Prepared<Merged>, RunError> {
        let (lower, merged) = super::layout(lower, upper, scratch, false)?;
        let state = merge(&lower, &merged)?;
        Ok(Prepared::new(
            Rootfs {
                lower,
                upper: upper.to_path_buf(),
                work: PathBuf::new(),
                merged,
                copy: true,
            },
            state,
        ))
    }

    fn commit(&self, prepared: Prepared<Merged>) -> Result<(), RunError> {
        let (r, state) = prepared.into_parts();
        diff(&r.merged, &r.lower, &r.upper, &state)
    }

    fn cleanup(&self, prepared: Prepared<Merged>) -> Result<(), RunError> {
        let (r, _) = prepared.into_parts();
        match fs::remove_dir_all(&r.merged) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e).ctx("remove", &r.merged),
            _ => Ok(()),
        }
    }
}

/// What [`merge`] made that [`diff`] needs: how many names each
/// multiply-linked inode of `merged` had (a new hard link is a change),
/// and when the copy was done (a directory born later was made by the
/// step), where the filesystem records birth times.
#[derive(Debug, Default)]
pub struct Merged {
    names: HashMap<u64, u64>,
    done: Option<SystemTime>,
}

/// Copy what the lower stack shows (top first) into the empty dir `merged`.
pub(super) fn merge(lowers: &[PathBuf], merged: &Path) -> Result<Merged, RunError> {
    let mut out = Merged::default();
    let mut links = HashMap::new();
    merge_dir(lowers, merged, &mut links, &mut out)?;
    if let Some(top) = lowers.first() {
        let meta = fs::symlink_metadata(top).ctx("stat", top)?;
        set_meta(top, &meta, merged)?;
    }
    // The root's change time is the filesystem's clock at the end of the copy.
    let root = fs::symlink_metadata(merged).ctx("stat", merged)?;
    if root.created().is_ok() {
        let ctime = Duration::new(root.ctime().max(0) as u64, root.ctime_nsec() as u32);
        out.done = Some(SystemTime::UNIX_EPOCH + ctime);
    }
    Ok(out)
}

fn merge_dir(
    below: &[PathBuf],
    to: &Path,
    links: &mut Links,
    out: &mut Merged,
) -> Result<(), RunError> {
    for (name, l) in list(below)? {
        let dst = to.join(&name);
        if l.meta.is_dir() {
            mkdir(&dst)?;
            merge_dir(&l.below, &dst, links, out)?;
            set_meta(&l.path, &l.meta, &dst)?;
            continue;
        }
        if !node(&l.path, &l.meta, &dst, links)? {
            set_meta(&l.path, &l.meta, &dst)?;
        }
        if l.meta.nlink() > 1 {
            let ino = fs::symlink_metadata(&dst).ctx("stat", &dst)?.ino();
            *out.names.entry(ino).or_insert(0) += 1;
        }
    }
    Ok(())
}

/// Write what the step changed in `merged` (against `lowers`, top first)
/// into `upper` in overlayfs's format, then remove `merged`.
pub(super) fn diff(
    merged: &Path,
    lowers: &[PathBuf],
    upper: &Path,
    state: &Merged,
) -> Result<(), RunError> {
    let meta = fs::symlink_metadata(merged).ctx("stat", merged)?;
    let mut differ = Differ {
        state,
        links: HashMap::new(),
        opaque: if hoist_sandbox::userns::in_user_namespace() {
            "user.overlay.opaque"
        } else {
            "trusted.overlay.opaque"
        },
    };
    differ.dir(merged, &meta, lowers, None, upper)?;
    fs::remove_dir_all(merged).ctx("remove", merged)
}

/// Files with several names already copied: (dev, ino) → first copy.
type Links = HashMap<(u64, u64), PathBuf>;

/// One name as the lower stack shows it.
struct Lower {
    /// Its topmost copy.
    path: PathBuf,
    meta: Metadata,
    /// For a directory: its copy in each layer that shows through, top first.
    below: Vec<PathBuf>,
    /// Whether lower layers still show through (a directory not yet opaque).
    open: bool,
}

/// The merged listing of one directory over its layers (top first).
fn list(dirs: &[PathBuf]) -> Result<BTreeMap<OsString, Lower>, RunError> {
    // None: whited out.
    let mut seen: BTreeMap<OsString, Option<Lower>> = BTreeMap::new();
    for dir in dirs {
        for entry in fs::read_dir(dir).ctx("read", dir)? {
            let name = entry.ctx("read", dir)?.file_name();
            let path = dir.join(&name);
            let meta = fs::symlink_metadata(&path).ctx("stat", &path)?;
            match seen.get_mut(&name) {
                None => {
                    let shown = (!is_whiteout(&meta)).then(|| Lower {
                        below: if meta.is_dir() {
                            vec![path.clone()]
                        } else {
                            Vec::new()
                        },
                        open: meta.is_dir() && !is_opaque(&path),
                        path,
                        meta,
                    });
                    seen.insert(name, shown);
                }
                Some(Some(l)) if l.open => {
                    // A whiteout or a non-directory here hides what is below.
                    l.open = meta.is_dir() && !is_whiteout(&meta);
                    if l.open {
                        l.open = !is_opaque(&path);
                        l.below.push(path);
                    }
                }
                Some(_) => {}
            }
        }
    }
    Ok(seen
        .into_iter()
        .filter_map(|(n, l)| l.map(|l| (n, l)))
        .collect())
}

/// How a merged entry compares with the lower one at its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    /// Nothing below.
    New,
    Same,
    Changed,
    /// Directories on both sides: look inside.
    Dir,
    /// A directory where the lower has something else (opaque).
    DirOverOther,
}

struct Differ<'a> {
    state: &'a Merged,
    /// Copies made across filesystems: (dev, ino) in merged → upper path.
    links: Links,
    opaque: &'static str,
}

impl Differ<'_> {
    /// The directory `m` (metadata `mm`, taken before anything moved out
    /// of it) over the lower directories `below`, whose entry is `lower`
    /// (none for the root). Writes the changes to `u`; false when there
    /// were none (and `u` was not left behind).
    fn dir(
        &mut self,
        m: &Path,
        mm: &Metadata,
        below: &[PathBuf],
        lower: Option<&Lower>,
        u: &Path,
    ) -> Result<bool, RunError> {
        let root = lower.is_none();
        if !root {
            mkdir(u)?;
        }
        let shown = list(below)?;
        let mut names = Vec::new();
        for entry in fs::read_dir(m).ctx("read", m)? {
            names.push(entry.ctx("read", m)?.file_name());
        }
        names.sort();
        // A directory the step made again (`rm -rf d && mkdir d`) is opaque
        // in overlayfs: known by its birth time where the filesystem keeps
        // one, else by nothing of the lower showing through any more.
        let born_in_step = match (self.state.done, mm.created()) {
            (Some(done), Ok(born)) => Some(born > done),
            _ => None,
        };
        let mut entries = Vec::with_capacity(names.len());
        for name in names {
            let path = m.join(&name);
            let meta = fs::symlink_metadata(&path).ctx("stat", &path)?;
            let change = match shown.get(&name) {
                None => Change::New,
                // Under an opaque directory everything is new.
                Some(_) if !root && born_in_step == Some(true) => Change::New,
                Some(l) => match (meta.is_dir(), l.meta.is_dir()) {
                    (true, true) => Change::Dir,
                    (true, false) => Change::DirOverOther,
                    _ if self.changed(&path, &meta, l)? => Change::Changed,
                    _ => Change::Same,
                },
            };
            entries.push((name, meta, change));
        }
        let changes: HashMap<&OsString, Change> = entries.iter().map(|(n, _, c)| (n, *c)).collect();
        let opaque = !root
            && born_in_step.unwrap_or_else(|| {
                !shown.is_empty()
                    && shown
                        .keys()
                        .all(|n| !matches!(changes.get(n), Some(Change::Same | Change::Dir)))
            });
        let mut wrote = false;
        for (name, meta, change) in &entries {
            let (mp, up) = (m.join(name), u.join(name));
            match change {
                // Nothing below an opaque directory shows through: all of
                // it goes up, whatever the lower has.
                _ if opaque => self.move_in(&mp, meta, &up)?,
                Change::Same => continue,
                Change::Dir => {
                    let l = &shown[name];
                    if !self.dir(&mp, meta, &l.below, Some(l), &up)? {
                        continue;
                    }
                }
                Change::New | Change::Changed => self.move_in(&mp, meta, &up)?,
                Change::DirOverOther => {
                    self.move_in(&mp, meta, &up)?;
                    self.set_opaque(&up)?;
                }
            }
            wrote = true;
        }
        if !opaque {
            for name in shown.keys().filter(|n| !changes.contains_key(n)) {
                let gone = u.join(name);
                rustix::fs::mknodat(
                    CWD,
                    &gone,
                    FileType::CharacterDevice,
                    Mode::empty(),
                    rustix::fs::makedev(0, 0),
                )
                .ctx("make the whiteout", &gone)?;
                wrote = true;
            }
        }
        let changed_itself = match lower {
            None => true,
            Some(l) => !same_meta(mm, &l.meta) || xattrs(m)? != xattrs(&l.path)?,
        };
        if !(wrote || opaque || changed_itself) {
            fs::remove_dir(u).ctx("remove", u)?;
            return Ok(false);
        }
        if opaque {
            self.set_opaque(u)?;
        }
        set_meta(m, mm, u)?;
        Ok(true)
    }

    /// Whether the non-directory `path` differs from the lower `l`.
    fn changed(&self, path: &Path, m: &Metadata, l: &Lower) -> Result<bool, RunError> {
        let lm = &l.meta;
        if !same_meta(m, lm) {
            return Ok(true);
        }
        let ft = m.file_type();
        if ft.is_symlink() {
            let a = fs::read_link(path).ctx("read the link", path)?;
            return Ok(a != fs::read_link(&l.path).ctx("read the link", &l.path)?);
        }
        if (ft.is_char_device() || ft.is_block_device()) && m.rdev() != lm.rdev() {
            return Ok(true);
        }
        if ft.is_file() {
            let names = self.state.names.get(&m.ino()).copied().unwrap_or(1);
            if m.len() != lm.len() || m.nlink() > names {
                return Ok(true);
            }
        }
        if xattrs(path)? != xattrs(&l.path)? {
            return Ok(true);
        }
        if ft.is_file() {
            return Ok(!same_bytes(path, &l.path).ctx("compare", path)?);
        }
        Ok(false)
    }

    /// Put the merged entry `from` (and all below it) at `to` in the upper
    /// dir: a rename, or a copy across filesystems.
    fn move_in(&mut self, from: &Path, meta: &Metadata, to: &Path) -> Result<(), RunError> {
        match fs::rename(from, to) {
            Ok(()) => Ok(()),
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::XDEV.raw_os_error()) => {
                self.copy_tree(from, meta, to)
            }
            Err(e) => Err(e).ctx("move into the upper dir", from),
        }
    }

    fn copy_tree(&mut self, from: &Path, meta: &Metadata, to: &Path) -> Result<(), RunError> {
        if !meta.is_dir() {
            if !node(from, meta, to, &mut self.links)? {
                set_meta(from, meta, to)?;
            }
            return Ok(());
        }
        mkdir(to)?;
        for entry in fs::read_dir(from).ctx("read", from)? {
            let name = entry.ctx("read", from)?.file_name();
            let path = from.join(&name);
            let child = fs::symlink_metadata(&path).ctx("stat", &path)?;
            self.copy_tree(&path, &child, &to.join(&name))?;
        }
        set_meta(from, meta, to)
    }

    fn set_opaque(&self, dir: &Path) -> Result<(), RunError> {
        rustix::fs::lsetxattr(dir, self.opaque, b"y", XattrFlags::empty()).ctx("mark opaque", dir)
    }
}

/// Make `dst` like `src` (not a directory; its metadata comes after).
/// True when it was made as a hard link to an earlier copy.
fn node(src: &Path, meta: &Metadata, dst: &Path, links: &mut Links) -> Result<bool, RunError> {
    let ft = meta.file_type();
    let key = (meta.dev(), meta.ino());
    if ft.is_file() && meta.nlink() > 1 {
        if let Some(first) = links.get(&key) {
            fs::hard_link(first, dst).ctx("link", dst)?;
            return Ok(true);
        }
        links.insert(key, dst.to_path_buf());
    }
    if ft.is_file() {
        fs::copy(src, dst).ctx("copy", src)?;
    } else if ft.is_symlink() {
        let target = fs::read_link(src).ctx("read the link", src)?;
        rustix::fs::symlink(&target, dst).ctx("symlink", dst)?;
    } else {
        rustix::fs::mknodat(
            CWD,
            dst,
            FileType::from_raw_mode(meta.mode()),
            Mode::from_raw_mode(meta.mode() & 0o7777),
            meta.rdev(),
        )
        .ctx("mknod", dst)?;
    }
    Ok(false)
}

fn mkdir(path: &Path) -> Result<(), RunError> {
    fs::DirBuilder::new()
        .mode(0o700)
        .create(path)
        .ctx("mkdir", path)
}

/// Give `dst` the owner, mode, xattrs and times of `src` (`meta`), in the
/// order that keeps them all (chown clears setuid and capabilities).
fn set_meta(src: &Path, meta: &Metadata, dst: &Path) -> Result<(), RunError> {
    rustix::fs::chownat(
        CWD,
        dst,
        Some(Uid::from_raw(meta.uid())),
        Some(Gid::from_raw(meta.gid())),
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .ctx("chown", dst)?;
    if !meta.file_type().is_symlink() {
        rustix::fs::chmod(dst, Mode::from_raw_mode(meta.mode() & 0o7777)).ctx("chmod", dst)?;
    }
    for (name, value) in xattrs(src)? {
        match rustix::fs::lsetxattr(dst, &name[..], &value, XattrFlags::empty()) {
            Ok(()) | Err(rustix::io::Errno::NOTSUP) => {}
            Err(e) => return Err(e).ctx("set an xattr on", dst),
        }
    }
    let times = Timestamps {
        last_access: Timespec {
            tv_sec: meta.atime(),
            tv_nsec: meta.atime_nsec(),
        },
        last_modification: Timespec {
            tv_sec: meta.mtime(),
            tv_nsec: meta.mtime_nsec(),
        },
    };
    rustix::fs::utimensat(CWD, dst, &times, AtFlags::SYMLINK_NOFOLLOW).ctx("set the times of", dst)
}

/// The xattrs of `path` that belong to it: not overlayfs's bookkeeping,
/// not the host's SELinux label (the layer writer drops both too).
pub(super) fn xattrs(path: &Path) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, RunError> {
    let mut out = BTreeMap::new();
    let mut names = vec![0u8; 256];
    let n = loop {
        match rustix::fs::llistxattr(path, &mut names[..]) {
            Ok(n) => break n,
            Err(rustix::io::Errno::NOTSUP) => return Ok(out),
            Err(rustix::io::Errno::RANGE) if names.len() < (1 << 16) => names.resize(1 << 16, 0),
            Err(e) => return Err(e).ctx("list the xattrs of", path),
        }
    };
    let mut value = vec![0u8; 1 << 16];
    for name in names[..n].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        if name.starts_with(b"trusted.overlay.")
            || name.starts_with(b"user.overlay.")
            || name == b"security.selinux"
        {
            continue;
        }
        match rustix::fs::lgetxattr(path, name, &mut value[..]) {
            Ok(k) => {
                out.insert(name.to_vec(), value[..k].to_vec());
            }
            Err(rustix::io::Errno::NODATA) => {}
            Err(e) => return Err(e).ctx("read an xattr of", path),
        }
    }
    Ok(out)
}

/// An error naming what was done to which path.
trait Ctx<T> {
    fn ctx(self, what: &'static str, path: &Path) -> Result<T, RunError>;
}

impl<T, E: Into<io::Error>> Ctx<T> for Result<T, E> {
    fn ctx(self, what: &'static str, path: &Path) -> Result<T, RunError> {
        self.map_err(|e| crate::ops::run::io(what, path)(e.into()))
    }
}

#[cfg(test)]
#[path = "copy_tests.rs"]
mod tests;
