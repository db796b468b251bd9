//! Unpacking a context sent as a tar stream (`hoist build -`) into a
//! scratch directory, safely.
//!
//! Only regular files, directories, symlinks and hardlinks are accepted.
//! Names are cleaned; an absolute name or a `..` component is refused, as
//! is any entry whose parent path goes through a symlink (the tar made it,
//! and following it could write outside the scratch directory). Symlinks
//! are created as they are, never followed; a hardlink must name a regular
//! file already unpacked. Modes (`0o7777`) and mtimes are kept, ownership
//! is not (`COPY` sets it). gzip and zstd streams are recognised by their
//! first bytes.

use std::ffi::OsStr;
use std::fs;
use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps};
use rustix::io::Errno;
use tar::EntryType;

use crate::layer::Resolver;
use crate::layer::resolve::{DeferredDir, Root, identity, make_way, open_dir};

use super::{ContextError, IoAt, Result};

fn tar_err(name: &str, reason: impl Into<String>) -> ContextError {
    ContextError::Tar {
        name: name.to_string(),
        reason: reason.into(),
    }
}

/// The stream, decompressed when it starts with a gzip or zstd magic.
fn decompress<'a, R: Read + 'a>(reader: R) -> io::Result<Box<dyn Read + 'a>> {
    let mut buf = BufReader::new(reader);
    let head = buf.fill_buf()?;
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(flate2::read::MultiGzDecoder::new(buf)))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Ok(Box::new(zstd::stream::read::Decoder::with_buffer(buf)?))
    } else {
        Ok(Box::new(buf))
    }
}

/// A tar name made relative and checked: `None` for the root itself.
fn safe_name(name: &str) -> Result<Option<PathBuf>, &'static str> {
    let mut out = PathBuf::new();
    for c in Path::new(name).components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) => {
                return Err("absolute names are not allowed");
            }
            Component::ParentDir => return Err("`..` is not allowed"),
        }
    }
    Ok((!out.as_os_str().is_empty()).then_some(out))
}

/// The entry's mtime, with the PAX record's fraction when there is one.
fn mtime<R: Read>(entry: &mut tar::Entry<'_, R>) -> (i64, u32) {
    let secs = entry.header().mtime().unwrap_or(0) as i64;
    if let Ok(Some(exts)) = entry.pax_extensions() {
        for ext in exts.flatten() {
            if ext.key() == Ok("mtime")
                && let Ok(v) = ext.value()
            {
                let (s, frac) = v.split_once('.').unwrap_or((v, ""));
                if let Ok(s) = s.parse::<i64>() {
                    let digits: String = frac.chars().take(9).collect();
                    let nsec = format!("{digits:0<9}").parse::<u32>().unwrap_or(0);
                    return (s, if s < 0 { 0 } else { nsec });
                }
            }
        }
    }
    (secs, 0)
}

/// A path's components as bytes.
fn comps(rel: &Path) -> Vec<&[u8]> {
    rel.components().map(|c| c.as_os_str().as_bytes()).collect()
}

fn timestamps(secs: i64, nsec: u32) -> Timestamps {
    let t = Timespec {
        tv_sec: secs,
        tv_nsec: nsec.into(),
    };
    Timestamps {
        last_access: t,
        last_modification: t,
    }
}

fn is_errno(e: &io::Error, set: &[Errno]) -> bool {
    set.iter()
        .any(|x| e.raw_os_error() == Some(x.raw_os_error()))
}

