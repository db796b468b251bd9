//! [`LayerIndex`]: every path one layer puts in a filesystem, with its type,
//! mode, owner, times, link target, xattrs and (for regular files) where its
//! bytes start in the uncompressed tar, so a later step can learn what the
//! parent filesystem holds at a path without unpacking anything.
//!
//! An index is made from the same entries the unpacker sees: by the
//! [`super::LayerWriter`] as it writes a layer ([`super::LayerWriter::with_index`]),
//! or by reading a stored blob's headers ([`index_blob`]). Names are
//! cleaned as the unpacker cleans them; `.wh.NAME` becomes a whiteout flag
//! on `NAME`, `.wh..wh..opq` an opaque flag on its directory, and parent
//! directories the layer does not list are recorded as "implied" (the
//! unpacker creates them, `0755` root-owned).
//!
//! What the unpacker would do differently depending on the order of entries,
//! or through a symlink (an entry below a non-directory of the same layer,
//! a whiteout of a path the layer also writes, a child before its parent
//! directory, a hard link to something the layer only writes later,
//! anything the unpacker refuses), marks the layer *irregular*: its stacks
//! are not answered from indexes ([`super::IndexStack::new`] gives `None`)
//! and the caller unpacks, exactly as before.
//!
//! Stored as a compact binary file: a header, fixed-size records sorted by
//! path, the names, the xattrs, and a sha256 of all of it (a torn or
//! damaged file is refused and made again).

use std::io::{self, Read};

use sha2::Digest as _;

use super::compression::{Decoder, Detected, detect};
use super::reader::{Kind as TarKind, TarReader};
use super::unpack::tar_error;
use super::unpack_entry::components;
use super::whiteout::{Name, classify, is_dropped_xattr, is_reserved};
use super::{Compression, LayerError};
use crate::digest::{Digest, Hasher, VerifyingReader};

/// No data offset (not a regular file, or a hard link to a lower layer).
pub(crate) const NO_DATA: u64 = u64::MAX;

pub(crate) const K_NONE: u8 = 0;
pub(crate) const K_FILE: u8 = 1;
pub(crate) const K_DIR: u8 = 2;
pub(crate) const K_SYMLINK: u8 = 3;
pub(crate) const K_HARDLINK: u8 = 4;
pub(crate) const K_OTHER: u8 = 5;
pub(crate) const K_IMPLIED: u8 = 6;

pub(crate) const F_WHITEOUT: u8 = 1;
pub(crate) const F_OPAQUE: u8 = 2;

const MAGIC: &[u8; 8] = b"HOISTIDX";
const VERSION: u32 = 1;
const HEADER: usize = 8 + 4 + 4 + 8 + 8 + 8;
const RECORD: usize = 60;

/// Why an index file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("layer index: {0}")]
    Invalid(&'static str),
}

/// What kind of entry a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    /// A hard link (reads as the file it links to).
    Hardlink,
    /// A device node or a FIFO.
    Other,
}

/// One entry as the writer or the tar reader gives it.
pub(crate) struct RawEntry<'a> {
    pub path: &'a [u8],
    pub kind: EntryKind,
    pub link: &'a [u8],
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    pub nsec: u32,
    pub size: u64,
    /// Where the data starts in the uncompressed tar (regular files).
    pub data: u64,
}

/// One path of a layer. `path` and `link` are ranges of the names arena.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Rec {
    pub path: u32,
    pub path_len: u32,
    pub link: u32,
    pub link_len: u32,
    pub kind: u8,
    pub flags: u8,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nsec: u32,
    pub mtime: i64,
    pub size: u64,
    pub data: u64,
}

/// The paths of one layer, sorted, with what each one is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayerIndex {
    names: Vec<u8>,
    recs: Vec<Rec>,
    /// (record, name, value), sorted by record.
    xattrs: Vec<(u32, Vec<u8>, Vec<u8>)>,
    irregular: bool,
}

impl LayerIndex {
    /// Paths recorded (implied directories and whiteouts included).
    pub fn len(&self) -> usize {
        self.recs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.recs.is_empty()
    }

    /// Whether lookups over this layer give what unpacking it gives.
    pub fn is_regular(&self) -> bool {
        !self.irregular
    }

    pub(crate) fn recs(&self) -> &[Rec] {
        &self.recs
    }

    pub(crate) fn path_of(&self, r: &Rec) -> &[u8] {
        slice(&self.names, r.path, r.path_len)
    }

    pub(crate) fn link_of(&self, r: &Rec) -> &[u8] {
        slice(&self.names, r.link, r.link_len)
    }

    /// The position of the record at `path` (cleaned, relative, no
    /// trailing `/`).
    pub(crate) fn find(&self, path: &[u8]) -> Option<usize> {
        self.recs
            .binary_search_by(|r| self.path_of(r).cmp(path))
            .ok()
    }

