//! [`HashCache`]: what each context file hashed to last time, so that a
//! rebuild with nothing changed reads no file.
//!
//! An entry is keyed by the file's path relative to the context root and
//! trusted only while its (device, inode, size, mtime ns, ctime ns) are all
//! unchanged. ctime cannot be set from user space, so a content change that
//! keeps size and mtime (`touch -r`) still misses: moby/buildkit#1368,
//! which BuildKit's own cache misses.
//!
//! A "racily clean" file (ctime within the racy margin, one second by
//! default, of the time the cache was opened, or later) is hashed but not
//! persisted: a write in the same clock tick as our read could leave all
//! five values unchanged (git's racy-git problem). A context unpacked from
//! a tar gets new inodes every build: give it [`HashCache::in_memory`].
//!
//! The cache is one compact binary file per context root, loaded once per
//! build and written atomically by [`HashCache::save`] only if something
//! was added; it holds at most [`MAX_ENTRIES`], dropping the least recently
//! used. It lives in the store as a cache record, or in a file of the
//! caller's choosing.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::walk::Entry;
use super::{IoAt, Result};
use crate::store::Store;

/// The most entries kept (about 120 bytes each on disk).
pub const MAX_ENTRIES: usize = 500_000;
const MAGIC: &[u8; 8] = b"HOISTHC1";
const DEFAULT_RACY_MARGIN: Duration = Duration::from_secs(1);

/// What a file hashed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hashed {
    /// sha256 of the content (regular files only).
    pub content: Option<[u8; 32]>,
    /// sha256 of the sorted extended attributes (`None`: there are none).
    pub xattrs: Option<[u8; 32]>,
}

#[derive(Debug, Clone)]
struct Cached {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
    hashed: Hashed,
    used: u32,
    racy: bool,
}

impl Cached {
    fn fits(&self, e: &Entry) -> bool {
        (self.dev, self.ino, self.size, self.mtime_ns, self.ctime_ns)
            == (e.dev, e.ino, e.size, e.mtime_ns, e.ctime_ns)
    }
}

#[derive(Debug, Clone)]
enum Backing {
    Memory,
    Store { store: Store, key: String },
    File(PathBuf),
}

/// Counters of one [`HashCache`]'s life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HashStats {
    /// Lookups answered from the cache.
    pub hits: u64,
    /// Lookups that had to hash.
    pub misses: u64,
    /// Files opened and read to hash their content.
    pub files_read: u64,
    /// Bytes read to hash.
    pub bytes_read: u64,
}

