//! Build-cache records in `cache/<hex>`, where `<hex>` is the sha256 of
//! the caller's opaque key. A record is written atomically (temp file,
//! fsync, rename) and replaced whole.
//!
//! GC keeps, for every record it keeps, each blob and snapshot whose
//! digest appears as a JSON string anywhere in the record; so a solver
//! that writes `"snapshot": "sha256:…"` or layer digests into its records
//! keeps what they need.

use std::fs;
use std::io;
use std::path::PathBuf;

use super::Store;
use super::error::{IoContext, Result};
use super::fsutil;
use super::lock::LockMode;
use crate::digest::Digest;

impl Store {
    fn cache_path(&self, key: &str) -> PathBuf {
        self.cache_dir().join(Digest::of(key.as_bytes()).hex())
    }

    /// Store (or replace) the record for `key`.
    pub fn put_cache_record(&self, key: &str, bytes: &[u8]) -> Result<()> {
        let _lock = self.lock_store(LockMode::Shared)?;
        fsutil::atomic_write(&self.tmp_dir(), &self.cache_path(key), bytes)
    }

    /// The record for `key`, if any.
    pub fn get_cache_record(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let path = self.cache_path(key);
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).at(&path),
        }
    }

    /// Remove the record for `key`; `false` if there was none.
    pub fn remove_cache_record(&self, key: &str) -> Result<bool> {
        let path = self.cache_path(key);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e).at(&path),
        }
    }

    /// Paths and sizes of every cache record.
    pub(crate) fn cache_files(&self) -> Result<Vec<(PathBuf, u64)>> {
        let dir = self.cache_dir();
        let mut out = Vec::new();
        for name in fsutil::dir_names(&dir)? {
            let path = dir.join(name);
            match fs::symlink_metadata(&path) {
                Ok(m) => out.push((path, m.len())),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e).at(&path),
            }
        }
        Ok(out)
    }
}
