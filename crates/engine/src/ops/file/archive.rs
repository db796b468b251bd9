//! `ADD` of a local archive: detected by content as BuildKit's
//! `isArchivePath` does (a gzip, bzip2, xz or zstd stream, or none, whose
//! first 512 bytes are a valid tar header), then unpacked into the
//! destination as `chrootarchive.Untar` does: the destination is always a
//! directory (created `0755`, owned by the `--chown` user), entries keep
//! their modes, times and ids (or take the `--chown` ids), missing parents
//! are created `0755` root-owned, and an entry replaces whatever is in its
//! way except a directory meeting a directory.
//!
//! BuildKit extracts inside a chroot at the destination, so the
//! destination acts as `/`: a `..` in an entry name or a hard link target
//! stops there, parents are resolved through symlinks inside it, and a
//! symlink's target is stored as written (it is only ever followed inside
//! the image root). Nothing reaches above the destination.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::Path;

use super::FileOpError;
use super::emit::Sink;
use super::glob::clean;
use super::plan::Op;
use super::vfs::{Found, Key, Kind, Meta, Node, Payload};
use super::view::ViewFile;
use crate::layer::Special;

/// How an archive is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Codec {
    None,
    Gzip,
    Bzip2,
    Xz,
    Zstd,
}

fn codec(magic: &[u8]) -> Codec {
    match magic {
        [0x1f, 0x8b, ..] => Codec::Gzip,
        [b'B', b'Z', b'h', ..] => Codec::Bzip2,
        [0xfd, b'7', b'z', b'X', b'Z', 0x00, ..] => Codec::Xz,
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Codec::Zstd,
        _ => Codec::None,
    }
}

fn decoder<'a>(raw: impl Read + 'a, codec: Codec) -> io::Result<Box<dyn Read + 'a>> {
    let raw = BufReader::with_capacity(256 * 1024, raw);
    Ok(match codec {
        Codec::None => Box::new(raw),
        Codec::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(raw)),
        Codec::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(raw)),
        Codec::Xz => Box::new(lzma_rust2::XzReader::new(raw, true)),
        Codec::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(raw)?),
    })
}

/// Whether a stream whose first bytes are `head` is an archive, as docker's
/// `IsArchive` decides for `docker build -`: a compression magic, or a
/// valid first tar header (`head` holds at least 512 bytes of a tar).
pub fn looks_like_archive(head: &[u8]) -> bool {
    if codec(head) != Codec::None {
        return true;
    }
    head.get(..512)
        .and_then(|b| <&[u8; 512]>::try_from(b).ok())
        .is_some_and(valid_header)
}

/// Whether the regular file at `path` is a tar archive, and how compressed.
pub(crate) fn detect(path: &Path) -> io::Result<Option<Codec>> {
    let mut f = File::open(path)?;
    let mut magic = [0u8; 6];
    let got = read_full(&mut f, &mut magic)?;
    let codec = codec(&magic[..got]);
    let f = File::open(path)?;
    let mut block = [0u8; 512];
    let Ok(mut d) = decoder(f, codec) else {
        return Ok(None);
    };
    // A stream that fails to decompress is not an archive (Go: no error).
    match read_full(&mut d, &mut block) {
        Ok(512) => {}
        _ => return Ok(None),
    }
    Ok(valid_header(&block).then_some(codec))
}

fn read_full(r: &mut dyn Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Go's `tar.Reader.Next` on a first block: not all zeros, and a checksum
/// that matches the unsigned or signed sum.
fn valid_header(block: &[u8; 512]) -> bool {
    if block.iter().all(|&b| b == 0) {
        return false;
    }
    let field = &block[148..156];
    let text: String = field
        .iter()
        .take_while(|&&b| b != 0)
        .map(|&b| b as char)
        .collect();
    let Ok(stored) = i64::from_str_radix(text.trim(), 8) else {
        return false;
    };
    let (mut unsigned, mut signed) = (0i64, 0i64);
    for (i, &b) in block.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += i64::from(b);
        signed += i64::from(b as i8);
    }
    stored == unsigned || stored == signed
}

/// Cleans an archive path below the destination as `filepath.Join("/",
/// name)` does in the chroot: `..` stops at the destination.
fn inside(name: &[u8]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for comp in name.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                out.pop();
            }
            c => out.push(c.to_vec()),
        }
    }
    out
}

