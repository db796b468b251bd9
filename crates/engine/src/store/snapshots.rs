//! Unpacked layer trees in `snapshots/<hex>/`, keyed by the OCI ChainID of
//! the layers' diff_ids, shared by every build using the store; and in
//! `diffs/<hex>/`, the overlay upper directory a `RUN` step left: only the
//! top layer of that chain, in overlayfs's own format (whiteouts as 0:0
//! character devices, opaque directories by xattr), to stack as a lower
//! directory under later steps.
//!
//! A snapshot is made by reserving a directory in `tmp/`, filling it, and
//! committing: the file system is synced and the directory renamed into
//! place, so a snapshot under its final name is always complete. If another
//! process committed the same chain id first, that one wins and ours is
//! deleted (the contents are the same by construction). Removal renames the
//! tree back into `tmp/` before deleting it.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::Store;
use super::error::{IoContext, Result};
use super::fsutil;
use super::lock::{FileLock, LockMode};
use crate::digest::Digest;

/// The OCI ChainIDs of every prefix of `diff_ids`: `ChainID(L0) =
/// DiffID(L0)`, `ChainID(L0..Ln) = sha256(ChainID(L0..Ln-1) + " " +
/// DiffID(Ln))`. The last one identifies the whole stack.
pub fn chain_ids(diff_ids: &[Digest]) -> Vec<Digest> {
    let mut out: Vec<Digest> = Vec::with_capacity(diff_ids.len());
    for diff_id in diff_ids {
        let next = match out.last() {
            None => diff_id.clone(),
            Some(parent) => Digest::of(format!("{parent} {diff_id}").as_bytes()),
        };
        out.push(next);
    }
    out
}

/// A directory in `tmp/` being filled to become a snapshot. Dropping it
/// uncommitted deletes it. Holds the store lock shared, so GC waits.
#[derive(Debug)]
pub struct SnapshotReservation {
    dir: PathBuf,
    store: Store,
    committed: bool,
    _lock: FileLock,
}

impl SnapshotReservation {
    /// The directory to fill.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Publish the tree as `chain_id` (an atomic rename); returns the
    /// snapshot's final path (someone else's if they committed first).
    ///
    /// The files are not flushed to disk (a `syncfs` here flushed every
    /// other process's dirty pages too and cost seconds): a killed process
    /// leaves the page cache intact, and a snapshot is derived data, so
    /// after a power loss callers re-create it (the build keys snapshots to
    /// the boot id, see `build::snapshot`).
    pub fn commit(self, chain_id: &Digest) -> Result<PathBuf> {
        self.commit_as(SnapshotKind::Full, chain_id)
    }

    /// Publish the tree as the overlay diff of `chain_id`'s top layer.
    pub fn commit_diff(self, chain_id: &Digest) -> Result<PathBuf> {
        self.commit_as(SnapshotKind::Diff, chain_id)
    }

    fn commit_as(mut self, kind: SnapshotKind, chain_id: &Digest) -> Result<PathBuf> {
        let dest = self.store.kind_path(kind, chain_id);
        match fs::rename(&self.dir, &dest) {
            Ok(()) => {
                self.committed = true;
                fsutil::fsync_dir(&self.store.kind_dir(kind))?;
            }
            // A non-empty directory is already there: the same chain id
            // was committed concurrently. Ours goes in Drop.
            Err(e) if is_dir_taken(&e) => {}
            Err(e) => return Err(e).at(&dest),
        }
        Ok(dest)
    }
}

fn is_dir_taken(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::DirectoryNotEmpty
        || e.kind() == io::ErrorKind::AlreadyExists
        || e.raw_os_error() == Some(rustix::io::Errno::NOTEMPTY.raw_os_error())
}

impl Drop for SnapshotReservation {
    fn drop(&mut self) {
        if !self.committed {
            let _ = fsutil::remove_any(&self.dir);
        }
    }
}

/// The two kinds of trees: a whole filesystem, or one layer's overlay diff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotKind {
    Full,
    Diff,
}

/// What a build records once a tree is committed (a cache record, see
/// [`Store::mark_tree`]): the boot it was made in (trees are not flushed to
/// disk, so one from an earlier boot may be torn) and how many entries it
/// has (so `check` can tell a tree that lost files since).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeMarker {
    pub boot_id: String,
    /// `None` in markers written before entries were counted.
    pub entries: Option<u64>,
}

fn marker_key(kind: SnapshotKind, chain_id: &Digest) -> String {
    match kind {
        SnapshotKind::Full => format!("snapshot-boot:{chain_id}"),
        SnapshotKind::Diff => format!("diff-boot:{chain_id}"),
    }
}

