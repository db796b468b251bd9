//! The blob side of layer indexes: [`index_blob`] reads a stored layer's
//! tar headers (decompressing as the unpacker does, verifying digest and
//! diff_id, creating nothing), and [`read_blob_at`] reads one file's bytes
//! at the offset its index recorded.

use std::io::{self, Read};

use super::compression::{Decoder, Detected, detect};
use super::index::{EntryKind, IndexBuilder, LayerIndex, RawEntry};
use super::reader::Kind as TarKind;
use super::unpack::tar_error;
use super::{Compression, LayerError};
use crate::digest::Digest;

/// The index of a stored layer blob, read from its tar headers (nothing
/// is written anywhere). The blob is verified as [`super::unpack`] verifies
/// it: against `digest` (and `size`), and the tar against `diff_id`.
pub fn index_blob<R: Read>(
    blob: R,
    digest: &Digest,
    size: Option<u64>,
    diff_id: Option<&Digest>,
) -> Result<LayerIndex, LayerError> {
    let (mut tar, _) = super::stream::open(blob, digest, size)?;
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
    super::stream::finish(tar, digest, diff_id)?;
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