/// Unpacks `reader` into `scratch` (created if missing; must be empty).
///
/// Every operation is relative to a descriptor: parents are opened from
/// the root one component at a time without following any symlink (a
/// parent that is a symlink is refused), the last component is never
/// followed, and the deferred directory modes and times are applied
/// through a descriptor checked to be the directory that was made
/// ([`DeferredDir`]), so no later entry can point them elsewhere.
pub(crate) fn extract<R: Read>(reader: R, scratch: &Path) -> Result<()> {
    fs::create_dir_all(scratch).at(scratch)?;
    if fs::read_dir(scratch).at(scratch)?.next().is_some() {
        return Err(ContextError::Tar {
            name: String::new(),
            reason: format!("scratch directory {} is not empty", scratch.display()),
        });
    }
    let root = Root::open(scratch, Resolver::Auto).at(scratch)?;
    let stream = decompress(reader).at("<stdin>")?;
    let mut archive = tar::Archive::new(stream);
    let mut dirs: Vec<DeferredDir> = Vec::new();
    for item in archive.entries().at("<stdin>")? {
        let mut entry = item.map_err(|e| tar_err("", e.to_string()))?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let Some(rel) = safe_name(&name).map_err(|r| tar_err(&name, r))? else {
            continue;
        };
        let dest = scratch.join(&rel);
        let parts = comps(&rel);
        let Some((leaf, parent)) = parts.split_last() else {
            continue;
        };
        let dir = root.dir_beneath(parent, true).map_err(|e| {
            if is_errno(&e, &[Errno::NOTDIR, Errno::LOOP, Errno::XDEV]) {
                tar_err(&name, "a parent path is a symlink or not a directory")
            } else {
                ContextError::Io {
                    path: dest.clone(),
                    source: e,
                }
            }
        })?;
        let dir = dir.as_fd();
        let mode = entry.header().mode().unwrap_or(0o644) & 0o7777;
        let (secs, nsec) = mtime(&mut entry);
        let times = timestamps(secs, nsec);
        let sys = |r: rustix::io::Result<()>| r.map_err(io::Error::from).at(&dest);
        match entry.header().entry_type() {
            EntryType::Directory => {
                if !make_way(dir, leaf, true).at(&dest)? {
                    sys(rustix::fs::mkdirat(dir, *leaf, Mode::from_raw_mode(0o700)))?;
                }
                let fd = open_dir(dir, leaf).at(&dest)?;
                dirs.push(DeferredDir {
                    path: parts.join(&b'/'),
                    id: identity(fd.as_fd()).at(&dest)?,
                    mode,
                    times,
                });
            }
            EntryType::Regular | EntryType::Continuous => {
                make_way(dir, leaf, false).at(&dest)?;
                let flags = OFlags::WRONLY
                    | OFlags::CREATE
                    | OFlags::EXCL
                    | OFlags::NOFOLLOW
                    | OFlags::CLOEXEC;
                let fd = rustix::fs::openat(dir, *leaf, flags, Mode::from_raw_mode(0o600))
                    .map_err(io::Error::from)
                    .at(&dest)?;
                let mut file = fs::File::from(fd);
                io::copy(&mut entry, &mut file).at(&dest)?;
                sys(rustix::fs::fchmod(&file, Mode::from_raw_mode(mode)))?;
                sys(rustix::fs::futimens(&file, &times))?;
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| tar_err(&name, "symlink without a target"))?;
                if target.is_empty() || target.contains(&0) {
                    return Err(tar_err(&name, "symlink target is empty or contains NUL"));
                }
                make_way(dir, leaf, false).at(&dest)?;
                sys(rustix::fs::symlinkat(&target[..], dir, *leaf))?;
                sys(rustix::fs::utimensat(
                    dir,
                    *leaf,
                    &times,
                    AtFlags::SYMLINK_NOFOLLOW,
                ))?;
            }
            EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| tar_err(&name, "hardlink without a target"))?;
                let target_name = String::from_utf8_lossy(&target).into_owned();
                let target_rel = safe_name(&target_name)
                    .map_err(|r| tar_err(&name, format!("hardlink target {target_name:?}: {r}")))?
                    .ok_or_else(|| tar_err(&name, "hardlink to the root"))?;
                let not_a_file = || {
                    tar_err(
                        &name,
                        format!("hardlink target {target_name:?} is not a file unpacked before it"),
                    )
                };
                let tparts = comps(&target_rel);
                let (tleaf, tparent) = tparts.split_last().ok_or_else(not_a_file)?;
                // No symlink followed on the way: the target must be a
                // regular file of this tree.
                let tdir = root.dir_beneath(tparent, false).map_err(|_| not_a_file())?;
                match rustix::fs::statat(&tdir, *tleaf, AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile => {}
                    _ => return Err(not_a_file()),
                }
                make_way(dir, leaf, false).at(&dest)?;
                sys(rustix::fs::linkat(
                    &tdir,
                    *tleaf,
                    dir,
                    *leaf,
                    AtFlags::empty(),
                ))?;
            }
            other => {
                return Err(tar_err(&name, format!("unsupported entry type {other:?}")));
            }
        }
    }
    // Deepest first: read-only directories could still be filled, and a
    // parent's mtime is not moved by its children's.
    for d in dirs.iter().rev() {
        let path = scratch.join(OsStr::from_bytes(&d.path));
        d.apply(&root, false).at(&path)?;
    }
    Ok(())
}