/// The persistent per-context hash cache (see the module docs).
#[derive(Debug)]
pub struct HashCache {
    backing: Backing,
    map: Mutex<HashMap<String, Cached>>,
    generation: u32,
    opened_ns: i64,
    racy_margin_ns: i64,
    dirty: AtomicBool,
    hits: AtomicU64,
    misses: AtomicU64,
    files_read: AtomicU64,
    bytes_read: AtomicU64,
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl HashCache {
    fn with(backing: Backing, bytes: Option<&[u8]>) -> HashCache {
        let (generation, map) = match bytes.map(decode) {
            Some(Some((g, map))) => (g.wrapping_add(1), map),
            Some(None) => {
                tracing::warn!("context hash cache is unreadable; starting afresh");
                (1, HashMap::new())
            }
            None => (1, HashMap::new()),
        };
        HashCache {
            backing,
            map: Mutex::new(map),
            generation,
            opened_ns: now_ns(),
            racy_margin_ns: DEFAULT_RACY_MARGIN.as_nanos() as i64,
            dirty: AtomicBool::new(false),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            files_read: AtomicU64::new(0),
            bytes_read: AtomicU64::new(0),
        }
    }

    /// A cache that is never saved.
    pub fn in_memory() -> HashCache {
        HashCache::with(Backing::Memory, None)
    }

    /// The cache of the context at `context_root`, kept in `store` as a
    /// cache record keyed by the canonical root (a corrupt record is
    /// ignored).
    pub fn for_context(store: &Store, context_root: &Path) -> Result<HashCache> {
        let key = HashCache::store_key(context_root);
        let bytes = store.get_cache_record(&key)?;
        Ok(HashCache::with(
            Backing::Store {
                store: store.clone(),
                key,
            },
            Some(bytes.as_deref().unwrap_or_default()).filter(|b| !b.is_empty()),
        ))
    }

    /// The store cache-record key of the context at `context_root`
    /// (canonicalised when it exists, so `.` and its absolute path agree).
    pub fn store_key(context_root: &Path) -> String {
        let root =
            std::fs::canonicalize(context_root).unwrap_or_else(|_| context_root.to_path_buf());
        format!("hoist.context-hash-cache.v1 {}", root.to_string_lossy())
    }

    /// The cache kept in the file at `path` (missing is fine).
    pub fn at_file(path: &Path) -> Result<HashCache> {
        let bytes = match std::fs::read(path) {
            Ok(b) => Some(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e).at(path),
        };
        Ok(HashCache::with(
            Backing::File(path.to_path_buf()),
            bytes.as_deref(),
        ))
    }

    /// Files whose ctime is this close to the opening time (or later) are
    /// hashed but not persisted (default one second).
    pub fn set_racy_margin(&mut self, margin: Duration) {
        self.racy_margin_ns = i64::try_from(margin.as_nanos()).unwrap_or(i64::MAX);
    }

    pub fn stats(&self) -> HashStats {
        HashStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            files_read: self.files_read.load(Ordering::Relaxed),
            bytes_read: self.bytes_read.load(Ordering::Relaxed),
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.map.lock().map(|m| m.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(crate) fn count_read(&self, bytes: u64) {
        self.files_read.fetch_add(1, Ordering::Relaxed);
        self.bytes_read.fetch_add(bytes, Ordering::Relaxed);
    }

    /// The cached result for `e`, if its stat still fits.
    pub(crate) fn get(&self, e: &Entry) -> Option<Hashed> {
        let mut map = self.map.lock().ok()?;
        let hit = match map.get_mut(&e.ctx_path) {
            Some(c) if c.fits(e) => {
                c.used = self.generation;
                Some(c.hashed)
            }
            _ => None,
        };
        drop(map);
        let counter = if hit.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        hit
    }

    /// Records what `e` hashed to. `stable` is false when the file changed
    /// while it was read: the result is used once but never persisted.
    pub(crate) fn put(&self, e: &Entry, hashed: Hashed, stable: bool) {
        // A same-tick write sets ctime (and mtime) to that tick; an mtime
        // set into the future by hand must not make a file racy forever.
        let fresh = e.ctime_ns >= self.opened_ns.saturating_sub(self.racy_margin_ns);
        let racy = fresh || !stable;
        if let Ok(mut map) = self.map.lock() {
            map.insert(
                e.ctx_path.clone(),
                Cached {
                    dev: e.dev,
                    ino: e.ino,
                    size: e.size,
                    mtime_ns: e.mtime_ns,
                    ctime_ns: e.ctime_ns,
                    hashed,
                    used: self.generation,
                    racy,
                },
            );
        }
        if !racy {
            self.dirty.store(true, Ordering::Relaxed);
        }
    }

    /// Writes the cache back atomically if anything was added.
    pub fn save(&self) -> Result<()> {
        if !self.dirty.load(Ordering::Relaxed) {
            return Ok(());
        }
        let bytes = {
            let map = match self.map.lock() {
                Ok(m) => m,
                Err(poisoned) => poisoned.into_inner(),
            };
            encode(self.generation, &map)
        };
        match &self.backing {
            Backing::Memory => {}
            Backing::Store { store, key } => store.put_cache_record(key, &bytes)?,
            Backing::File(path) => write_atomic(path, &bytes)?,
        }
        self.dirty.store(false, Ordering::Relaxed);
        Ok(())
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).at(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).at(dir)?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .at(tmp.path().to_path_buf())?;
    tmp.persist(path).map_err(|e| e.error).at(path)?;
    Ok(())
}

/// Sorted by path, least recently used dropped beyond [`MAX_ENTRIES`],
/// racy entries left out.
fn encode(generation: u32, map: &HashMap<String, Cached>) -> Vec<u8> {
    let mut rows: Vec<(&String, &Cached)> = map.iter().filter(|(_, c)| !c.racy).collect();
    if rows.len() > MAX_ENTRIES {
        rows.sort_by(|a, b| b.1.used.cmp(&a.1.used).then_with(|| a.0.cmp(b.0)));
        rows.truncate(MAX_ENTRIES);
    }
    rows.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = Vec::with_capacity(16 + rows.len() * 128);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&generation.to_le_bytes());
    out.extend_from_slice(&(rows.len() as u32).to_le_bytes());
    for (path, c) in rows {
        let path = path.as_bytes();
        out.extend_from_slice(&(path.len() as u32).to_le_bytes());
        out.extend_from_slice(path);
        for v in [c.dev, c.ino, c.size] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&c.mtime_ns.to_le_bytes());
        out.extend_from_slice(&c.ctime_ns.to_le_bytes());
        let flags =
            u8::from(c.hashed.content.is_some()) | (u8::from(c.hashed.xattrs.is_some()) << 1);
        out.push(flags);
        out.extend_from_slice(&c.hashed.content.unwrap_or_default());
        out.extend_from_slice(&c.hashed.xattrs.unwrap_or_default());
        out.extend_from_slice(&c.used.to_le_bytes());
    }
    out
}

struct Bytes<'a>(&'a [u8]);

