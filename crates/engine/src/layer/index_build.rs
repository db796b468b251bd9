//! [`IndexBuilder`]: a layer's entries, in tar order, into a
//! [`LayerIndex`]: names cleaned and whiteouts turned into flags as the
//! unpacker reads them, one record per path, hard links within the layer
//! resolved to their file, implied parent directories added, and the layer
//! marked irregular wherever the unpacker's result would depend on the
//! order of entries or on following a symlink (see [`super::index`]).

use super::index::{
    EntryKind, F_OPAQUE, F_WHITEOUT, K_DIR, K_FILE, K_HARDLINK, K_IMPLIED, K_NONE, K_OTHER,
    K_SYMLINK, LayerIndex, NO_DATA, RawEntry, Rec, slice,
};
use super::unpack_entry::components;
use super::whiteout::{Name, classify, is_dropped_xattr, is_reserved};

/// Collects a layer's entries in tar order and turns them into a
/// [`LayerIndex`] (see the module docs for what makes a layer irregular).
#[derive(Debug, Default)]
pub(crate) struct IndexBuilder {
    names: Vec<u8>,
    /// One per path-bearing entry, in tar order (the position is the order).
    events: Vec<Rec>,
    xattrs: Vec<(u32, Vec<u8>, Vec<u8>)>,
    irregular: bool,
}

impl IndexBuilder {
    fn push_name(&mut self, parts: &[&[u8]]) -> Option<(u32, u32)> {
        let start = self.names.len();
        for (i, p) in parts.iter().enumerate() {
            if i > 0 {
                self.names.push(b'/');
            }
            self.names.extend_from_slice(p);
        }
        let len = self.names.len() - start;
        Some((u32::try_from(start).ok()?, u32::try_from(len).ok()?))
    }