    /// The record at `path`.
    pub(crate) fn get(&self, path: &[u8]) -> Option<&Rec> {
        self.find(path).map(|i| &self.recs[i])
    }

    /// The xattrs of the record at position `at`.
    pub(crate) fn xattrs_at(&self, at: usize) -> impl Iterator<Item = (&[u8], &[u8])> {
        let at = u32::try_from(at).unwrap_or(u32::MAX);
        let start = self.xattrs.partition_point(|x| x.0 < at);
        self.xattrs[start..]
            .iter()
            .take_while(move |x| x.0 == at)
            .map(|x| (&x.1[..], &x.2[..]))
    }

    /// The index as bytes (see the module docs).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + self.recs.len() * RECORD + self.names.len() + 32);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&u32::from(self.irregular).to_le_bytes());
        out.extend_from_slice(&(self.recs.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.names.len() as u64).to_le_bytes());
        out.extend_from_slice(&(self.xattrs.len() as u64).to_le_bytes());
        for r in &self.recs {
            for v in [r.path, r.path_len, r.link, r.link_len] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            out.extend_from_slice(&[r.kind, r.flags, 0, 0]);
            for v in [r.mode, r.uid, r.gid, r.nsec] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            out.extend_from_slice(&r.mtime.to_le_bytes());
            out.extend_from_slice(&r.size.to_le_bytes());
            out.extend_from_slice(&r.data.to_le_bytes());
        }
        out.extend_from_slice(&self.names);
        for (rec, key, value) in &self.xattrs {
            out.extend_from_slice(&rec.to_le_bytes());
            out.extend_from_slice(&(key.len() as u32).to_le_bytes());
            out.extend_from_slice(key);
            out.extend_from_slice(&(value.len() as u32).to_le_bytes());
            out.extend_from_slice(value);
        }
        let sum = sha2::Sha256::digest(&out);
        out.extend_from_slice(&sum);
        out
    }

    /// Reads what [`LayerIndex::encode`] wrote; anything else is an error.
    pub fn decode(bytes: &[u8]) -> Result<LayerIndex, IndexError> {
        let bad = IndexError::Invalid;
        if bytes.len() < HEADER + 32 {
            return Err(bad("too short"));
        }
        let (body, sum) = bytes.split_at(bytes.len() - 32);
        if sha2::Sha256::digest(body).as_slice() != sum {
            return Err(bad("checksum mismatch"));
        }
        let mut c = Cursor { buf: body, at: 0 };
        if c.take(8)? != MAGIC {
            return Err(bad("not an index"));
        }
        if c.u32()? != VERSION {
            return Err(bad("unknown version"));
        }
        let irregular = c.u32()? != 0;
        let count = usize::try_from(c.u64()?).map_err(|_| bad("record count"))?;
        let names_len = usize::try_from(c.u64()?).map_err(|_| bad("names length"))?;
        let nx = usize::try_from(c.u64()?).map_err(|_| bad("xattr count"))?;
        if count.saturating_mul(RECORD) > body.len() {
            return Err(bad("record count"));
        }
        let mut recs = Vec::with_capacity(count);
        for _ in 0..count {
            let mut r = Rec {
                path: c.u32()?,
                path_len: c.u32()?,
                link: c.u32()?,
                link_len: c.u32()?,
                ..Rec::default()
            };
            let kf = c.take(4)?;
            (r.kind, r.flags) = (kf[0], kf[1]);
            (r.mode, r.uid, r.gid, r.nsec) = (c.u32()?, c.u32()?, c.u32()?, c.u32()?);
            r.mtime = c.u64()? as i64;
            (r.size, r.data) = (c.u64()?, c.u64()?);
            if r.kind > K_IMPLIED {
                return Err(bad("unknown entry kind"));
            }
            recs.push(r);
        }
        let names = c.take(names_len)?.to_vec();
        let in_names = |start: u32, len: u32| {
            (start as usize)
                .checked_add(len as usize)
                .is_some_and(|end| end <= names.len())
        };
        if !recs
            .iter()
            .all(|r| in_names(r.path, r.path_len) && in_names(r.link, r.link_len))
        {
            return Err(bad("name out of range"));
        }
        let mut xattrs = Vec::with_capacity(nx.min(body.len()));
        for _ in 0..nx {
            let rec = c.u32()?;
            let klen = c.u32()? as usize;
            let key = c.take(klen)?.to_vec();
            let vlen = c.u32()? as usize;
            let value = c.take(vlen)?.to_vec();
            xattrs.push((rec, key, value));
        }
        if c.at != body.len() {
            return Err(bad("trailing bytes"));
        }
        let index = LayerIndex {
            names,
            recs,
            xattrs,
            irregular,
        };
        let sorted = index
            .recs
            .windows(2)
            .all(|w| index.path_of(&w[0]) < index.path_of(&w[1]));
        if !sorted || !index.xattrs.windows(2).all(|w| w[0].0 <= w[1].0) {
            return Err(bad("records out of order"));
        }
        Ok(index)
    }
}

