//! Content digests of a [`Selection`] for cache keys, as BuildKit's
//! `contenthash` defines them: what a file *is* (type, permission bits with
//! setuid/setgid/sticky, link target, content, extended attributes), never
//! its ownership (`COPY` sets that) nor its times.
//!
//! - an entry's digest is sha256 over a versioned encoding of its type,
//!   mode, xattrs and: the content digest (file), the target (symlink), the
//!   first path and content (hardlink), `rdev` (device);
//! - a directory's digest adds its children, sorted by name, each as name
//!   and digest;
//! - the selection's digest covers each match in order: which source it
//!   answers, its base name and its digest.
//!
//! `security.selinux` is left out of the xattrs: it labels the host, not
//! the content. File contents are hashed in parallel (rayon) and looked up
//! in a [`HashCache`] first.

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use sha2::{Digest as _, Sha256};

use super::walk::{Entry, EntryKind, Selection};
use super::{IoAt, Result};
use crate::digest::{Digest, Hasher};

use super::hashcache::Hashed;
pub use super::hashcache::{HashCache, HashStats, MAX_ENTRIES};

/// Bumped whenever the encoding below changes, so old keys never collide.
const VERSION: &[u8] = b"hoist.contenthash.v1\0";

/// One entry's own digest (for a directory: its metadata only, not its
/// children), by context path: what `--explain` compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryHash {
    pub path: String,
    pub digest: Digest,
}

/// The digests of a selection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectionHash {
    /// The cache-key digest of the whole selection.
    pub digest: Digest,
    /// One digest per match (file, or directory with its contents), in
    /// [`Selection::sources`] order.
    pub sources: Vec<Digest>,
    /// Every entry's own digest, in selection order.
    pub entries: Vec<EntryHash>,
}

/// How a path differs between two [`SelectionHash::entries`] lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathChange {
    Added(String),
    Removed(String),
    Modified(String),
}

/// The paths that differ between `old` and `new`, sorted by path.
pub fn changed_paths(old: &[EntryHash], new: &[EntryHash]) -> Vec<PathChange> {
    let old: BTreeMap<&str, &Digest> = old.iter().map(|e| (e.path.as_str(), &e.digest)).collect();
    let new: BTreeMap<&str, &Digest> = new.iter().map(|e| (e.path.as_str(), &e.digest)).collect();
    let mut out = Vec::new();
    for (path, digest) in &new {
        match old.get(path) {
            None => out.push(PathChange::Added(path.to_string())),
            Some(d) if d != digest => out.push(PathChange::Modified(path.to_string())),
            Some(_) => {}
        }
    }
    for path in old.keys() {
        if !new.contains_key(path) {
            out.push(PathChange::Removed(path.to_string()));
        }
    }
    out.sort_by(|a, b| key(a).cmp(key(b)));
    out
}

fn key(c: &PathChange) -> &str {
    match c {
        PathChange::Added(p) | PathChange::Removed(p) | PathChange::Modified(p) => p,
    }
}

