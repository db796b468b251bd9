//! [`IndexStack`]: the filesystem a chain of layers makes, answered from
//! their [`LayerIndex`]es with the unpacker's rules, bottom to top: a later
//! layer's entry replaces what is below it (a file replaces a directory and
//! everything in it; a directory over a directory merges), `.wh.NAME` hides
//! `NAME` in the layers below, `.wh..wh..opq` hides a directory's lower
//! contents, and a directory the unpacker had to create for an entry is
//! there (root-owned, `0755`) unless a lower layer has it.
//!
//! A stack is only made when those rules give exactly what unpacking gives:
//! every layer regular, and no entry of a layer placed below something the
//! layers under it make a symlink or a file (the unpacker would follow or
//! fail there). Otherwise [`IndexStack::new`] says `None` and the caller
//! unpacks.

use std::collections::{BTreeMap, HashSet};
use std::io::{self, Read};
use std::path::PathBuf;
use std::sync::Arc;

use super::index::{
    EntryKind, F_OPAQUE, F_WHITEOUT, K_DIR, K_FILE, K_HARDLINK, K_IMPLIED, K_NONE, K_OTHER,
    K_SYMLINK, LayerIndex, NO_DATA, Rec, read_blob_at,
};

/// The most hard links followed from one to the next between layers.
const MAX_LINK_DEPTH: usize = 64;

/// What a path is in a stack of layers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexStat {
    pub kind: EntryKind,
    /// Permission bits with setuid, setgid and sticky.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub nsec: u32,
    /// Bytes of a regular file (or of the file a hard link names).
    pub size: u64,
    /// A symlink's target; a hard link's target path.
    pub link: Vec<u8>,
    /// Without overlayfs's own and `security.selinux`.
    pub xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
}

/// One layer of a stack: its index and where its blob is.
#[derive(Debug, Clone)]
struct StackLayer {
    index: Arc<LayerIndex>,
    blob: PathBuf,
}

/// The layers of an image state, bottom first, as one filesystem view.
#[derive(Debug, Clone)]
pub struct IndexStack {
    layers: Vec<StackLayer>,
}

/// Where a path was found: the layer and the record's position in it.
type Hit = (usize, usize);

impl IndexStack {
    /// The view of `layers` (index, blob path), bottom first; `None` when
    /// indexes cannot give what unpacking would (see the module docs).
    pub fn new(layers: Vec<(Arc<LayerIndex>, PathBuf)>) -> Option<IndexStack> {
        let stack = IndexStack {
            layers: layers
                .into_iter()
                .map(|(index, blob)| StackLayer { index, blob })
                .collect(),
        };
        if stack.layers.iter().any(|l| !l.index.is_regular()) {
            return None;
        }
        for i in 0..stack.layers.len() {
            if !stack.layer_fits(i) {
                return None;
            }
        }
        Some(stack)
    }