fn slice(names: &[u8], start: u32, len: u32) -> &[u8] {
    let start = start as usize;
    names.get(start..start + len as usize).unwrap_or_default()
}

struct Cursor<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], IndexError> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or(IndexError::Invalid("truncated"))?;
        let out = &self.buf[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, IndexError> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, IndexError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
}

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
        for (path, missing) in self.check_ancestors(&groups)? {
            if missing {
                let rec = Rec {
                    kind: K_IMPLIED,
                    mode: 0o755,
                    data: NO_DATA,
                    ..Rec::default()
                };
                groups.push(Group {
                    path,
                    rec,
                    source: None,
                    first_dir: None,
                });
            } else if let Ok(at) = groups.binary_search_by(|g| g.path[..].cmp(&path)) {
                groups[at].rec.kind = K_IMPLIED;
                groups[at].rec.mode = 0o755;
            }
        }
        groups.sort_by(|a, b| a.path.cmp(&b.path));
        let mut names = Vec::with_capacity(self.names.len());
        let mut recs = Vec::with_capacity(groups.len());
        for g in &groups {
            let mut rec = g.rec;
            (rec.path, rec.path_len) = put(&mut names, &g.path)?;
            let link = slice(&self.names, rec.link, rec.link_len);
            (rec.link, rec.link_len) = put(&mut names, link)?;
            recs.push(rec);
        }
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
        Some(LayerIndex {
            names,
            recs,
            xattrs,
            irregular: false,
        })
    }

    /// One record per path, sorted: its last entry (several only if all
    /// are directories, which merge), with its whiteout and opaque flags.
    fn merge(&self, order: &[u32]) -> Option<Vec<Group>> {
        let mut groups: Vec<Group> = Vec::new();
        let mut i = 0;
        while i < order.len() {
            let path = self.name(&self.events[order[i] as usize]);
            let (mut entries, mut dirs_only, mut flags) = (0, true, 0);
            let (mut last, mut first_dir) = (None, None);
            let mut j = i;
            while j < order.len() && self.name(&self.events[order[j] as usize]) == path {
                let e = &self.events[order[j] as usize];
                flags |= e.flags;
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
            if (entries > 1 && !dirs_only) || (flags & F_WHITEOUT != 0 && entries > 0) {
                return None;
            }
            let mut rec = self.events[last.unwrap_or(order[i]) as usize];
            rec.flags = flags;
            groups.push(Group {
                path: path.to_vec(),
                rec,
                source: last,
                first_dir,
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
    /// non-directory or whited out, and a listed directory must come before
    /// everything below it. Returns the ancestors entries need that the
    /// layer does not list (`true`) or lists only as opaque (`false`).
    fn check_ancestors(&self, groups: &[Group]) -> Option<Vec<(Vec<u8>, bool)>> {
        let find = |path: &[u8]| groups.binary_search_by(|g| g.path[..].cmp(path)).ok();
        let mut implied: Vec<(Vec<u8>, bool)> = Vec::new();
        // The last parent checked, the newest listed directory above it,
        // and whether its implied directories were collected.
        let mut cached: Option<(Vec<u8>, Option<u32>, bool)> = None;
        for (seq, e) in self.events.iter().enumerate() {
            let path = self.name(e);
            let Some(cut) = path.iter().rposition(|&b| b == b'/') else {
                continue;
            };
            let parent = &path[..cut];
            let entry = e.kind != K_NONE;
            let newest = match &cached {
                Some((p, newest, collected)) if p == parent && (*collected || !entry) => *newest,
                _ => {
                    let mut newest: Option<u32> = None;
                    let cuts = parent.iter().enumerate().filter(|(_, b)| **b == b'/');
                    for end in cuts.map(|(i, _)| i).chain([parent.len()]) {
                        let a = &parent[..end];
                        let Some(at) = find(a) else {
                            if entry {
                                implied.push((a.to_vec(), true));
                            }
                            continue;
                        };
                        let g = &groups[at];
                        if g.rec.flags & F_WHITEOUT != 0 {
                            return None;
                        }
                        match g.rec.kind {
                            K_DIR => newest = newest.max(g.first_dir),
                            K_NONE if entry => implied.push((a.to_vec(), false)),
                            K_NONE => {}
                            _ => return None,
                        }
                    }
                    cached = Some((parent.to_vec(), newest, entry));
                    newest
                }
            };
            if newest.is_some_and(|d| d as usize > seq) {
                return None;
            }
        }
        implied.sort();
        implied.dedup();
        Some(implied)
    }
}

/// The records of one path while a layer's index is built.
struct Group {
    path: Vec<u8>,
    rec: Rec,
    /// The entry whose metadata and xattrs the record has.
    source: Option<u32>,
    /// The first directory entry at this path.
    first_dir: Option<u32>,
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

/// A reader that hashes what passes through it.
struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// The index of a stored layer blob, read from its tar headers (nothing
/// is written anywhere). The blob is verified as [`super::unpack`] verifies
/// it: against `digest` (and `size`), and the tar against `diff_id`.
pub fn index_blob<R: Read>(
    blob: R,
    digest: &Digest,
    size: Option<u64>,
    diff_id: Option<&Digest>,
) -> Result<LayerIndex, LayerError> {
    let read_err = |e| LayerError::from_read(digest, e);
    let mut raw = VerifyingReader::new(blob, digest.clone(), size);
    let mut magic = [0u8; 6];
    let mut got = 0;
    while got < magic.len() {
        match raw.read(&mut magic[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(read_err(e)),
        }
    }
    let compression = match detect(&magic[..got]) {
        Detected::Known(c) => c,
        Detected::Unsupported(what) => {
            return Err(LayerError::UnknownCompression {
                digest: digest.clone(),
                what,
            });
        }
    };
    let decoder = Decoder::new((&magic[..got]).chain(raw), compression).map_err(read_err)?;
    let hashing = HashingReader {
        inner: decoder,
        hasher: Hasher::new(),
    };
    let mut tar = TarReader::new(io::BufReader::with_capacity(64 * 1024, hashing));
    let mut builder = IndexBuilder::default();
    loop {
        let entry = match tar.next_entry() {
            Ok(Some(entry)) => entry,
            Ok(None) => break,
            Err(e) => {
                let path = super::unpack_entry::to_path(tar.current_path());
                return Err(tar_error(digest, tar.offset(), path, e));
            }
        };
        let kind = match entry.kind {
            TarKind::File => EntryKind::File,
            TarKind::Dir => EntryKind::Dir,
            TarKind::Symlink => EntryKind::Symlink,
            TarKind::Hardlink => EntryKind::Hardlink,
            TarKind::Char | TarKind::Block | TarKind::Fifo => EntryKind::Other,
        };
        let raw = RawEntry {
            path: &entry.path,
            kind,
            link: &entry.link,
            mode: entry.mode,
            uid: entry.uid,
            gid: entry.gid,
            mtime: entry.mtime,
            nsec: entry.mtime_nsec,
            size: entry.size,
            data: tar.offset(),
        };
        builder.add(&raw, entry.xattrs.iter().map(|(k, v)| (&k[..], &v[..])));
    }
    let end = tar.offset();
    let mut buffered = tar.into_inner();
    io::copy(&mut buffered, &mut io::sink()).map_err(|e| {
        tar_error(
            digest,
            end,
            std::path::PathBuf::from("<end of archive>"),
            super::reader::TarError::from(e),
        )
    })?;
    let HashingReader {
        inner: mut decoder,
        hasher,
    } = buffered.into_inner();
    decoder.drain_raw().map_err(read_err)?;
    let actual = hasher.finish();
    if let Some(expected) = diff_id
        && *expected != actual
    {
        return Err(LayerError::DiffId {
            digest: digest.clone(),
            expected: expected.clone(),
            actual,
        });
    }
    Ok(builder.finish())
}

/// `size` bytes of a blob's uncompressed tar from `offset` on: a seek for
/// an uncompressed blob, else a decompression that skips to it.
pub(crate) fn read_blob_at(
    blob: &std::path::Path,
    offset: u64,
    size: u64,
) -> io::Result<Box<dyn Read>> {
    use std::io::{Seek, SeekFrom};
    let mut f = std::fs::File::open(blob)?;
    let mut magic = [0u8; 6];
    let mut got = 0;
    while got < magic.len() {
        match f.read(&mut magic[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let compression = match detect(&magic[..got]) {
        Detected::Known(c) => c,
        Detected::Unsupported(what) => {
            return Err(io::Error::new(io::ErrorKind::InvalidData, what));
        }
    };
    if compression == Compression::None {
        f.seek(SeekFrom::Start(offset))?;
        return Ok(Box::new(f.take(size)));
    }
    f.seek(SeekFrom::Start(0))?;
    let mut d = Decoder::new(f, compression)?;
    let skipped = io::copy(&mut (&mut d).take(offset), &mut io::sink())?;
    if skipped < offset {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "blob ends before the entry",
        ));
    }
    Ok(Box::new(d.take(size)))
}
