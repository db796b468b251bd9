//! The destination as the copy sees it: a read-only view (the parent
//! snapshot or the parent's layer indexes, see [`super::view`], or the
//! root being written) with an overlay of what this op has planned or
//! written, and path resolution inside it.
//!
//! [`Vfs::resolve`] follows symlinks the way containerd's `fs.RootPath`
//! does (and so BuildKit's copy): as if a given directory (`chroot`) were
//! `/`; an absolute target or a `..` at that directory stays there, a
//! missing component is taken as it is, and more than 255 links is an
//! error. Every proper prefix of a resolved [`Key`] is therefore a real
//! directory (or missing), never a symlink: writers act on keys without
//! following anything.

use std::cmp::Ordering;
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::fs::Metadata;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::view::{DestView, ViewFile};
use crate::layer::Special;

const MAX_LINKS: usize = 255;

/// A path below the image root: components joined by `/`, without `.` or
/// `..`; the empty key is the root. Ordered component by component, so a
/// directory sorts before its contents (Go's `filepath.Walk` order).
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub(crate) struct Key(Vec<u8>);

impl Ord for Key {
    fn cmp(&self, other: &Key) -> Ordering {
        let map = |b: &u8| if *b == b'/' { 0 } else { *b };
        self.0.iter().map(map).cmp(other.0.iter().map(map))
    }
}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Key) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}", String::from_utf8_lossy(&self.0))
    }
}

impl Key {
    pub(crate) fn root() -> Key {
        Key(Vec::new())
    }

    pub(crate) fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn depth(&self) -> usize {
        if self.0.is_empty() {
            0
        } else {
            self.0.iter().filter(|&&b| b == b'/').count() + 1
        }
    }

    pub(crate) fn push(&mut self, comp: &[u8]) {
        if !self.0.is_empty() {
            self.0.push(b'/');
        }
        self.0.extend_from_slice(comp);
    }

    pub(crate) fn join(&self, comp: &[u8]) -> Key {
        let mut k = self.clone();
        k.push(comp);
        k
    }

    /// Drops the last component; `false` at the root.
    pub(crate) fn pop(&mut self) -> bool {
        if self.0.is_empty() {
            return false;
        }
        let cut = self.0.iter().rposition(|&b| b == b'/').unwrap_or(0);
        self.0.truncate(cut);
        true
    }

    pub(crate) fn parent(&self) -> Key {
        let mut k = self.clone();
        k.pop();
        k
    }

    /// The last component (empty for the root).
    pub(crate) fn name(&self) -> &[u8] {
        let start = self.0.iter().rposition(|&b| b == b'/').map_or(0, |i| i + 1);
        &self.0[start..]
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The key as a relative path (`""` for the root).
    pub(crate) fn as_path(&self) -> &Path {
        Path::new(std::ffi::OsStr::from_bytes(&self.0))
    }

    /// Whether `self` is `other` or below it.
    pub(crate) fn is_within(&self, other: &Key) -> bool {
        other.0.is_empty()
            || (self.0.starts_with(&other.0)
                && (self.0.len() == other.0.len() || self.0[other.0.len()] == b'/'))
    }

    /// The non-root proper ancestors, shallowest first.
    pub(crate) fn ancestors(&self) -> Vec<Key> {
        self.0
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'/')
            .map(|(i, _)| Key(self.0[..i].to_vec()))
            .collect()
    }
}

/// Metadata as it goes into a layer entry or onto a file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Meta {
    /// Permission bits with setuid, setgid and sticky.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub nsec: u32,
    pub xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl Meta {
    pub(crate) fn from_stat(md: &Metadata) -> Meta {
        Meta {
            mode: md.mode() & 0o7777,
            uid: md.uid(),
            gid: md.gid(),
            mtime: md.mtime(),
            nsec: u32::try_from(md.mtime_nsec()).unwrap_or(0),
            xattrs: BTreeMap::new(),
        }
    }
}

/// Identifies a multiply-linked source file: (source match, dev, inode).
pub(crate) type LinkId = (usize, u64, u64);

/// Where a planned file's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Payload {
    /// A file on disk, `size` bytes when planned.
    Path {
        path: PathBuf,
        size: u64,
        link: Option<LinkId>,
    },
    /// A heredoc source (index in the plan's inline sources).
    Inline(usize),
    /// A downloaded file (index in the op's downloads).
    Download(usize),
    /// No bytes (a socket copied as a regular file).
    Empty,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    Dir,
    File(Payload),
    Symlink(Vec<u8>),
    Special(Special),
}

/// One overlay entry: planned (`emitted == false`) or written.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub kind: Kind,
    pub meta: Meta,
    pub emitted: bool,
}

/// What is at a path (not following a final symlink).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Found {
    Missing,
    Dir,
    Symlink(Vec<u8>),
    Other,
}

