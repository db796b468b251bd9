//! [`LayerWriter`]: tar entries in, a compressed blob out, with the diff_id
//! (sha256 of the tar), the blob digest and the size computed as the bytes
//! stream; nothing is read twice.
//!
//! Headers are POSIX ustar with empty uname/gname; PAX records carry names
//! and link names over 100 bytes (raw bytes, as Go writes them: GNU tar
//! 1.34 ignores `hdrcharset`), ids and sizes too large for the octal fields, and xattrs as
//! `SCHILY.xattr.NAME`. Entry names are relative, without `./`, and
//! directories end in `/` (as Go's `archive/tar` users write them).

use std::collections::BTreeMap;
use std::io::{BufWriter, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use tar::EntryType;

use super::compression::{Encoder, EncoderError};
use super::index::{EntryKind, IndexBuilder, LayerIndex, NO_DATA, RawEntry};
use super::whiteout::{OPAQUE_MARKER, WHITEOUT_PREFIX, is_dropped_xattr, is_reserved};
use super::{LayerBlob, LayerError, LayerOptions};
use crate::digest::OffloadHashingWriter as HashingWriter;

const BLOCK: usize = 512;
const COPY_BUFFER: usize = 1 << 20;
const MAX_OCTAL_ID: u64 = 0o7_777_777;
const MAX_OCTAL_SIZE: u64 = 0o77_777_777_777;

/// Metadata of one entry as it goes into the tar header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryMeta {
    /// Permission bits including setuid, setgid and sticky (masked to `0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Seconds since the epoch; negative times are written as 0.
    pub mtime: i64,
    /// Extended attributes; overlayfs's own and `security.selinux` are skipped.
    pub xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl EntryMeta {
    /// Root-owned, mtime 0, no xattrs.
    pub fn new(mode: u32) -> EntryMeta {
        EntryMeta {
            mode,
            ..EntryMeta::default()
        }
    }
}

/// A special file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    Char { major: u32, minor: u32 },
    Block { major: u32, minor: u32 },
    Fifo,
}

type Sink<W> = BufWriter<HashingWriter<Encoder<HashingWriter<W>>>>;

/// Streams tar entries into a compressed blob. Entries go out in the order
/// they are appended: the caller sorts them ([`super::write_tree`] does).
pub struct LayerWriter<W: Write> {
    out: Sink<W>,
    media_type: &'static str,
    epoch: Option<i64>,
    name: Vec<u8>,
    link: Vec<u8>,
    pax: Vec<u8>,
    buf: Vec<u8>,
    /// Bytes of tar written so far (where the next header starts).
    pos: u64,
    /// The path index being recorded ([`LayerWriter::with_index`]).
    index: Option<Box<IndexBuilder>>,
}

impl<W: Write> LayerWriter<W> {
    pub fn new(out: W, opts: &LayerOptions) -> Result<LayerWriter<W>, LayerError> {
        let encoder = Encoder::new(HashingWriter::new(out), opts.compression, opts.level).map_err(
            |e| match e {
                EncoderError::Level(level) => LayerError::InvalidLevel {
                    compression: opts.compression,
                    level,
                },
                EncoderError::Io(source) => LayerError::Output {
                    path: PathBuf::new(),
                    source,
                },
            },
        )?;
        Ok(LayerWriter {
            out: BufWriter::with_capacity(COPY_BUFFER, HashingWriter::new(encoder)),
            media_type: opts.media_types.layer(opts.compression),
            epoch: opts.source_date_epoch,
            name: Vec::new(),
            link: Vec::new(),
            pax: Vec::new(),
            buf: Vec::new(),
            pos: 0,
            index: None,
        })
    }

    /// Also records the layer's path index (every entry's type, metadata
    /// and data offset), returned by [`LayerWriter::finish_with_index`].
    pub fn with_index(mut self) -> LayerWriter<W> {
        self.index = Some(Box::default());
        self
    }