    /// Records one tar entry (markers included), with its xattrs.
    pub(crate) fn add<'x>(
        &mut self,
        e: &RawEntry<'_>,
        xattrs: impl IntoIterator<Item = (&'x [u8], &'x [u8])>,
    ) {
        if self.irregular {
            return;
        }
        let Ok(comps) = components(e.path) else {
            self.irregular = true;
            return;
        };
        let Some((name, parent)) = comps.split_last() else {
            return; // the root: the unpacker leaves it as it is
        };
        if parent.iter().any(|c| is_reserved(c)) {
            self.irregular = true;
            return;
        }
        let mut rec = Rec {
            data: NO_DATA,
            ..Rec::default()
        };
        let named = match classify(name) {
            Name::Plain => {
                rec.kind = match e.kind {
                    EntryKind::File => K_FILE,
                    EntryKind::Dir => K_DIR,
                    EntryKind::Symlink => K_SYMLINK,
                    EntryKind::Hardlink => K_HARDLINK,
                    EntryKind::Other => K_OTHER,
                };
                self.push_name(&comps)
            }
            Name::Opaque => {
                rec.flags = F_OPAQUE;
                self.push_name(parent)
            }
            Name::Delete(target) => {
                rec.flags = F_WHITEOUT;
                let mut full = parent.to_vec();
                full.push(target);
                self.push_name(&full)
            }
            Name::Meta => return,
            Name::Invalid => {
                self.irregular = true;
                return;
            }
        };
        let Some((path, path_len)) = named else {
            self.irregular = true;
            return;
        };
        (rec.path, rec.path_len) = (path, path_len);
        if rec.kind != K_NONE {
            let link = match rec.kind {
                K_SYMLINK if e.link.is_empty() || e.link.contains(&0) => None,
                K_SYMLINK => {
                    let start = self.names.len();
                    self.names.extend_from_slice(e.link);
                    u32::try_from(start)
                        .ok()
                        .zip(u32::try_from(e.link.len()).ok())
                }
                K_HARDLINK => match components(e.link) {
                    Ok(t) if !t.is_empty() => self.push_name(&t),
                    _ => None,
                },
                _ => Some((0, 0)),
            };
            let Some((link, link_len)) = link else {
                self.irregular = true;
                return;
            };
            (rec.link, rec.link_len) = (link, link_len);
            rec.mode = e.mode & 0o7777;
            (rec.uid, rec.gid) = (e.uid, e.gid);
            (rec.mtime, rec.nsec) = (e.mtime, e.nsec);
            if rec.kind == K_FILE {
                (rec.size, rec.data) = (e.size, e.data);
            }
            let at = self.events.len() as u32;
            for (k, v) in xattrs {
                if !is_dropped_xattr(k) {
                    self.xattrs.push((at, k.to_vec(), v.to_vec()));
                }
            }
        }
        if u32::try_from(self.events.len()).is_err() {
            self.irregular = true;
            return;
        }
        self.events.push(rec);
    }

    /// The finished index.
    pub(crate) fn finish(mut self) -> LayerIndex {
        if self.irregular {
            return irregular();
        }
        match self.build() {
            Some(index) => index,
            None => irregular(),
        }
    }

    fn name(&self, r: &Rec) -> &[u8] {
        slice(&self.names, r.path, r.path_len)
    }

    /// `None` when the layer is irregular.
    fn build(&mut self) -> Option<LayerIndex> {
        let n = self.events.len();
        let mut order: Vec<u32> = (0..n as u32).collect();
        order.sort_by(|&a, &b| {
            self.name(&self.events[a as usize])
                .cmp(self.name(&self.events[b as usize]))
                .then(a.cmp(&b))
        });
        self.resolve_hardlinks(&order)?;
        let mut groups = self.merge(&order)?;
        drop(order);
        let implied = self.check_ancestors(&groups)?;
        // The records hold all that is needed from here on.
        self.events = Vec::new();
        // Upgrades first: the search needs `groups` still sorted.
        for (path, _) in implied.iter().filter(|(_, missing)| !missing) {
            if let Ok(at) = groups.binary_search_by(|g| self.name(&g.rec).cmp(path)) {
                groups[at].rec.kind = K_IMPLIED;
                groups[at].rec.mode = 0o755;
            }
        }
        for (path, missing) in implied {
            if missing {
                let (start, len) = put(&mut self.names, &path)?;
                let rec = Rec {
                    path: start,
                    path_len: len,
                    kind: K_IMPLIED,
                    mode: 0o755,
                    data: NO_DATA,
                    ..Rec::default()
                };
                groups.push(Group {
                    rec,
                    source: None,
                    first_dir: None,
                    first_opaque: None,
                });
            }
        }
        let names = std::mem::take(&mut self.names);
        groups.sort_by(|a, b| {
            slice(&names, a.rec.path, a.rec.path_len).cmp(slice(&names, b.rec.path, b.rec.path_len))
        });
        let mut xattrs = Vec::new();
        if !self.xattrs.is_empty() {
            self.xattrs.sort_by_key(|x| x.0);
            for (at, g) in groups.iter().enumerate() {
                let Some(src) = g.source else { continue };
                let start = self.xattrs.partition_point(|x| x.0 < src);
                for x in self.xattrs[start..].iter().take_while(|x| x.0 == src) {
                    xattrs.push((u32::try_from(at).ok()?, x.1.clone(), x.2.clone()));
                }
            }
        }
        let recs: Vec<Rec> = groups.into_iter().map(|g| g.rec).collect();
        Some(LayerIndex {
            names,
            recs,
            xattrs,
            irregular: false,
        })
    }

    /// One record per path, sorted: its entry, with its whiteout and
    /// opaque flags.
    fn merge(&self, order: &[u32]) -> Option<Vec<Group>> {
        let mut groups: Vec<Group> = Vec::with_capacity(order.len());
        let mut i = 0;
        while i < order.len() {
            let path = self.name(&self.events[order[i] as usize]);
            let (mut entries, mut dirs_only, mut flags) = (0, true, 0);
            let (mut last, mut first_dir, mut first_opaque) = (None, None, None);
            let mut j = i;
            while j < order.len() && self.name(&self.events[order[j] as usize]) == path {
                let e = &self.events[order[j] as usize];
                flags |= e.flags;
                if e.flags & F_OPAQUE != 0 && first_opaque.is_none() {
                    first_opaque = Some(order[j]);
                }
                if e.kind != K_NONE {
                    entries += 1;
                    dirs_only &= e.kind == K_DIR;
                    if e.kind == K_DIR && first_dir.is_none() {
                        first_dir = Some(order[j]);
                    }
                    last = Some(order[j]);
                }
                j += 1;
            }
            // Two entries at one path: the unpacker's result depends on
            // their order (a repeated directory keeps the first one's mode
            // and times, the last one's owner).
            if entries > 1 || (flags & F_WHITEOUT != 0 && entries > 0) {
                return None;
            }
            // An opaque marker applies to the directory as it is when met:
            // it must follow this layer's directory entry, if there is any
            // entry at all.
            if first_opaque.is_some() && entries > 0 && (!dirs_only || first_opaque < first_dir) {
                return None;
            }
            let mut rec = self.events[last.unwrap_or(order[i]) as usize];
            rec.flags = flags;
            groups.push(Group {
                rec,
                source: last,
                first_dir,
                first_opaque,
            });
            i = j;
        }
        Some(groups)
    }

    /// A hard link to a file this layer wrote before it reads as that file
    /// (data, size, mode, owner, times); one to a path the layer does not
    /// touch stays a link into the lower layers; anything else is irregular.
    fn resolve_hardlinks(&mut self, order: &[u32]) -> Option<()> {
        for i in 0..self.events.len() {
            if self.events[i].kind != K_HARDLINK {
                continue;
            }
            let target = slice(&self.names, self.events[i].link, self.events[i].link_len);
            let start = order.partition_point(|&o| self.name(&self.events[o as usize]) < target);
            let mut group = order[start..]
                .iter()
                .copied()
                .take_while(|&o| self.name(&self.events[o as usize]) == target)
                .peekable();
            if group.peek().is_none() {
                continue; // into a lower layer: the stack checks it
            }
            let before = group
                .filter(|&o| (o as usize) < i && self.events[o as usize].kind != K_NONE)
                .max()?;
            let t = self.events[before as usize];
            if !(t.kind == K_FILE || (t.kind == K_HARDLINK && t.data != NO_DATA)) {
                return None;
            }
            let e = &mut self.events[i];
            (e.size, e.data, e.mode, e.uid, e.gid) = (t.size, t.data, t.mode, t.uid, t.gid);
            (e.mtime, e.nsec) = (t.mtime, t.nsec);
        }
        Some(())
    }

    /// Checks every entry's ancestors in this layer: none may be a
    /// non-directory or whited out, a listed directory must come before
    /// everything below it, and a directory the unpacker creates for an
    /// entry must not be cleared by a later opaque marker above it (the
    /// unpacker spares only what the layer lists). Returns the ancestors
    /// entries need that the layer does not list (`true`) or lists only as
    /// opaque (`false`).
    fn check_ancestors(&self, groups: &[Group]) -> Option<Vec<(Vec<u8>, bool)>> {
        let find = |path: &[u8]| {
            groups
                .binary_search_by(|g| self.name(&g.rec).cmp(path))
                .ok()
        };
        let root_opaque = find(b"").and_then(|at| groups[at].first_opaque);
        let mut implied: Vec<(Vec<u8>, bool)> = Vec::new();
        let mut cached: Option<ParentCheck> = None;
        for (seq, e) in self.events.iter().enumerate() {
            let path = self.name(e);
            let Some(cut) = path.iter().rposition(|&b| b == b'/') else {
                continue;
            };
            let parent = &path[..cut];
            let entry = e.kind != K_NONE;
            let (newest_dir, risky_opaque) = match &cached {
                Some(c) if c.parent == parent && c.entry == entry => (c.newest_dir, c.risky),
                _ => {
                    let (mut newest_dir, mut risky) = (None, None);
                    let mut opaque_above = root_opaque;
                    let cuts = parent.iter().enumerate().filter(|(_, b)| **b == b'/');
                    for end in cuts.map(|(i, _)| i).chain([parent.len()]) {
                        let a = &parent[..end];
                        let Some(at) = find(a) else {
                            if entry {
                                implied.push((a.to_vec(), true));
                                risky = risky.max(opaque_above);
                            }
                            continue;
                        };
                        let g = &groups[at];
                        if g.rec.flags & F_WHITEOUT != 0 {
                            return None;
                        }
                        match g.rec.kind {
                            K_DIR => newest_dir = newest_dir.max(g.first_dir),
                            K_NONE if entry => {
                                implied.push((a.to_vec(), false));
                                risky = risky.max(opaque_above);
                            }
                            K_NONE => {}
                            _ => return None,
                        }
                        opaque_above = opaque_above.max(g.first_opaque);
                    }
                    cached = Some(ParentCheck {
                        parent: parent.to_vec(),
                        entry,
                        newest_dir,
                        risky,
                    });
                    (newest_dir, risky)
                }
            };
            let after = |at: Option<u32>| at.is_some_and(|at| at as usize > seq);
            if after(newest_dir) || after(risky_opaque) {
                return None;
            }
        }
        implied.sort();
        implied.dedup();
        Some(implied)
    }
}

/// The last parent [`IndexBuilder::check_ancestors`] looked at (for an
/// entry or a marker): the newest listed directory above it, and the newest
/// opaque marker above a directory the unpacker would create.
struct ParentCheck {
    parent: Vec<u8>,
    entry: bool,
    newest_dir: Option<u32>,
    risky: Option<u32>,
}

/// The records of one path while a layer's index is built.
struct Group {
    /// The record (its path in the builder's names).
    rec: Rec,
    /// The entry whose metadata and xattrs the record has.
    source: Option<u32>,
    /// The first directory entry at this path.
    first_dir: Option<u32>,
    /// The first opaque marker of this directory.
    first_opaque: Option<u32>,
}

fn put(names: &mut Vec<u8>, bytes: &[u8]) -> Option<(u32, u32)> {
    let start = u32::try_from(names.len()).ok()?;
    names.extend_from_slice(bytes);
    Some((start, u32::try_from(bytes.len()).ok()?))
}

fn irregular() -> LayerIndex {
    LayerIndex {
        irregular: true,
        ..LayerIndex::default()
    }
}