impl<'a> Bytes<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn u32(&mut self) -> Option<u32> {
        self.array().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_le_bytes)
    }

    fn i64(&mut self) -> Option<i64> {
        self.array().map(i64::from_le_bytes)
    }
}

fn decode(bytes: &[u8]) -> Option<(u32, HashMap<String, Cached>)> {
    let mut b = Bytes(bytes);
    if b.take(8)? != MAGIC {
        return None;
    }
    let generation = b.u32()?;
    let count = b.u32()? as usize;
    if count > MAX_ENTRIES {
        return None;
    }
    let mut map = HashMap::with_capacity(count);
    for _ in 0..count {
        let len = b.u32()? as usize;
        let path = String::from_utf8(b.take(len)?.to_vec()).ok()?;
        let (dev, ino, size) = (b.u64()?, b.u64()?, b.u64()?);
        let (mtime_ns, ctime_ns) = (b.i64()?, b.i64()?);
        let flags = b.take(1)?[0];
        let content: [u8; 32] = b.array()?;
        let xattrs: [u8; 32] = b.array()?;
        let used = b.u32()?;
        let hashed = Hashed {
            content: (flags & 1 != 0).then_some(content),
            xattrs: (flags & 2 != 0).then_some(xattrs),
        };
        map.insert(
            path,
            Cached {
                dev,
                ino,
                size,
                mtime_ns,
                ctime_ns,
                hashed,
                used,
                racy: false,
            },
        );
    }
    b.0.is_empty().then_some((generation, map))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips_and_rejects_garbage() {
        let mut map = HashMap::new();
        for (i, racy) in [(1u64, false), (2, false), (3, true)] {
            map.insert(
                format!("dir/file{i}"),
                Cached {
                    dev: i,
                    ino: i * 10,
                    size: i * 100,
                    mtime_ns: -5,
                    ctime_ns: 7,
                    hashed: Hashed {
                        content: Some([i as u8; 32]),
                        xattrs: (i == 2).then_some([9; 32]),
                    },
                    used: 4,
                    racy,
                },
            );
        }
        let bytes = encode(4, &map);
        let (generation, back) = decode(&bytes).unwrap();
        assert_eq!(generation, 4);
        assert_eq!(back.len(), 2, "racy entries are not persisted");
        let c = &back["dir/file2"];
        assert_eq!(
            (c.dev, c.ino, c.size, c.mtime_ns, c.ctime_ns),
            (2, 20, 200, -5, 7)
        );
        assert_eq!(c.hashed, map["dir/file2"].hashed);
        assert!(decode(&bytes[..bytes.len() - 1]).is_none());
        assert!(decode(b"garbage").is_none());
        let mut extra = bytes.clone();
        extra.push(0);
        assert!(decode(&extra).is_none());
    }
}