    /// A directory (written as `path/`).
    pub fn append_dir(&mut self, path: &Path, meta: &EntryMeta) -> Result<(), LayerError> {
        self.set_name(path, true)?;
        self.link.clear();
        self.entry(path, EntryType::Directory, 0, meta, None)
    }

    /// A regular file of exactly `size` bytes read from `data`; a reader
    /// that ends early or has more is an error (the file changed).
    pub fn append_file<R: Read>(
        &mut self,
        path: &Path,
        meta: &EntryMeta,
        size: u64,
        mut data: R,
    ) -> Result<(), LayerError> {
        self.set_name(path, false)?;
        self.link.clear();
        self.entry(path, EntryType::Regular, size, meta, None)?;
        if self.buf.is_empty() {
            self.buf = vec![0; COPY_BUFFER];
        }
        let source = |source| LayerError::Source {
            path: path.to_path_buf(),
            source,
        };
        let mut left = size;
        while left > 0 {
            let want = usize::try_from(left)
                .unwrap_or(usize::MAX)
                .min(self.buf.len());
            let n = match data.read(&mut self.buf[..want]) {
                Ok(0) => {
                    return Err(LayerError::SizeChanged {
                        path: path.to_path_buf(),
                        expected: size,
                    });
                }
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(source(e)),
            };
            self.out
                .write_all(&self.buf[..n])
                .map_err(|e| output(path, e))?;
            self.pos += n as u64;
            left -= n as u64;
        }
        let mut probe = [0u8; 1];
        loop {
            match data.read(&mut probe) {
                Ok(0) => break,
                Ok(_) => {
                    return Err(LayerError::SizeChanged {
                        path: path.to_path_buf(),
                        expected: size,
                    });
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(source(e)),
            }
        }
        self.pad(path, size)
    }

    /// A symbolic link; the target is stored as given (any bytes but NUL).
    pub fn append_symlink(
        &mut self,
        path: &Path,
        target: &Path,
        meta: &EntryMeta,
    ) -> Result<(), LayerError> {
        self.set_name(path, false)?;
        let target = target.as_os_str().as_bytes();
        if target.is_empty() || target.contains(&0) {
            return Err(invalid(path, "symlink target is empty or contains NUL"));
        }
        self.link.clear();
        self.link.extend_from_slice(target);
        self.entry(path, EntryType::Symlink, 0, meta, None)
    }

    /// A hard link to `target`, an entry written earlier in this layer.
    pub fn append_hardlink(
        &mut self,
        path: &Path,
        target: &Path,
        meta: &EntryMeta,
    ) -> Result<(), LayerError> {
        self.set_name(path, false)?;
        let mut link = std::mem::take(&mut self.link);
        let normal = normalize(target, false, &mut link);
        self.link = link;
        normal.map_err(|reason| invalid(target, reason))?;
        self.entry(path, EntryType::Link, 0, meta, None)
    }

    /// A character or block device, or a FIFO.
    pub fn append_special(
        &mut self,
        path: &Path,
        special: Special,
        meta: &EntryMeta,
    ) -> Result<(), LayerError> {
        self.set_name(path, false)?;
        self.link.clear();
        let (kind, dev) = match special {
            Special::Char { major, minor } => (EntryType::Char, Some((major, minor))),
            Special::Block { major, minor } => (EntryType::Block, Some((major, minor))),
            Special::Fifo => (EntryType::Fifo, Some((0, 0))),
        };
        self.entry(path, kind, 0, meta, dev)
    }

    /// A deletion of `path` (written as `parent/.wh.name`).
    pub fn append_whiteout(&mut self, path: &Path) -> Result<(), LayerError> {
        self.set_name(path, false)?;
        let base = self
            .name
            .iter()
            .rposition(|&b| b == b'/')
            .map_or(0, |i| i + 1);
        let name = self.name.split_off(base);
        self.name.extend_from_slice(WHITEOUT_PREFIX.as_bytes());
        self.name.extend_from_slice(&name);
        self.marker(path)
    }

    /// An opaque marker: `dir`'s contents in lower layers are hidden.
    pub fn append_opaque(&mut self, dir: &Path) -> Result<(), LayerError> {
        self.set_name(dir, false)?;
        self.name.push(b'/');
        self.name.extend_from_slice(OPAQUE_MARKER.as_bytes());
        self.marker(dir)
    }

    /// Ends the archive and the compressed stream.
    pub fn finish(self) -> Result<LayerBlob, LayerError> {
        self.finish_into_inner().map(|(blob, _)| blob)
    }

    /// Ends the archive and returns the blob's description and the path
    /// index (`None` unless made [`LayerWriter::with_index`]).
    pub fn finish_with_index(self) -> Result<(LayerBlob, Option<LayerIndex>), LayerError> {
        self.finish_parts().map(|(blob, _, index)| (blob, index))
    }

    /// Ends the archive and returns the blob's description and the writer.
    pub fn finish_into_inner(self) -> Result<(LayerBlob, W), LayerError> {
        self.finish_parts().map(|(blob, inner, _)| (blob, inner))
    }

    fn finish_parts(mut self) -> Result<(LayerBlob, W, Option<LayerIndex>), LayerError> {
        let end = Path::new("<end of archive>");
        self.out
            .write_all(&[0; 2 * BLOCK])
            .map_err(|e| output(end, e))?;
        self.pos += 2 * BLOCK as u64;
        let tar = self
            .out
            .into_inner()
            .map_err(|e| output(end, e.into_error()))?;
        let (encoder, diff_id, _) = tar.finish();
        let blob = encoder.finish().map_err(|e| output(end, e))?;
        let (mut inner, digest, size) = blob.finish();
        inner.flush().map_err(|e| output(end, e))?;
        let blob = LayerBlob {
            digest,
            diff_id,
            size,
            media_type: self.media_type.to_string(),
        };
        self.buf = Vec::new();
        let index = self.index.take().map(|b| b.finish());
        Ok((blob, inner, index))
    }

    /// Sets `self.name`; `.wh.` names are refused (they would delete
    /// files when the layer is applied): whiteouts have their own calls.
    fn set_name(&mut self, path: &Path, dir: bool) -> Result<(), LayerError> {
        normalize(path, dir, &mut self.name).map_err(|reason| invalid(path, reason))?;
        if self.name.split(|&b| b == b'/').any(is_reserved) {
            return Err(invalid(path, "`.wh.` names are reserved for whiteouts"));
        }
        Ok(())
    }

    fn marker(&mut self, path: &Path) -> Result<(), LayerError> {
        self.link.clear();
        let meta = EntryMeta::new(0o644);
        self.entry(path, EntryType::Regular, 0, &meta, None)
    }

    fn mtime(&self, mtime: i64) -> u64 {
        let clamped = self.epoch.map_or(mtime, |epoch| mtime.min(epoch));
        u64::try_from(clamped).unwrap_or(0).min(MAX_OCTAL_SIZE)
    }

    /// Writes the PAX header (when needed) and the ustar header of the
    /// entry named `self.name` / `self.link`.
    fn entry(
        &mut self,
        path: &Path,
        kind: EntryType,
        size: u64,
        meta: &EntryMeta,
        dev: Option<(u32, u32)>,
    ) -> Result<(), LayerError> {
        let mtime = self.mtime(meta.mtime);
        self.pax.clear();
        let long_name = self.name.len() > 100;
        let long_link = self.link.len() > 100;
        if long_name {
            record(&mut self.pax, b"path", b"", &self.name);
        }
        if long_link {
            record(&mut self.pax, b"linkpath", b"", &self.link);
        }
        for (key, id) in [(&b"uid"[..], meta.uid), (b"gid", meta.gid)] {
            if u64::from(id) > MAX_OCTAL_ID {
                record(&mut self.pax, key, b"", id.to_string().as_bytes());
            }
        }
        if size > MAX_OCTAL_SIZE {
            record(&mut self.pax, b"size", b"", size.to_string().as_bytes());
        }
        for (key, value) in &meta.xattrs {
            if is_dropped_xattr(key) {
                continue;
            }
            if key.is_empty() || key.contains(&b'=') || key.contains(&0) {
                return Err(LayerError::Unsupported {
                    path: path.to_path_buf(),
                    what: format!("xattr name {:?}", String::from_utf8_lossy(key)),
                });
            }
            record(&mut self.pax, b"SCHILY.xattr.", key, value);
        }
        if !self.pax.is_empty() {
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(EntryType::XHeader);
            h.set_mode(0o644);
            h.set_mtime(mtime);
            h.set_size(self.pax.len() as u64);
            let trimmed = self.name.strip_suffix(b"/").unwrap_or(&self.name);
            let base = trimmed.rsplit(|&b| b == b'/').next().unwrap_or(trimmed);
            let field = &mut h.as_old_mut().name;
            let prefix = b"PaxHeaders/";
            field[..prefix.len()].copy_from_slice(prefix);
            let n = base.len().min(field.len() - prefix.len());
            field[prefix.len()..prefix.len() + n].copy_from_slice(&base[..n]);
            h.set_cksum();
            self.out
                .write_all(h.as_bytes())
                .map_err(|e| output(path, e))?;
            let pax = std::mem::take(&mut self.pax);
            let written = self.out.write_all(&pax).map_err(|e| output(path, e));
            self.pax = pax;
            written?;
            self.pos += (BLOCK + self.pax.len()) as u64;
            self.pad(path, self.pax.len() as u64)?;
        }
        let mut h = tar::Header::new_ustar();
        h.set_entry_type(kind);
        h.set_mode(meta.mode & 0o7777);
        h.set_uid(u64::from(meta.uid));
        h.set_gid(u64::from(meta.gid));
        h.set_mtime(mtime);
        h.set_size(size);
        let old = h.as_old_mut();
        let n = self.name.len().min(old.name.len());
        old.name[..n].copy_from_slice(&self.name[..n]);
        let n = self.link.len().min(old.linkname.len());
        old.linkname[..n].copy_from_slice(&self.link[..n]);
        if let Some((major, minor)) = dev {
            let unsupported = |_| LayerError::Unsupported {
                path: path.to_path_buf(),
                what: format!("device number {major}:{minor}"),
            };
            h.set_device_major(major).map_err(unsupported)?;
            h.set_device_minor(minor).map_err(unsupported)?;
        }
        h.set_cksum();
        self.out
            .write_all(h.as_bytes())
            .map_err(|e| output(path, e))?;
        self.pos += BLOCK as u64;
        if let Some(index) = &mut self.index {
            let kind = match kind {
                EntryType::Directory => EntryKind::Dir,
                EntryType::Symlink => EntryKind::Symlink,
                EntryType::Link => EntryKind::Hardlink,
                EntryType::Regular => EntryKind::File,
                _ => EntryKind::Other,
            };
            let entry = RawEntry {
                path: &self.name,
                kind,
                link: &self.link,
                mode: meta.mode & 0o7777,
                uid: meta.uid,
                gid: meta.gid,
                mtime: i64::try_from(mtime).unwrap_or(i64::MAX),
                nsec: 0,
                size,
                data: if kind == EntryKind::File {
                    self.pos
                } else {
                    NO_DATA
                },
            };
            let xattrs = meta.xattrs.iter().map(|(k, v)| (&k[..], &v[..]));
            index.add(&entry, xattrs);
        }
        Ok(())
    }

    fn pad(&mut self, path: &Path, size: u64) -> Result<(), LayerError> {
        let rem = (size % BLOCK as u64) as usize;
        if rem == 0 {
            return Ok(());
        }
        self.out
            .write_all(&[0; BLOCK][rem..])
            .map_err(|e| output(path, e))?;
        self.pos += (BLOCK - rem) as u64;
        Ok(())
    }
}

/// Appends one PAX record `"<len> <key><key2>=<value>\n"`.
fn record(out: &mut Vec<u8>, key: &[u8], key2: &[u8], value: &[u8]) {
    let body = 1 + key.len() + key2.len() + 1 + value.len() + 1;
    let mut len = body + digits(body);
    if digits(len) != digits(len - digits(body)) {
        len = body + digits(len);
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.extend_from_slice(key2);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

fn digits(n: usize) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}

/// Writes `path` as a layer entry name into `out`: relative, `.` and empty
/// components dropped, `..` refused, a trailing `/` for directories.
pub(crate) fn normalize(path: &Path, dir: bool, out: &mut Vec<u8>) -> Result<(), &'static str> {
    out.clear();
    let bytes = path.as_os_str().as_bytes();
    if bytes.first() == Some(&b'/') {
        return Err("absolute path");
    }
    if bytes.contains(&0) {
        return Err("NUL byte in path");
    }
    for comp in bytes.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => return Err("`..` component"),
            _ => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(comp);
            }
        }
    }
    if out.is_empty() {
        return Err("empty path (the root is not an entry)");
    }
    if dir {
        out.push(b'/');
    }
    Ok(())
}

