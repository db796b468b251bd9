//! [`LayerIndex`]: every path one layer puts in a filesystem, with its type,
//! mode, owner, times, link target, xattrs and (for regular files) where its
//! bytes start in the uncompressed tar, so a later step can learn what the
//! parent filesystem holds at a path without unpacking anything.
//!
//! An index is made from the same entries the unpacker sees: by the
//! [`super::LayerWriter`] as it writes a layer ([`super::LayerWriter::with_index`]),
//! or by reading a stored blob's headers ([`index_blob`]); `index_build`
//! holds the rules, `index_scan` the blob side. Names are
//! cleaned as the unpacker cleans them; `.wh.NAME` becomes a whiteout flag
//! on `NAME`, `.wh..wh..opq` an opaque flag on its directory, and parent
//! directories the layer does not list are recorded as "implied" (the
//! unpacker creates them, `0755` root-owned).
//!
//! What the unpacker would do differently depending on the order of entries,
//! or through a symlink, marks the layer *irregular*: two entries at one
//! path, an entry below a non-directory or a whiteout of the same layer, a
//! whiteout of a path the layer also writes, a child before its parent
//! directory, an opaque marker before its directory's entry or after an
//! entry in a directory the unpacker had to create below it (the unpacker
//! spares only listed paths), a hard link to something the layer only
//! writes later or to a non-file, anything the unpacker refuses. Its stacks
//! are not answered from indexes ([`super::IndexStack::new`] gives `None`)
//! and the caller unpacks, exactly as before. Layers written by hoist,
//! BuildKit or Docker (sorted, parents listed) are regular.
//!
//! Stored as a compact binary file: a header, fixed-size records sorted by
//! path, the names, the xattrs, and a sha256 of all of it (a torn or
//! damaged file is refused and made again).

use std::io::{self, Write};

use sha2::Digest as _;

pub(crate) use super::index_build::IndexBuilder;
pub use super::index_scan::index_blob;
pub(crate) use super::index_scan::read_blob_at;

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
    pub(crate) names: Vec<u8>,
    pub(crate) recs: Vec<Rec>,
    /// (record, name, value), sorted by record.
    pub(crate) xattrs: Vec<(u32, Vec<u8>, Vec<u8>)>,
    pub(crate) irregular: bool,
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

    /// The bytes this layer puts on disk as Docker counts a layer's size
    /// (`docker images` SIZE, overlay2's `DiffSize`: the size of every
    /// non-directory in the layer's diff directory, a symlink's being its
    /// target's length, a file with several links once; whiteouts and
    /// device nodes are empty).
    pub fn content_size(&self) -> u64 {
        self.recs
            .iter()
            .filter(|r| r.flags & F_WHITEOUT == 0)
            .map(|r| match r.kind {
                K_FILE => r.size,
                K_SYMLINK => u64::from(r.link_len),
                _ => 0,
            })
            .sum()
    }

    /// Every recorded path, sorted (implied directories, whiteouts and
    /// opaque directories included).
    pub fn paths(&self) -> impl Iterator<Item = &[u8]> {
        self.recs.iter().map(|r| self.path_of(r))
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
        // Writing into a Vec cannot fail.
        let _ = self.write_to(&mut out);
        out
    }

    /// Writes [`LayerIndex::encode`]'s bytes to `out` as they are made.
    pub fn write_to<W: Write>(&self, out: W) -> io::Result<()> {
        let mut out = Summing {
            inner: out,
            sum: sha2::Sha256::new(),
        };
        out.write_all(MAGIC)?;
        out.write_all(&VERSION.to_le_bytes())?;
        out.write_all(&u32::from(self.irregular).to_le_bytes())?;
        out.write_all(&(self.recs.len() as u64).to_le_bytes())?;
        out.write_all(&(self.names.len() as u64).to_le_bytes())?;
        out.write_all(&(self.xattrs.len() as u64).to_le_bytes())?;
        let mut rec = [0u8; RECORD];
        for r in &self.recs {
            let fields = [r.path, r.path_len, r.link, r.link_len];
            for (i, v) in fields.iter().enumerate() {
                rec[i * 4..i * 4 + 4].copy_from_slice(&v.to_le_bytes());
            }
            rec[16..20].copy_from_slice(&[r.kind, r.flags, 0, 0]);
            for (i, v) in [r.mode, r.uid, r.gid, r.nsec].iter().enumerate() {
                rec[20 + i * 4..24 + i * 4].copy_from_slice(&v.to_le_bytes());
            }
            rec[36..44].copy_from_slice(&r.mtime.to_le_bytes());
            rec[44..52].copy_from_slice(&r.size.to_le_bytes());
            rec[52..60].copy_from_slice(&r.data.to_le_bytes());
            out.write_all(&rec)?;
        }
        out.write_all(&self.names)?;
        for (rec, key, value) in &self.xattrs {
            out.write_all(&rec.to_le_bytes())?;
            out.write_all(&(key.len() as u32).to_le_bytes())?;
            out.write_all(key)?;
            out.write_all(&(value.len() as u32).to_le_bytes())?;
            out.write_all(value)?;
        }
        let sum = out.sum.finalize();
        out.inner.write_all(&sum)?;
        out.inner.flush()
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

/// A writer that hashes what it passes on.
struct Summing<W> {
    inner: W,
    sum: sha2::Sha256,
}

impl<W: Write> Write for Summing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sum.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

pub(crate) fn slice(names: &[u8], start: u32, len: u32) -> &[u8] {
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