impl<S: Sink> Op<'_, S> {
    fn archive_error(&self, entry: &[u8], reason: impl Into<String>) -> FileOpError {
        FileOpError::Archive {
            op: self.word,
            src: self.src.clone(),
            dest: self.dest.clone(),
            entry: String::from_utf8_lossy(entry).into_owned(),
            reason: reason.into(),
        }
    }

    /// Unpacks the archive at `path` into the destination directory.
    pub(crate) fn extract(&mut self, path: &Path) -> Result<(), FileOpError> {
        let Some(codec) = detect(path).map_err(|e| self.io("reading", path, e))? else {
            return Ok(());
        };
        let dest = self.resolve_dest(&clean(self.dest.as_bytes()), true)?;
        let mut created = Meta {
            mode: 0o755,
            uid: 0,
            gid: 0,
            mtime: self.now.0,
            nsec: self.now.1,
            xattrs: BTreeMap::new(),
        };
        let implied = created.clone();
        if let Some((uid, gid)) = self.chown {
            (created.uid, created.gid) = (uid, gid);
        }
        self.mkdir_all(&dest, &created)?;
        self.flush()?;
        let file = File::open(path).map_err(|e| self.io("opening", path, e))?;
        let raw = decoder(file, codec).map_err(|e| self.io("decompressing", path, e))?;
        let mut archive = tar::Archive::new(raw);
        let entries = archive.entries().map_err(|e| self.io("reading", path, e))?;
        for entry in entries {
            let mut entry = entry.map_err(|e| self.io("reading", path, e))?;
            self.extract_entry(&mut entry, &dest, &implied, path)?;
        }
        Ok(())
    }

    fn extract_entry<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        dest: &Key,
        implied: &Meta,
        archive: &Path,
    ) -> Result<(), FileOpError> {
        let name: Vec<u8> = entry.path_bytes().into_owned();
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() {
            return Ok(());
        }
        let comps = inside(&name);
        if comps.iter().any(|c| c.starts_with(b".wh.")) {
            return Err(self.archive_error(&name, "`.wh.` names cannot be carried in a layer"));
        }
        let Some((leaf, parents)) = comps.split_last() else {
            return Ok(()); // the destination itself
        };
        let bad = |what: &str, e: io::Error| format!("{what}: {e}");
        let mut meta = self
            .entry_meta(entry)
            .map_err(|e| self.archive_error(&name, bad("header", e)))?;
        if let Some((uid, gid)) = self.chown {
            (meta.uid, meta.gid) = (uid, gid);
        }
        let parent_path = parents.join(&b'/');
        let parent = self
            .vfs
            .resolve(dest, &parent_path, true)
            .map_err(|e| self.resolve_error(e, archive))?;
        self.mkdir_all(&parent, implied)?;
        let key = parent.join(leaf);
        let existing = self.lookup_key(&key)?;
        let node_kind = match kind {
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Symlink => Kind::Symlink(
                link_name(entry)
                    .ok_or_else(|| self.archive_error(&name, "symlink without a target"))?,
            ),
            tar::EntryType::Link => {
                let target = link_name(entry)
                    .ok_or_else(|| self.archive_error(&name, "hard link without a target"))?;
                return self.extract_hardlink(&name, &target, dest, &key, existing, meta);
            }
            tar::EntryType::Char | tar::EntryType::Block => {
                let h = entry.header();
                let major = h.device_major().ok().flatten().unwrap_or(0);
                let minor = h.device_minor().ok().flatten().unwrap_or(0);
                Kind::Special(if kind == tar::EntryType::Char {
                    Special::Char { major, minor }
                } else {
                    Special::Block { major, minor }
                })
            }
            tar::EntryType::Fifo => Kind::Special(Special::Fifo),
            t if t.is_file() || t == tar::EntryType::Continuous => Kind::File(Payload::Empty),
            other => {
                return Err(self.archive_error(
                    &name,
                    format!("unsupported entry type {:?}", other.as_byte() as char),
                ));
            }
        };
        let is_dir = node_kind == Kind::Dir;
        if existing != Found::Missing && !(is_dir && existing == Found::Dir) {
            self.vfs.remove_below(&key);
        }
        self.emit_parents(&key)?;
        let ctx_err =
            |op: &Self, e: super::emit::SinkError| e.into_error(op.word, &op.src, &op.dest);
        let result = match &node_kind {
            Kind::Dir => self.sink.dir(&key, &meta),
            Kind::Symlink(t) => self.sink.symlink(&key, t, &meta),
            Kind::Special(s) => self.sink.special(&key, *s, &meta),
            Kind::File(_) => {
                let size = entry.size();
                self.report.bytes += size;
                self.sink.file(&key, &meta, size, entry)
            }
        };
        result.map_err(|e| ctx_err(self, e))?;
        self.report.entries += 1;
        self.vfs.overlay.insert(
            key,
            Node {
                kind: node_kind,
                meta,
                emitted: true,
            },
        );
        Ok(())
    }

    fn lookup_key(&self, key: &Key) -> Result<Found, FileOpError> {
        self.vfs
            .lookup(key)
            .map_err(|e| self.io("inspecting", &self.vfs.shown_path(key), e))
    }

    /// A hard link inside the archive: to an entry this op wrote it is a
    /// link; to a file the destination already had, a copy of it (a layer
    /// cannot link to a lower layer's file).
    fn extract_hardlink(
        &mut self,
        name: &[u8],
        target: &[u8],
        dest: &Key,
        key: &Key,
        existing: Found,
        meta: Meta,
    ) -> Result<(), FileOpError> {
        let tkey = self
            .vfs
            .resolve(dest, &inside(target).join(&b'/'), false)
            .map_err(|e| self.resolve_error(e, Path::new("/")))?;
        let found = self.lookup_key(&tkey)?;
        if found == Found::Missing {
            return Err(self.archive_error(name, "hard link target does not exist"));
        }
        if found == Found::Dir {
            return Err(self.archive_error(name, "hard link to a directory"));
        }
        if existing == Found::Dir {
            self.vfs.remove_below(key);
        }
        self.emit_parents(key)?;
        let written = self
            .vfs
            .overlay
            .get(&tkey)
            .filter(|n| n.emitted)
            .map(|n| (n.kind.clone(), n.meta.clone()));
        let ctx = |op: &Self, e: super::emit::SinkError| e.into_error(op.word, &op.src, &op.dest);
        let (kind, meta) = match (written, &found) {
            (Some((kind, tmeta)), _) => {
                self.sink
                    .hardlink(key, &tkey, &tmeta)
                    .map_err(|e| ctx(self, e))?;
                (kind, tmeta)
            }
            // A hard link to a symlink is that symlink (link(2) does not
            // follow it): never read through it.
            (None, Found::Symlink(t)) => {
                self.sink.symlink(key, t, &meta).map_err(|e| ctx(self, e))?;
                (Kind::Symlink(t.clone()), meta)
            }
            (None, _) => {
                let shown = self.vfs.shown_path(&tkey);
                let (mut f, size) = match self.vfs.view_open(&tkey) {
                    Ok(ViewFile::File(f, size)) => (f, size),
                    Ok(ViewFile::Missing) => {
                        return Err(self.archive_error(name, "hard link target does not exist"));
                    }
                    Ok(ViewFile::NotFile) => {
                        return Err(self.archive_error(name, "hard link to a special file"));
                    }
                    Err(e) => return Err(self.io("opening", &shown, e)),
                };
                self.sink
                    .file(key, &meta, size, &mut f)
                    .map_err(|e| ctx(self, e))?;
                self.report.bytes += size;
                (Kind::File(Payload::Empty), meta)
            }
        };
        self.report.entries += 1;
        self.vfs.overlay.insert(
            key.clone(),
            Node {
                kind,
                meta,
                emitted: true,
            },
        );
        Ok(())
    }

    /// Mode, ids, mtime (with PAX's fraction) and PAX xattrs of an entry.
    fn entry_meta<R: Read>(&self, entry: &mut tar::Entry<'_, R>) -> io::Result<Meta> {
        let h = entry.header();
        let mut meta = Meta {
            mode: h.mode()? & 0o7777,
            uid: u32::try_from(h.uid()?).unwrap_or(u32::MAX),
            gid: u32::try_from(h.gid()?).unwrap_or(u32::MAX),
            mtime: i64::try_from(h.mtime()?).unwrap_or(0),
            nsec: 0,
            xattrs: BTreeMap::new(),
        };
        if let Some(exts) = entry.pax_extensions()? {
            for ext in exts {
                let ext = ext?;
                let Ok(key) = ext.key() else { continue };
                if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                    if !super::vfs::dropped_xattr(name.as_bytes()) {
                        meta.xattrs
                            .insert(name.as_bytes().to_vec(), ext.value_bytes().to_vec());
                    }
                } else if key == "mtime" {
                    let text = String::from_utf8_lossy(ext.value_bytes()).into_owned();
                    let (secs, frac) = text.split_once('.').unwrap_or((&text, ""));
                    if let Ok(s) = secs.parse::<i64>() {
                        meta.mtime = s;
                        let digits: String = frac.chars().take(9).collect();
                        meta.nsec = format!("{digits:0<9}").parse().unwrap_or(0);
                    }
                }
            }
        }
        Ok(meta)
    }
}