/// Why a path could not be resolved.
#[derive(Debug)]
pub(crate) enum ResolveError {
    /// A component that must be a directory is something else.
    NotDir(Key),
    Loop(Key),
    Io(Key, io::Error),
}

pub(crate) struct Vfs {
    view: Option<DestView>,
    pub overlay: BTreeMap<Key, Node>,
}

impl Vfs {
    /// A view of the directory `view` (or of nothing).
    pub(crate) fn new(view: Option<&Path>) -> Vfs {
        Vfs::with_view(view.map(DestView::dir))
    }

    pub(crate) fn with_view(view: Option<DestView>) -> Vfs {
        Vfs {
            view,
            overlay: BTreeMap::new(),
        }
    }

    /// The path of `key` in a directory view (`None` for an index view).
    pub(crate) fn view_path(&self, key: &Key) -> Option<PathBuf> {
        self.view.as_ref().and_then(|v| v.dir_path(key))
    }

    /// How errors name `key` of the view.
    pub(crate) fn shown_path(&self, key: &Key) -> PathBuf {
        match &self.view {
            Some(v) => v.shown(key),
            None => key.as_path().to_path_buf(),
        }
    }

    /// The metadata of what the view has at `key`; a root-owned `0755`
    /// when there is no view.
    pub(crate) fn view_meta(&self, key: &Key) -> io::Result<Meta> {
        match &self.view {
            Some(v) => v.meta(key),
            None => Ok(Meta {
                mode: 0o755,
                ..Meta::default()
            }),
        }
    }

    /// Opens the regular file the view has at `key` (not following it).
    pub(crate) fn view_open(&self, key: &Key) -> io::Result<ViewFile> {
        match &self.view {
            Some(v) => v.open(key),
            None => Ok(ViewFile::Missing),
        }
    }