impl Store {
    /// Record that the committed tree of `chain_id` is complete as it is
    /// now, made in the boot `boot_id` (its entries are counted).
    pub fn mark_tree(&self, kind: SnapshotKind, chain_id: &Digest, boot_id: &str) -> Result<()> {
        let path = self.kind_path(kind, chain_id);
        let entries = fsutil::tree_entries(&path)?;
        self.put_cache_record(
            &marker_key(kind, chain_id),
            format!("{boot_id}\n{entries}\n").as_bytes(),
        )
    }

    /// The marker of the tree of `chain_id`, if one was recorded.
    pub fn tree_marker(&self, kind: SnapshotKind, chain_id: &Digest) -> Result<Option<TreeMarker>> {
        let Some(bytes) = self.get_cache_record(&marker_key(kind, chain_id))? else {
            return Ok(None);
        };
        let text = String::from_utf8_lossy(&bytes);
        let mut lines = text.lines();
        let boot_id = lines.next().unwrap_or("").trim().to_string();
        let entries = lines.next().and_then(|l| l.trim().parse().ok());
        Ok(Some(TreeMarker { boot_id, entries }))
    }

    /// Forget the marker of the tree of `chain_id`.
    pub(crate) fn remove_tree_marker(&self, kind: SnapshotKind, chain_id: &Digest) -> Result<()> {
        self.remove_cache_record(&marker_key(kind, chain_id))
            .map(|_| ())
    }

    pub(crate) fn kind_dir(&self, kind: SnapshotKind) -> PathBuf {
        match kind {
            SnapshotKind::Full => self.snapshots_dir(),
            SnapshotKind::Diff => self.diffs_dir(),
        }
    }

    pub(crate) fn kind_path(&self, kind: SnapshotKind, chain_id: &Digest) -> PathBuf {
        self.kind_dir(kind).join(chain_id.hex())
    }

    /// Reserve an empty directory to unpack a snapshot into.
    pub fn reserve_snapshot(&self) -> Result<SnapshotReservation> {
        let lock = self.lock_store(LockMode::Shared)?;
        let dir = fsutil::create_temp_dir(&self.tmp_dir(), "snap")?;
        Ok(SnapshotReservation {
            dir,
            store: self.clone(),
            committed: false,
            _lock: lock,
        })
    }

    /// The path of a committed snapshot, if there is one. Hold a
    /// [`Lease`](super::Lease) while using it, so GC leaves it alone.
    pub fn snapshot(&self, chain_id: &Digest) -> Result<Option<PathBuf>> {
        self.snapshot_of(SnapshotKind::Full, chain_id)
    }

    /// The path of a committed tree of either kind, if there is one.
    pub fn snapshot_of(&self, kind: SnapshotKind, chain_id: &Digest) -> Result<Option<PathBuf>> {
        let path = self.kind_path(kind, chain_id);
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => Ok(Some(path)),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).at(&path),
        }
    }

    /// Chain ids of all committed snapshots.
    pub fn list_snapshots(&self) -> Result<Vec<Digest>> {
        self.list_of(SnapshotKind::Full)
    }

    /// Chain ids of all committed trees of one kind.
    pub fn list_of(&self, kind: SnapshotKind) -> Result<Vec<Digest>> {
        Ok(fsutil::dir_names(&self.kind_dir(kind))?
            .iter()
            .filter_map(|n| n.to_str())
            .filter_map(|n| format!("sha256:{n}").parse().ok())
            .collect())
    }

    /// Remove a snapshot; `false` if there was none.
    pub fn remove_snapshot(&self, chain_id: &Digest) -> Result<bool> {
        self.remove_of(SnapshotKind::Full, chain_id)
    }

    /// Remove a tree of either kind; `false` if there was none.
    pub fn remove_of(&self, kind: SnapshotKind, chain_id: &Digest) -> Result<bool> {
        let _lock = self.lock_store(LockMode::Shared)?;
        self.remove_snapshot_locked(kind, chain_id)
            .map(|n| n.is_some())
    }

    /// Remove a tree (lock held by the caller); its size if it existed.
    pub(crate) fn remove_snapshot_locked(
        &self,
        kind: SnapshotKind,
        chain_id: &Digest,
    ) -> Result<Option<u64>> {
        let path = self.kind_path(kind, chain_id);
        let size = match fsutil::tree_size(&path) {
            Ok(size) => size,
            Err(super::StoreError::Io { source, .. })
                if source.kind() == io::ErrorKind::NotFound =>
            {
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let trash = self.tmp_dir().join(fsutil::unique_name("trash"));
        match fs::rename(&path, &trash) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).at(&path),
        }
        fsutil::fsync_dir(&self.kind_dir(kind))?;
        fsutil::remove_any(&trash)?;
        Ok(Some(size))
    }
}
