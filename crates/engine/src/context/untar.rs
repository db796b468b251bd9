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

use std::fs::{self, OpenOptions};
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, CWD, Timespec, Timestamps, utimensat};
use tar::EntryType;

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

/// Creates the missing parents of `rel` under `root`, refusing to go
/// through anything but real directories.
fn make_parents(root: &Path, rel: &Path, name: &str) -> Result<()> {
    let mut cur = root.to_path_buf();
    let Some(parent) = rel.parent() else {
        return Ok(());
    };
    for part in parent.components() {
        cur.push(part);
        match fs::symlink_metadata(&cur) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(tar_err(
                    name,
                    "a parent path is a symlink or not a directory",
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir(&cur).at(&cur)?;
            }
            Err(e) => return Err(e).at(&cur),
        }
    }
    Ok(())
}

/// Whether `rel` is a regular file under `root` reached through real
/// directories only.
fn is_plain_file(root: &Path, rel: &Path) -> Result<bool> {
    let mut cur = root.to_path_buf();
    let parts: Vec<_> = rel.components().collect();
    for (i, part) in parts.iter().enumerate() {
        cur.push(part);
        let last = i + 1 == parts.len();
        match fs::symlink_metadata(&cur) {
            Ok(m) if last => return Ok(m.is_file()),
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(e).at(&cur),
        }
    }
    Ok(false)
}

/// Removes whatever is at `path` unless it is a directory and `keep_dir`.
fn clear(path: &Path, keep_dir: bool) -> Result<bool> {
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() && keep_dir => Ok(true),
        Ok(m) if m.is_dir() => fs::remove_dir_all(path).at(path).map(|()| false),
        Ok(_) => fs::remove_file(path).at(path).map(|()| false),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).at(path),
    }
}

fn set_mtime(path: &Path, secs: i64, nsec: u32) -> Result<()> {
    let t = Timespec {
        tv_sec: secs,
        tv_nsec: nsec.into(),
    };
    let times = Timestamps {
        last_access: t,
        last_modification: t,
    };
    utimensat(CWD, path, &times, AtFlags::SYMLINK_NOFOLLOW)
        .map_err(io::Error::from)
        .at(path)
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

/// Unpacks `reader` into `scratch` (created if missing; must be empty).
pub(crate) fn extract<R: Read>(reader: R, scratch: &Path) -> Result<()> {
    fs::create_dir_all(scratch).at(scratch)?;
    if fs::read_dir(scratch).at(scratch)?.next().is_some() {
        return Err(ContextError::Tar {
            name: String::new(),
            reason: format!("scratch directory {} is not empty", scratch.display()),
        });
    }
    let root = fs::canonicalize(scratch).at(scratch)?;
    let stream = decompress(reader).at("<stdin>")?;
    let mut archive = tar::Archive::new(stream);
    // Directory modes and times are applied last, deepest first, so that
    // read-only directories can still be filled and their mtimes stick.
    let mut dirs: Vec<(PathBuf, u32, i64, u32)> = Vec::new();
    for item in archive.entries().at("<stdin>")? {
        let mut entry = item.map_err(|e| tar_err("", e.to_string()))?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let Some(rel) = safe_name(&name).map_err(|r| tar_err(&name, r))? else {
            continue;
        };
        make_parents(&root, &rel, &name)?;
        let dest = root.join(&rel);
        let mode = entry.header().mode().unwrap_or(0o644) & 0o7777;
        let (secs, nsec) = mtime(&mut entry);
        match entry.header().entry_type() {
            EntryType::Directory => {
                if !clear(&dest, true)? {
                    fs::create_dir(&dest).at(&dest)?;
                }
                dirs.push((dest, mode, secs, nsec));
                continue;
            }
            EntryType::Regular | EntryType::Continuous => {
                clear(&dest, false)?;
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
                    .open(&dest)
                    .at(&dest)?;
                io::copy(&mut entry, &mut file).at(&dest)?;
                drop(file);
                fs::set_permissions(&dest, fs::Permissions::from_mode(mode)).at(&dest)?;
            }
            EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .map_err(|e| tar_err(&name, e.to_string()))?
                    .ok_or_else(|| tar_err(&name, "symlink without a target"))?;
                clear(&dest, false)?;
                std::os::unix::fs::symlink(&target, &dest).at(&dest)?;
            }
            EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| tar_err(&name, "hardlink without a target"))?;
                let target_name = String::from_utf8_lossy(&target).into_owned();
                let target_rel = safe_name(&target_name)
                    .map_err(|r| tar_err(&name, format!("hardlink target {target_name:?}: {r}")))?
                    .ok_or_else(|| tar_err(&name, "hardlink to the root"))?;
                let source = root.join(&target_rel);
                // Checked parent by parent: an lstat of the whole path
                // would follow a symlinked parent out of the root.
                if !is_plain_file(&root, &target_rel)? {
                    return Err(tar_err(
                        &name,
                        format!("hardlink target {target_name:?} is not a file unpacked before it"),
                    ));
                }
                clear(&dest, false)?;
                fs::hard_link(&source, &dest).at(&dest)?;
                continue;
            }
            other => {
                return Err(tar_err(&name, format!("unsupported entry type {other:?}")));
            }
        }
        set_mtime(&dest, secs, nsec)?;
    }
    for (path, mode, secs, nsec) in dirs.into_iter().rev() {
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).at(&path)?;
        set_mtime(&path, secs, nsec)?;
    }
    Ok(())
}