    /// What a directory view alone has at `key` (source roots).
    pub(crate) fn view_stat(&self, key: &Key) -> io::Result<Option<Metadata>> {
        let Some(path) = self.view_path(key) else {
            return Ok(None);
        };
        match std::fs::symlink_metadata(&path) {
            Ok(md) => Ok(Some(md)),
            Err(e) if is_absent(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub(crate) fn lookup(&self, key: &Key) -> io::Result<Found> {
        if let Some(node) = self.overlay.get(key) {
            return Ok(match &node.kind {
                Kind::Dir => Found::Dir,
                Kind::Symlink(t) => Found::Symlink(t.clone()),
                _ => Found::Other,
            });
        }
        if key.is_root() {
            return Ok(Found::Dir);
        }
        match &self.view {
            Some(v) => v.found(key),
            None => Ok(Found::Missing),
        }
    }

    /// Resolves `path` (absolute, or relative to `chroot`) inside `chroot`.
    pub(crate) fn resolve(
        &self,
        chroot: &Key,
        path: &[u8],
        follow_last: bool,
    ) -> Result<Key, ResolveError> {
        let mut cur = chroot.clone();
        let floor = chroot.depth();
        let mut queue: VecDeque<Vec<u8>> = split(path).collect();
        let mut hops = 0;
        while let Some(comp) = queue.pop_front() {
            match &comp[..] {
                b"" | b"." => continue,
                b".." => {
                    if cur.depth() > floor {
                        cur.pop();
                    }
                    continue;
                }
                _ => {}
            }
            let last = queue.iter().all(|c| c.is_empty() || c == b".");
            let cand = cur.join(&comp);
            match self.lookup(&cand) {
                Err(e) => return Err(ResolveError::Io(cand, e)),
                Ok(Found::Symlink(target)) if !last || follow_last => {
                    hops += 1;
                    if hops > MAX_LINKS {
                        return Err(ResolveError::Loop(cand));
                    }
                    if target.first() == Some(&b'/') {
                        cur = chroot.clone();
                    }
                    for part in split(&target).collect::<Vec<_>>().into_iter().rev() {
                        queue.push_front(part);
                    }
                }
                Ok(Found::Other) if !last => {
                    return Err(ResolveError::NotDir(cand));
                }
                Ok(_) => cur = cand,
            }
        }
        Ok(cur)
    }

    /// Drops every overlay entry strictly below `key`.
    pub(crate) fn remove_below(&mut self, key: &Key) {
        let below: Vec<Key> = self
            .overlay
            .range(key.clone()..)
            .skip_while(|(k, _)| *k == key)
            .take_while(|(k, _)| k.is_within(key))
            .map(|(k, _)| k.clone())
            .collect();
        for k in below {
            self.overlay.remove(&k);
        }
    }
}

fn split(path: &[u8]) -> impl Iterator<Item = Vec<u8>> + '_ {
    path.split(|&b| b == b'/').map(<[u8]>::to_vec)
}

pub(crate) fn is_absent(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

/// What kind of entry a stat describes, for a copy.
pub(crate) enum StatKind {
    Dir,
    File,
    Symlink,
    Special(Special),
    Socket,
}

pub(crate) fn stat_kind(md: &Metadata) -> StatKind {
    let ft = md.file_type();
    let rdev = md.rdev();
    let (major, minor) = (rustix::fs::major(rdev), rustix::fs::minor(rdev));
    if ft.is_dir() {
        StatKind::Dir
    } else if ft.is_symlink() {
        StatKind::Symlink
    } else if ft.is_char_device() {
        StatKind::Special(Special::Char { major, minor })
    } else if ft.is_block_device() {
        StatKind::Special(Special::Block { major, minor })
    } else if ft.is_fifo() {
        StatKind::Special(Special::Fifo)
    } else if ft.is_socket() {
        StatKind::Socket
    } else {
        StatKind::File
    }
}

/// Extended attributes of `path` (not following it), without the ones
/// that never travel in a layer (overlayfs's own, `security.selinux`).
pub(crate) fn read_xattrs(path: &Path) -> io::Result<BTreeMap<Vec<u8>, Vec<u8>>> {
    let mut out = BTreeMap::new();
    let size = match rustix::fs::llistxattr_query(path) {
        Ok(0) => return Ok(out),
        Ok(n) => n,
        Err(rustix::io::Errno::NOTSUP) => return Ok(out),
        Err(e) => return Err(e.into()),
    };
    let mut names = vec![0u8; size];
    let n = match rustix::fs::llistxattr(path, &mut names[..]) {
        Ok(n) => n,
        // Grew between the two calls: try once more with room to spare.
        Err(rustix::io::Errno::RANGE) => {
            names = vec![0u8; size * 2 + 256];
            rustix::fs::llistxattr(path, &mut names[..])?
        }
        Err(e) => return Err(e.into()),
    };
    for name in names[..n].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        if dropped_xattr(name) {
            continue;
        }
        let len = match rustix::fs::lgetxattr_query(path, name) {
            Ok(len) => len,
            Err(rustix::io::Errno::NODATA) => continue,
            Err(e) => return Err(e.into()),
        };
        let mut value = vec![0u8; len];
        let got = rustix::fs::lgetxattr(path, name, &mut value[..])?;
        value.truncate(got);
        out.insert(name.to_vec(), value);
    }
    Ok(out)
}

/// Xattrs that are neither copied nor written (the layer writer drops them
/// too): overlayfs's bookkeeping and the host's SELinux label.
pub(crate) fn dropped_xattr(name: &[u8]) -> bool {
    name.starts_with(b"trusted.overlay.")
        || name.starts_with(b"user.overlay.")
        || name == b"security.selinux"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> Key {
        let mut k = Key::root();
        for c in s.split('/').filter(|c| !c.is_empty()) {
            k.push(c.as_bytes());
        }
        k
    }

    #[test]
    fn ops_file_keys_sort_component_wise() {
        let mut keys = [
            key("a-b"),
            key("a/b"),
            key("a"),
            key("a.c"),
            key("a/b/c"),
            key("b"),
        ];
        keys.sort();
        let shown: Vec<String> = keys.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["/a", "/a/b", "/a/b/c", "/a-b", "/a.c", "/b"]);
        assert_eq!(key("a/b/c").ancestors(), vec![key("a"), key("a/b")]);
        assert!(key("a/b").is_within(&key("a")));
        assert!(!key("ab").is_within(&key("a")));
        assert_eq!(key("a/b").name(), b"b");
        assert_eq!(key("x/y/z").depth(), 3);
    }

    #[test]
    fn ops_file_resolve_follows_links_inside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("real/sub")).unwrap();
        std::os::unix::fs::symlink("/", root.join("app")).unwrap();
        std::os::unix::fs::symlink("../../..", root.join("real/up")).unwrap();
        std::os::unix::fs::symlink("loop2", root.join("loop1")).unwrap();
        std::os::unix::fs::symlink("loop1", root.join("loop2")).unwrap();
        std::fs::write(root.join("file"), b"x").unwrap();
        let vfs = Vfs::new(Some(root));
        let r = |p: &str, follow: bool| vfs.resolve(&Key::root(), p.as_bytes(), follow);
        assert_eq!(r("/app/etc", true).unwrap(), key("etc"));
        assert_eq!(r("/real/up/x", true).unwrap(), key("x"));
        assert_eq!(
            r("/real/sub/../../real/sub", true).unwrap(),
            key("real/sub")
        );
        assert_eq!(r("/app", false).unwrap(), key("app"));
        assert_eq!(r("/../../x", true).unwrap(), key("x"));
        assert!(matches!(r("/loop1/x", true), Err(ResolveError::Loop(_))));
        assert!(matches!(r("/file/x", true), Err(ResolveError::NotDir(_))));
        assert_eq!(r("/missing/../real", true).unwrap(), key("real"));
        // A chroot keeps `..` and absolute targets below it.
        let chroot = key("real");
        assert_eq!(
            vfs.resolve(&chroot, b"../../x", true).unwrap(),
            key("real/x")
        );
    }
}
