//! Advisory `flock` locks shared by every hoist process using one store.
//!
//! - `locks/store.lock`: shared by anything that reads or adds content
//!   (blob writes, tagging, builds holding a [`Lease`]); exclusive for
//!   garbage collection, so GC never sees a half-finished build.
//! - `locks/refs.lock`: exclusive around each read-modify-write of the
//!   refs database, so concurrent tags never lose an update.
//!
//! Locks are per open file: each guard opens the lock file itself, so two
//! guards in one process behave like two processes. The kernel drops a
//! lock when its holder dies, so a killed process never leaves one behind.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rustix::fs::{FlockOperation, flock};

use super::error::{Result, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LockMode {
    Shared,
    Exclusive,
}

/// A held `flock`; released when dropped (the file is closed).
#[derive(Debug)]
pub(crate) struct FileLock {
    /// `None`: a shared lock on a read-only file system without a lock
    /// file, where no one can write.
    _file: Option<File>,
}

impl FileLock {
    /// Block until `path` (created if missing) is locked in `mode`.
    pub(crate) fn acquire(path: &Path, mode: LockMode) -> Result<FileLock> {
        let err = |source: io::Error| StoreError::Lock {
            path: path.to_path_buf(),
            source,
        };
        let file = match OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
        {
            Ok(file) => file,
            // A reader of a read-only store (a read-only mount, a store it
            // may not write): `flock` needs no write access, so the lock
            // file is opened to read; without one, nobody can write there.
            Err(e) if mode == LockMode::Shared && cannot_write(&e) => match File::open(path) {
                Ok(file) => file,
                Err(missing) if missing.kind() == io::ErrorKind::NotFound => {
                    return Ok(FileLock { _file: None });
                }
                Err(_) => return Err(err(e)),
            },
            Err(e) => return Err(err(e)),
        };
        let op = match mode {
            LockMode::Shared => FlockOperation::LockShared,
            LockMode::Exclusive => FlockOperation::LockExclusive,
        };
        loop {
            match flock(&file, op) {
                Ok(()) => return Ok(FileLock { _file: Some(file) }),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(err(e.into())),
            }
        }
    }
}

/// The error of opening a file to write where the caller may not write.
fn cannot_write(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::ReadOnlyFilesystem || e.kind() == io::ErrorKind::PermissionDenied
}

/// A shared hold on the store: while it lives no GC runs, so blobs,
/// snapshots and temp files written under it survive until they are
/// referenced (tagged) or the lease is dropped. `hoist build` holds one
/// from its first look at the store (base images and cache hits resolved)
/// until its names are set and its outputs written.
#[derive(Debug)]
pub struct Lease {
    _lock: FileLock,
    count: Arc<AtomicUsize>,
    root: PathBuf,
}

impl Lease {
    pub(crate) fn new(lock: FileLock, count: Arc<AtomicUsize>, root: PathBuf) -> Lease {
        count.fetch_add(1, Ordering::SeqCst);
        Lease {
            _lock: lock,
            count,
            root,
        }
    }

    /// The root of the store this lease holds.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.count.fetch_sub(1, Ordering::SeqCst);
    }
}