fn hex(bytes: &[u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn put_bytes(h: &mut Hasher, bytes: &[u8]) {
    h.update(&(bytes.len() as u64).to_be_bytes());
    h.update(bytes);
}

/// Hashes `sel`, reading only files the cache cannot answer for.
pub fn hash_selection(sel: &Selection, cache: &HashCache) -> Result<SelectionHash> {
    // Leaves (content and xattrs) in parallel, once per distinct path.
    let mut unique: Vec<&Entry> = Vec::new();
    let mut seen = HashMap::new();
    for e in sel.entries() {
        if !matches!(e.kind, EntryKind::Hardlink(_)) && !seen.contains_key(e.ctx_path.as_str()) {
            seen.insert(e.ctx_path.as_str(), unique.len());
            unique.push(e);
        }
    }
    let leaves: Vec<Hashed> = unique
        .par_iter()
        .map(|e| leaf(e, cache))
        .collect::<Result<Vec<_>>>()?;
    let leaf_of = |e: &Entry| seen.get(e.ctx_path.as_str()).map(|&i| leaves[i]);

    let mut total = Hasher::new();
    total.update(b"hoist.selection.v1\0");
    let mut sources = Vec::with_capacity(sel.sources.len());
    let mut entries = Vec::new();
    for src in &sel.sources {
        // Own digests first, in order.
        let by_rel: HashMap<&Path, &Entry> = src
            .entries
            .iter()
            .map(|e| (e.rel_path.as_path(), e))
            .collect();
        let mut own = Vec::with_capacity(src.entries.len());
        for e in &src.entries {
            let hashed = match &e.kind {
                EntryKind::Hardlink(first) => by_rel.get(first.as_path()).and_then(|f| leaf_of(f)),
                _ => leaf_of(e),
            };
            let hashed = hashed.unwrap_or(Hashed {
                content: None,
                xattrs: None,
            });
            let d = own_digest(e, &hashed);
            entries.push(EntryHash {
                path: e.ctx_path.clone(),
                digest: d.clone(),
            });
            own.push(d);
        }
        // Then directories bottom-up: entries are in pre-order, so walking
        // backwards meets every child before its parent.
        let mut children: HashMap<PathBuf, Vec<(Vec<u8>, Digest)>> = HashMap::new();
        let mut root = None;
        for (e, d) in src.entries.iter().zip(own).rev() {
            let full = if e.kind == EntryKind::Dir {
                let mut kids = children.remove(&e.rel_path).unwrap_or_default();
                kids.sort_by(|a, b| a.0.cmp(&b.0));
                let mut h = Hasher::new();
                h.update(VERSION);
                h.update(b"tree");
                h.update(d.hex().as_bytes());
                h.update(&(kids.len() as u64).to_be_bytes());
                for (name, kid) in &kids {
                    put_bytes(&mut h, name);
                    h.update(kid.hex().as_bytes());
                }
                h.finish()
            } else {
                d
            };
            match (e.rel_path.parent(), e.rel_path.file_name()) {
                (Some(parent), Some(name)) => {
                    use std::os::unix::ffi::OsStrExt;
                    children
                        .entry(parent.to_path_buf())
                        .or_default()
                        .push((name.as_bytes().to_vec(), full));
                }
                _ => root = Some(full),
            }
        }
        let digest = root.unwrap_or_else(|| Digest::of(b""));
        total.update(&(src.source_index as u64).to_be_bytes());
        put_bytes(&mut total, src.base_name().as_bytes());
        total.update(digest.hex().as_bytes());
        sources.push(digest);
    }
    Ok(SelectionHash {
        digest: total.finish(),
        sources,
        entries,
    })
}

/// An entry's digest without children.
fn own_digest(e: &Entry, hashed: &Hashed) -> Digest {
    let mut h = Hasher::new();
    h.update(VERSION);
    let tag: &[u8] = match e.kind {
        EntryKind::File => b"f",
        EntryKind::Dir => b"d",
        EntryKind::Symlink(_) => b"l",
        EntryKind::Hardlink(_) => b"h",
        EntryKind::Fifo => b"p",
        EntryKind::Socket => b"s",
        EntryKind::CharDevice(_) => b"c",
        EntryKind::BlockDevice(_) => b"b",
    };
    h.update(tag);
    h.update(&e.mode.to_be_bytes());
    match hashed.xattrs {
        Some(x) => {
            h.update(b"x");
            h.update(hex(&x).as_bytes());
        }
        None => h.update(b"-"),
    }
    use std::os::unix::ffi::OsStrExt;
    match &e.kind {
        EntryKind::File => h.update(hex(&hashed.content.unwrap_or_default()).as_bytes()),
        EntryKind::Symlink(target) => put_bytes(&mut h, target.as_os_str().as_bytes()),
        EntryKind::Hardlink(first) => {
            put_bytes(&mut h, first.as_os_str().as_bytes());
            h.update(hex(&hashed.content.unwrap_or_default()).as_bytes());
        }
        EntryKind::CharDevice(rdev) | EntryKind::BlockDevice(rdev) => h.update(&rdev.to_be_bytes()),
        EntryKind::Dir | EntryKind::Fifo | EntryKind::Socket => {}
    }
    h.finish()
}

/// Content and xattrs of one entry, from the cache or from disk.
fn leaf(e: &Entry, cache: &HashCache) -> Result<Hashed> {
    if let Some(hit) = cache.get(e)
        && (e.kind != EntryKind::File || hit.content.is_some())
    {
        return Ok(hit);
    }
    let xattrs = xattr_digest(&e.abs_path)?;
    let (content, stable) = if e.kind == EntryKind::File {
        let (digest, stable) = content_digest(e, cache)?;
        (Some(digest), stable)
    } else {
        (None, true)
    };
    let hashed = Hashed { content, xattrs };
    cache.put(e, hashed, stable);
    Ok(hashed)
}

/// sha256 of a regular file, and whether it stayed unchanged while read.
fn content_digest(e: &Entry, cache: &HashCache) -> Result<([u8; 32], bool)> {
    let path = &e.abs_path;
    // No following a symlink swapped in since the walk, no blocking on a
    // FIFO swapped in.
    let flags = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK;
    let mut file: File = OpenOptions::new()
        .read(true)
        .custom_flags(flags.bits() as i32)
        .open(path)
        .at(path)?;
    let before = file.metadata().at(path)?;
    if !before.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "changed into a non-regular file while the context was read",
        ))
        .at(path);
    }
    let mut hasher = Sha256::new();
    // Sized to the file (zeroing a large buffer per small file costs more
    // than hashing it); one extra byte sees growth since the walk.
    let cap = usize::try_from(before.size())
        .unwrap_or(usize::MAX)
        .clamp(4096, 256 * 1024 - 1)
        + 1;
    let mut buf = vec![0u8; cap];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf).at(path)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        total += n as u64;
    }
    cache.count_read(total);
    // A file changed after the walk has a new ctime, so the next build
    // misses anyway; a change in the same clock tick is what the racy
    // margin covers. Still, never persist a read that disagrees with the
    // walk.
    let stable = (e.dev, e.ino, e.size) == (before.dev(), before.ino(), before.size())
        && total == before.size();
    Ok((hasher.finalize().into(), stable))
}