fn invalid(path: &Path, reason: &'static str) -> LayerError {
    LayerError::InvalidPath {
        path: path.to_path_buf(),
        reason,
    }
}

fn output(path: &Path, source: std::io::Error) -> LayerError {
    LayerError::Output {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::super::Compression;
    use super::*;

    #[test]
    fn layer_pax_record_lengths_count_themselves() {
        for value_len in [
            0usize, 1, 80, 84, 85, 86, 90, 95, 96, 97, 98, 990, 995, 996, 997, 9_990,
        ] {
            let mut out = Vec::new();
            let value = vec![b'a'; value_len];
            record(&mut out, b"path", b"", &value);
            let space = out.iter().position(|&b| b == b' ').unwrap();
            let stated: usize = std::str::from_utf8(&out[..space]).unwrap().parse().unwrap();
            assert_eq!(stated, out.len(), "value of {value_len} bytes");
            let Ok(parsed) = super::super::reader::pax_records(&out) else {
                panic!("unparsable record for {value_len} bytes");
            };
            assert_eq!(parsed[0].1, &value[..]);
        }
    }

    #[test]
    fn layer_entry_names_are_normalised() {
        let mut out = Vec::new();
        normalize(Path::new("./a//b/./c"), false, &mut out).unwrap();
        assert_eq!(out, b"a/b/c");
        normalize(Path::new("a/b/"), true, &mut out).unwrap();
        assert_eq!(out, b"a/b/");
        assert!(normalize(Path::new("/etc/x"), false, &mut out).is_err());
        assert!(normalize(Path::new("a/../b"), false, &mut out).is_err());
        assert!(normalize(Path::new("."), true, &mut out).is_err());
    }

    #[test]
    fn layer_writer_rejects_a_file_that_is_shorter_or_longer_than_stated() {
        let mut w = LayerWriter::new(Vec::new(), &LayerOptions::default()).unwrap();
        let short = w.append_file(Path::new("f"), &EntryMeta::new(0o644), 10, &b"abc"[..]);
        assert!(
            matches!(short, Err(LayerError::SizeChanged { expected: 10, .. })),
            "{short:?}"
        );
        let mut w = LayerWriter::new(Vec::new(), &LayerOptions::default()).unwrap();
        let long = w.append_file(Path::new("f"), &EntryMeta::new(0o644), 2, &b"abc"[..]);
        assert!(
            matches!(long, Err(LayerError::SizeChanged { expected: 2, .. })),
            "{long:?}"
        );
        let mut w = LayerWriter::new(Vec::new(), &LayerOptions::default()).unwrap();
        let reserved = w.append_file(Path::new("d/.wh.x"), &EntryMeta::new(0o644), 0, &b""[..]);
        assert!(
            matches!(reserved, Err(LayerError::InvalidPath { .. })),
            "{reserved:?}"
        );
        assert!(matches!(
            LayerWriter::new(
                Vec::new(),
                &LayerOptions {
                    compression: Compression::Zstd,
                    level: Some(99),
                    ..Default::default()
                }
            ),
            Err(LayerError::InvalidLevel { level: 99, .. })
        ));
    }
}