fn link_name<R: Read>(entry: &tar::Entry<'_, R>) -> Option<Vec<u8>> {
    entry
        .link_name_bytes()
        .map(Cow::into_owned)
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_file_archive_paths_stay_inside() {
        assert_eq!(inside(b"./a/../b"), vec![b"b".to_vec()]);
        assert_eq!(
            inside(b"/etc/passwd"),
            vec![b"etc".to_vec(), b"passwd".to_vec()]
        );
        assert_eq!(inside(b"../x"), vec![b"x".to_vec()]);
        assert_eq!(inside(b"a/../../../x"), vec![b"x".to_vec()]);
        assert!(inside(b"./").is_empty());
    }

    #[test]
    fn ops_file_archive_magic_is_recognised() {
        assert_eq!(codec(&[0x1f, 0x8b, 8]), Codec::Gzip);
        assert_eq!(codec(b"BZh91AY"), Codec::Bzip2);
        assert_eq!(codec(&[0xfd, b'7', b'z', b'X', b'Z', 0]), Codec::Xz);
        assert_eq!(codec(&[0x28, 0xb5, 0x2f, 0xfd]), Codec::Zstd);
        assert_eq!(codec(b"ustar"), Codec::None);
        let zero = [0u8; 512];
        assert!(
            !valid_header(&zero),
            "an all-zero block is the end, not an archive"
        );
    }
}
