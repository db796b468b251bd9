//! Copy-ups that changed nothing. overlayfs copies a file or directory up
//! into the upper dir as soon as it is opened for writing or a mount point
//! is made under it, whether or not anything changes; BuildKit's differ
//! leaves such entries out, and so does hoist: an upper entry whose type,
//! mode, owner, mtime, xattrs (and for files size and bytes) equal what the
//! lower stack shows at that path is removed before the layer is written.

use std::fs::{self, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Remove unchanged copy-ups from `upper`; `lowers` top first.
pub fn prune_copy_ups(upper: &Path, lowers: &[PathBuf]) -> io::Result<()> {
    prune_dir(upper, Path::new(""), lowers).map(|_| ())
}

/// Prune under `upper/rel`; true when it is left empty.
fn prune_dir(upper: &Path, rel: &Path, lowers: &[PathBuf]) -> io::Result<bool> {
    let mut empty = true;
    let dir = upper.join(rel);
    for entry in fs::read_dir(&dir).map_err(at("read", &dir))? {
        let entry = entry.map_err(at("read", &dir))?;
        let rel = rel.join(entry.file_name());
        let path = upper.join(&rel);
        let meta = fs::symlink_metadata(&path).map_err(at("stat", &path))?;
        let removed = if meta.is_dir() {
            let children_gone = prune_dir(upper, &rel, lowers)?;
            children_gone
                && !is_opaque(&path)
                && lower_entry(lowers, &rel).is_some_and(|(lp, l)| {
                    l.is_dir() && same_meta(&meta, &l) && same_xattrs(&path, &lp)
                })
                && fs::remove_dir(&path).is_ok()
        } else if meta.is_file() && meta.nlink() == 1 {
            match lower_entry(lowers, &rel) {
                Some((lp, l)) if l.is_file() && same_meta(&meta, &l) && l.len() == meta.len() => {
                    same_xattrs(&path, &lp)
                        && same_bytes(&path, &lp).map_err(at("compare", &path))?
                        && fs::remove_file(&path).is_ok()
                }
                _ => false,
            }
        } else {
            false
        };
        if !removed {
            empty = false;
        }
    }
    Ok(empty)
}

/// An io error that names what was done to which path (the caller names
/// only the upper dir).
fn at<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> io::Error + 'a {
    move |e| io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

/// Type, permissions, owner and mtime (ns) are equal (the copy
/// snapshotter uses it too).
pub(super) fn same_meta(a: &Metadata, b: &Metadata) -> bool {
    a.mode() == b.mode()
        && a.uid() == b.uid()
        && a.gid() == b.gid()
        && a.mtime() == b.mtime()
        && a.mtime_nsec() == b.mtime_nsec()
}

/// Whether two entries carry the same xattrs (overlayfs's own and the
/// SELinux label aside); unreadable ones count as different.
fn same_xattrs(a: &Path, b: &Path) -> bool {
    matches!((super::copying::xattrs(a), super::copying::xattrs(b)), (Ok(x), Ok(y)) if x == y)
}

/// Whether two files hold the same bytes (the copy snapshotter uses it too).
pub(super) fn same_bytes(a: &Path, b: &Path) -> io::Result<bool> {
    let (mut fa, mut fb) = (fs::File::open(a)?, fs::File::open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    loop {
        let n = read_full(&mut fa, &mut ba)?;
        let m = read_full(&mut fb, &mut bb)?;
        if n != m || ba[..n] != bb[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

fn read_full(f: &mut fs::File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// What the lower stack shows at `rel`: the first layer that has it, unless
/// a whiteout or an opaque directory on the way hides it. Parents must be
/// real directories in the layer (a symlink is never followed).
fn lower_entry(lowers: &[PathBuf], rel: &Path) -> Option<(PathBuf, Metadata)> {
    let parts: Vec<_> = rel.components().collect();
    for lower in lowers {
        let mut dir = lower.clone();
        for (i, part) in parts.iter().enumerate() {
            dir.push(part);
            let last = i + 1 == parts.len();
            match fs::symlink_metadata(&dir) {
                Ok(m) if is_whiteout(&m) => return None,
                Ok(m) if last => return Some((dir, m)),
                Ok(m) if m.is_dir() => {
                    if is_opaque(&dir) {
                        // Lower layers are hidden below here.
                        let rest: PathBuf = parts[i + 1..].iter().collect();
                        return fs::symlink_metadata(dir.join(&rest))
                            .ok()
                            .filter(|_| real_dirs(&dir, &rest))
                            .filter(|m| !is_whiteout(m))
                            .map(|m| (dir.join(rest), m));
                    }
                }
                // A file or symlink where a parent should be: this layer
                // replaces the path; nothing below shows through.
                Ok(_) => return None,
                // Not in this layer: look in the one below.
                Err(_) => break,
            }
        }
    }
    None
}

/// Every parent of `rest` under `base` is a real directory.
fn real_dirs(base: &Path, rest: &Path) -> bool {
    let mut dir = base.to_path_buf();
    let parts: Vec<_> = rest.components().collect();
    for part in &parts[..parts.len().saturating_sub(1)] {
        dir.push(part);
        match fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            _ => return false,
        }
    }
    true
}

/// overlayfs's whiteout: a 0:0 character device.
pub(super) fn is_whiteout(m: &Metadata) -> bool {
    m.file_type().is_char_device() && m.rdev() == 0
}

/// An overlayfs opaque directory (root's `trusted.` or a user namespace's `user.` xattr).
pub(super) fn is_opaque(dir: &Path) -> bool {
    let mut value = [0u8; 1];
    ["trusted.overlay.opaque", "user.overlay.opaque"]
        .iter()
        .any(|name| matches!(rustix::fs::lgetxattr(dir, *name, &mut value), Ok(1) if value[0] == b'y'))
}
