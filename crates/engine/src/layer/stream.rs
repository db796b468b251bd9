//! A stored layer blob as a verified tar stream: the one way the unpacker
//! and the index scanner read a blob. [`open`] checks the blob's digest
//! (and size) as it is read, detects its compression and hashes the
//! uncompressed tar; [`finish`] reads the rest through the hashers and
//! checks the diff_id.

use std::io::{self, BufReader, Chain, Cursor, Read, Take};
use std::path::PathBuf;

use super::compression::{Decoder, Detected, detect};
use super::reader::{TarError, TarReader};
use super::unpack::tar_error;
use super::{Compression, LayerError};
use crate::digest::{Digest, Hasher, VerifyingReader};

/// A reader that hashes what passes through it.
pub(crate) struct HashingReader<R> {
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

/// The tar of a layer blob, decompressed, hashed and verified as it goes.
pub(crate) type LayerTar<R> =
    TarReader<BufReader<HashingReader<Decoder<Chain<Take<Cursor<[u8; 6]>>, VerifyingReader<R>>>>>>;

/// Open `blob` (whose descriptor says `digest` and `size`) as a tar stream.
pub(crate) fn open<R: Read>(
    blob: R,
    digest: &Digest,
    size: Option<u64>,
) -> Result<(LayerTar<R>, Compression), LayerError> {
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
    let head = Cursor::new(magic).take(got as u64);
    let decoder = Decoder::new(head.chain(raw), compression).map_err(read_err)?;
    let hashing = HashingReader {
        inner: decoder,
        hasher: Hasher::new(),
    };
    Ok((
        TarReader::new(BufReader::with_capacity(64 * 1024, hashing)),
        compression,
    ))
}

/// Read everything after the end-of-archive block, then the rest of the
/// raw stream, through the hashers (the digests cover the whole blob), and
/// check the tar against `diff_id` when given; the tar's actual diff_id.
pub(crate) fn finish<R: Read>(
    tar: LayerTar<R>,
    digest: &Digest,
    diff_id: Option<&Digest>,
) -> Result<Digest, LayerError> {
    let end = tar.offset();
    let mut buffered = tar.into_inner();
    io::copy(&mut buffered, &mut io::sink()).map_err(|e| {
        tar_error(
            digest,
            end,
            PathBuf::from("<end of archive>"),
            TarError::from(e),
        )
    })?;
    let HashingReader {
        inner: mut decoder,
        hasher,
    } = buffered.into_inner();
    decoder
        .drain_raw()
        .map_err(|e| LayerError::from_read(digest, e))?;
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
    Ok(actual)
}
