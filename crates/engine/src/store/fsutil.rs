//! File-system helpers for crash-safe writes: unique temp names, temp file
//! + fsync + rename, directory fsync, and tree removal and sizing.
//!
//! **Invariant:** nothing is created in its final place; it is written in
//! `tmp/` (same file system as the store) and renamed, so a reader sees
//! either nothing or the whole thing.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::error::{IoContext, Result};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name no other process or thread is using: prefix, pid, time, counter.
pub(crate) fn unique_name(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{nanos:x}-{n}", std::process::id())
}

/// Create a new, empty file in `dir` with a unique name.
pub(crate) fn create_temp(dir: &Path, prefix: &str) -> Result<(File, PathBuf)> {
    loop {
        let path = dir.join(unique_name(prefix));
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(f) => return Ok((f, path)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).at(&path),
        }
    }
}

/// Create a new, empty directory in `dir` with a unique name.
pub(crate) fn create_temp_dir(dir: &Path, prefix: &str) -> Result<PathBuf> {
    loop {
        let path = dir.join(unique_name(prefix));
        match fs::create_dir(&path) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e).at(&path),
        }
    }
}

/// fsync a directory, making renames and unlinks in it durable.
pub(crate) fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
}

/// Write `bytes` to `dest` atomically: temp file in `tmp_dir`, fsync,
/// rename over `dest`, fsync `dest`'s directory.
pub(crate) fn atomic_write(tmp_dir: &Path, dest: &Path, bytes: &[u8]) -> Result<()> {
    let (mut file, tmp) = create_temp(tmp_dir, "meta")?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .at(&tmp);
    drop(file);
    if let Err(e) = written.and_then(|()| fs::rename(&tmp, dest).at(dest)) {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    match dest.parent() {
        Some(parent) => fsync_dir(parent),
        None => Ok(()),
    }
}

/// The names in a directory, sorted.
pub(crate) fn dir_names(dir: &Path) -> Result<Vec<OsString>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).at(dir)? {
        names.push(entry.at(dir)?.file_name());
    }
    names.sort();
    Ok(names)
}

/// Remove a file or a directory tree. Directories without write or search
/// permission (read-only layers unpacked as non-root) are opened up first.
pub(crate) fn remove_any(path: &Path) -> Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).at(path),
    };
    if !meta.is_dir() {
        return ignore_not_found(fs::remove_file(path)).at(path);
    }
    if fs::remove_dir_all(path).is_ok() {
        return Ok(());
    }
    open_up(path)?;
    ignore_not_found(fs::remove_dir_all(path)).at(path)
}

fn ignore_not_found(r: io::Result<()>) -> io::Result<()> {
    match r {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        r => r,
    }
}

/// Give the owner rwx on every directory under `root`.
fn open_up(root: &Path) -> Result<()> {
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let meta = fs::symlink_metadata(&dir).at(&dir)?;
        let mode = meta.permissions().mode();
        if mode & 0o700 != 0o700 {
            fs::set_permissions(&dir, fs::Permissions::from_mode(mode | 0o700)).at(&dir)?;
        }
        for entry in fs::read_dir(&dir).at(&dir)? {
            let entry = entry.at(&dir)?;
            if entry.file_type().at(&entry.path())?.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    Ok(())
}

/// Bytes used by the regular files under `root` (apparent size, hard links
/// counted once, symlinks not followed). A file has its own size.
pub(crate) fn tree_size(root: &Path) -> Result<u64> {
    let meta = fs::symlink_metadata(root).at(root)?;
    if !meta.is_dir() {
        return Ok(meta.len());
    }
    let mut seen = HashSet::new();
    let mut total = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).at(&dir)? {
            let path = entry.at(&dir)?.path();
            let meta = fs::symlink_metadata(&path).at(&path)?;
            if meta.is_dir() {
                stack.push(path);
            } else if meta.is_file() && (meta.nlink() == 1 || seen.insert((meta.dev(), meta.ino())))
            {
                total += meta.len();
            }
        }
    }
    Ok(total)
}

/// How many entries (of any kind, symlinks not followed) are below `root`.
pub(crate) fn tree_entries(root: &Path) -> Result<u64> {
    let mut count = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).at(&dir)? {
            let entry = entry.at(&dir)?;
            count += 1;
            if entry.file_type().at(&dir)?.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    Ok(count)
}
