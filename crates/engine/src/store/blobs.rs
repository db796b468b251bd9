//! Content-addressed blobs in `blobs/sha256/<hex>`.
//!
//! Writes stream into `tmp/` through a [`HashingWriter`], are fsynced,
//! checked against the expected digest and size, made read-only and renamed
//! into place; the directory is then fsynced. A blob already present is not
//! rewritten. Reads go through a [`VerifyingReader`].

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::Store;
use super::error::{IoContext, Result, StoreError};
use super::fsutil;
use super::lock::{FileLock, LockMode};
use crate::digest::{Digest, HashingWriter, VerifyingReader};

/// A blob in the store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BlobInfo {
    pub digest: Digest,
    pub size: u64,
}

/// A blob being written. Write the bytes, then [`BlobWriter::commit`];
/// dropping it uncommitted deletes the temp file. Holds the store lock
/// shared, so GC waits for it.
pub struct BlobWriter {
    inner: Option<HashingWriter<BufWriter<File>>>,
    tmp: PathBuf,
    store: Store,
    _lock: FileLock,
}

impl BlobWriter {
    /// Finish the blob: fsync, verify against `expected` digest and size
    /// (each when given), and move it into place.
    pub fn commit(mut self, expected: Option<&Digest>, size: Option<u64>) -> Result<BlobInfo> {
        let Some(inner) = self.inner.take() else {
            return Err(StoreError::Io {
                path: self.tmp.clone(),
                source: io::Error::other("blob writer already finished"),
            });
        };
        let (buf, digest, len) = inner.finish();
        let file = buf.into_inner().map_err(|e| e.into_error()).at(&self.tmp)?;
        file.sync_all().at(&self.tmp)?;
        if let Some(expected) = expected
            && *expected != digest
        {
            return Err(StoreError::BlobDigestMismatch {
                expected: expected.clone(),
                actual: digest,
            });
        }
        if let Some(size) = size
            && size != len
        {
            return Err(StoreError::BlobSizeMismatch {
                digest,
                expected: size,
                actual: len,
            });
        }
        let dest = self.store.blob_path(&digest);
        if !exists(&dest)? {
            file.set_permissions(fs::Permissions::from_mode(0o444))
                .at(&self.tmp)?;
            drop(file);
            fs::rename(&self.tmp, &dest).at(&dest)?;
            fsutil::fsync_dir(&self.store.blobs_dir())?;
        }
        Ok(BlobInfo { digest, size: len })
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.inner.as_mut() {
            Some(w) => w.write(buf),
            None => Err(io::Error::other("blob writer already finished")),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self.inner.as_mut() {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        self.inner = None;
        // Already renamed into place after a commit, so NotFound is normal.
        let _ = fs::remove_file(&self.tmp);
    }
}

fn exists(path: &Path) -> Result<bool> {
    match fs::symlink_metadata(path) {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).at(path),
    }
}

impl Store {
    /// Where the blob lives (or would live). Read it with
    /// [`Store::open_blob`] to have it verified; the path is for exporters
    /// that hard-link or copy whole files.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.blobs_dir().join(digest.hex())
    }

    /// The size of a stored blob, or `None` if it is absent.
    pub fn blob_size(&self, digest: &Digest) -> Result<Option<u64>> {
        let path = self.blob_path(digest);
        match fs::metadata(&path) {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).at(&path),
        }
    }

    pub fn has_blob(&self, digest: &Digest) -> Result<bool> {
        Ok(self.blob_size(digest)?.is_some())
    }

    /// Start writing a blob whose bytes the caller pushes.
    pub fn blob_writer(&self) -> Result<BlobWriter> {
        let lock = self.lock_store(LockMode::Shared)?;
        let (file, tmp) = fsutil::create_temp(&self.tmp_dir(), "blob")?;
        Ok(BlobWriter {
            inner: Some(HashingWriter::new(BufWriter::with_capacity(1 << 16, file))),
            tmp,
            store: self.clone(),
            _lock: lock,
        })
    }

    /// Stream `reader` into the store, verifying `expected` digest and
    /// `size` when given. If the expected blob is already present, nothing
    /// is read.
    pub fn put_blob(
        &self,
        mut reader: impl Read,
        expected: Option<&Digest>,
        size: Option<u64>,
    ) -> Result<BlobInfo> {
        if let Some(digest) = expected
            && let Some(have) = self.blob_size(digest)?
        {
            if let Some(size) = size
                && size != have
            {
                return Err(StoreError::BlobSizeMismatch {
                    digest: digest.clone(),
                    expected: size,
                    actual: have,
                });
            }
            return Ok(BlobInfo {
                digest: digest.clone(),
                size: have,
            });
        }
        let mut w = self.blob_writer()?;
        let tmp = w.tmp.clone();
        io::copy(&mut reader, &mut w).at(&tmp)?;
        w.commit(expected, size)
    }

    /// Store bytes already in memory (manifests, configs).
    pub fn put_blob_bytes(&self, bytes: &[u8]) -> Result<BlobInfo> {
        let digest = Digest::of(bytes);
        self.put_blob(bytes, Some(&digest), Some(bytes.len() as u64))
    }

    /// Open a blob for reading; the reader fails with `InvalidData` at end
    /// of stream unless the content hashes to `digest`.
    pub fn open_blob(&self, digest: &Digest) -> Result<VerifyingReader<File>> {
        let path = self.blob_path(digest);
        let file = match File::open(&path) {
            Ok(f) => f,
            // A blob known to an imported cache is fetched on first read.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if !self.ensure_blob(digest)? {
                    return Err(StoreError::BlobNotFound(digest.clone()));
                }
                File::open(&path).at(&path)?
            }
            Err(e) => return Err(e).at(&path),
        };
        let size = file.metadata().at(&path)?.len();
        Ok(VerifyingReader::new(file, digest.clone(), Some(size)))
    }

    /// Read a whole blob (a manifest, index or config) and verify it.
    pub fn read_blob_verified(&self, digest: &Digest) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.open_blob(digest)?
            .read_to_end(&mut out)
            .map_err(|source| StoreError::CorruptBlob {
                digest: digest.clone(),
                path: self.blob_path(digest),
                source,
            })?;
        Ok(out)
    }

    /// Every entry of `blobs/sha256`: the digest its name spells (or the
    /// bad name) and its size.
    pub(crate) fn list_blob_files(&self) -> Result<Vec<(Result<Digest, PathBuf>, u64)>> {
        let dir = self.blobs_dir();
        let mut out = Vec::new();
        for name in fsutil::dir_names(&dir)? {
            let path = dir.join(&name);
            let size = match fs::symlink_metadata(&path) {
                Ok(m) if m.is_file() => m.len(),
                Ok(_) => {
                    out.push((Err(path), 0));
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e).at(&path),
            };
            let digest = name
                .to_str()
                .and_then(|n| format!("sha256:{n}").parse::<Digest>().ok());
            out.push((digest.ok_or(path), size));
        }
        Ok(out)
    }
}