    pub fn len(&self) -> usize {
        self.layers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    fn rec(&self, (layer, at): Hit) -> &Rec {
        &self.layers[layer].index.recs()[at]
    }

    /// Whether layer `i` applies onto the layers below it without the
    /// unpacker following a symlink or meeting a file where a directory
    /// must be, and whether its hard links into them land on files.
    fn layer_fits(&self, i: usize) -> bool {
        let index = &self.layers[i].index;
        let mut good: HashSet<&[u8]> = HashSet::new();
        let dir_ok = |a: &'_ [u8], good: &mut HashSet<&'_ [u8]>| -> bool {
            if good.contains(a) {
                return true;
            }
            // A directory this layer lists replaces whatever was there
            // before anything below it is written (checked per layer).
            let listed = index.get(a).is_some_and(|r| r.kind == K_DIR);
            listed
                || matches!(
                    self.find_in(i, a).map(|h| self.rec(h).kind),
                    None | Some(K_DIR | K_IMPLIED)
                )
        };
        for r in index.recs() {
            let path = index.path_of(r);
            for a in ancestors(path) {
                if !dir_ok(a, &mut good) {
                    return false;
                }
                good.insert(a);
            }
            // The unpacker opens an opaque directory without following it.
            if r.flags & F_OPAQUE != 0 && r.kind != K_DIR && !dir_ok(path, &mut good) {
                return false;
            }
            if r.kind == K_HARDLINK && r.data == NO_DATA {
                let target = index.link_of(r);
                if !ancestors(target).all(|a| dir_ok(a, &mut good)) {
                    return false;
                }
                let Some(hit) = self.find_in(i + 1, target) else {
                    return false;
                };
                if !matches!(self.rec(hit).kind, K_FILE | K_HARDLINK | K_OTHER) {
                    return false;
                }
            }
        }
        true
    }

    /// The visible record at `path` in layers `0..top`: the topmost entry
    /// not hidden by a whiteout, an opaque directory or a non-directory
    /// above it; a directory only implied by a layer is shadowed by a real
    /// one below.
    fn find_in(&self, top: usize, path: &[u8]) -> Option<Hit> {
        let mut implied = None;
        for i in (0..top.min(self.layers.len())).rev() {
            let index = &self.layers[i].index;
            if let Some(at) = index.find(path) {
                let r = &index.recs()[at];
                match r.kind {
                    K_NONE => {}
                    K_IMPLIED => {
                        implied.get_or_insert((i, at));
                    }
                    _ => return Some((i, at)),
                }
                if r.flags & F_WHITEOUT != 0 {
                    break;
                }
            }
            let hidden = std::iter::once(&b""[..])
                .chain(ancestors(path))
                .filter_map(|a| index.get(a))
                .any(|r| {
                    r.flags & (F_WHITEOUT | F_OPAQUE) != 0
                        || !matches!(r.kind, K_NONE | K_DIR | K_IMPLIED)
                });
            if hidden {
                break;
            }
        }
        implied
    }

    /// What is at `path` (relative, cleaned; the final component is not
    /// followed), or `None` if nothing is.
    pub fn stat(&self, path: &[u8]) -> Option<IndexStat> {
        let hit = self.find_in(self.layers.len(), path)?;
        let r = self.rec(hit);
        let index = &self.layers[hit.0].index;
        let kind = match r.kind {
            K_FILE => EntryKind::File,
            K_DIR | K_IMPLIED => EntryKind::Dir,
            K_SYMLINK => EntryKind::Symlink,
            K_HARDLINK => EntryKind::Hardlink,
            _ => EntryKind::Other,
        };
        let mut stat = IndexStat {
            kind,
            mode: r.mode,
            uid: r.uid,
            gid: r.gid,
            mtime: r.mtime,
            nsec: r.nsec,
            size: r.size,
            link: index.link_of(r).to_vec(),
            xattrs: index
                .xattrs_at(hit.1)
                .map(|(k, v)| (k.to_vec(), v.to_vec()))
                .collect(),
        };
        if r.kind == K_HARDLINK
            && r.data == NO_DATA
            && let Some(target) = self.link_target(hit, 0)
        {
            let t = self.rec(target);
            (stat.mode, stat.uid, stat.gid, stat.size) = (t.mode, t.uid, t.gid, t.size);
            (stat.mtime, stat.nsec) = (t.mtime, t.nsec);
        }
        Some(stat)
    }

    /// The file a hard link into lower layers names (itself a file).
    fn link_target(&self, mut hit: Hit, mut depth: usize) -> Option<Hit> {
        loop {
            let r = self.rec(hit);
            if r.kind != K_HARDLINK || r.data != NO_DATA {
                return Some(hit);
            }
            if depth >= MAX_LINK_DEPTH {
                return None;
            }
            depth += 1;
            let target = self.layers[hit.0].index.link_of(r);
            hit = self.find_in(hit.0, target)?;
        }
    }

    /// The contents of the regular file at `path` and its size; `None` if
    /// there is none there (missing, or not a regular file).
    pub fn open(&self, path: &[u8]) -> io::Result<Option<(Box<dyn Read>, u64)>> {
        let Some(hit) = self.find_in(self.layers.len(), path) else {
            return Ok(None);
        };
        if !matches!(self.rec(hit).kind, K_FILE | K_HARDLINK) {
            return Ok(None);
        }
        let Some(hit) = self.link_target(hit, 0) else {
            return Ok(None);
        };
        let r = self.rec(hit);
        if r.data == NO_DATA || !matches!(r.kind, K_FILE | K_HARDLINK) {
            return Ok(None);
        }
        let reader = read_blob_at(&self.layers[hit.0].blob, r.data, r.size)?;
        Ok(Some((reader, r.size)))
    }
}

/// The proper ancestors of a cleaned relative path, shallowest first (the
/// root not included).
fn ancestors(path: &[u8]) -> impl Iterator<Item = &[u8]> {
    path.iter()
        .enumerate()
        .filter(|(_, b)| **b == b'/')
        .map(move |(i, _)| &path[..i])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_index_ancestors_are_proper_prefixes() {
        let got: Vec<&[u8]> = ancestors(b"a/bc/d").collect();
        assert_eq!(got, vec![&b"a"[..], b"a/bc"]);
        assert_eq!(ancestors(b"top").count(), 0);
    }
}