/// sha256 over the sorted extended attributes, `None` when there are none.
fn xattr_digest(path: &Path) -> Result<Option<[u8; 32]>> {
    let names = match read_xattr(path, None)? {
        Some(list) => list,
        None => return Ok(None),
    };
    let mut attrs = BTreeMap::new();
    for name in names.split(|&b| b == 0).filter(|n| !n.is_empty()) {
        if name == b"security.selinux" {
            continue;
        }
        if let Some(value) = read_xattr(path, Some(name))? {
            attrs.insert(name.to_vec(), value);
        }
    }
    if attrs.is_empty() {
        return Ok(None);
    }
    let mut h = Sha256::new();
    for (name, value) in attrs {
        h.update((name.len() as u64).to_be_bytes());
        h.update(&name);
        h.update((value.len() as u64).to_be_bytes());
        h.update(&value);
    }
    Ok(Some(h.finalize().into()))
}

/// `llistxattr` (no name) or `lgetxattr`; `None` when empty, absent or
/// unsupported by the filesystem.
fn read_xattr(path: &Path, name: Option<&[u8]>) -> Result<Option<Vec<u8>>> {
    use rustix::io::Errno;
    let mut size = 256;
    for _ in 0..4 {
        let mut buf = vec![0u8; size];
        let got = match name {
            None => rustix::fs::llistxattr(path, &mut buf[..]),
            Some(n) => rustix::fs::lgetxattr(path, n, &mut buf[..]),
        };
        match got {
            Ok(0) => return Ok(None),
            Ok(n) => {
                buf.truncate(n);
                return Ok(Some(buf));
            }
            Err(Errno::RANGE) => size *= 16,
            Err(Errno::NOTSUP | Errno::NODATA) => return Ok(None),
            Err(e) => return Err(std::io::Error::from(e)).at(path),
        }
    }
    Err(std::io::Error::other("extended attributes too large")).at(path)
}
