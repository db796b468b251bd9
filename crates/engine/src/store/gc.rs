//! Garbage collection and disk usage.
//!
//! GC runs under the exclusive store lock, so no build, pull or tag is
//! half-way through. It marks from every ref (through indexes, manifests
//! and configs; image configs' `rootfs.diff_ids` give the snapshot chain
//! ids to keep) and from every cache record (each digest string in it),
//! then deletes every unmarked blob and snapshot and everything in `tmp/`.
//! With `all`, every ref and cache record is removed first, as
//! `docker system prune --all` does (but not a name set or moved while GC
//! waited for the leases of running builds: their results stay). A GC
//! killed half-way only ever deleted unreachable things; the next GC
//! finishes the job.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::PathBuf;

use serde::Serialize;

use super::Store;
use super::error::{IoContext, Result, StoreError};
use super::fsutil;
use super::lock::LockMode;
use super::refs::Refs;
use super::snapshots::SnapshotKind;
use super::walk::{Role, Walk, digests_in};
use crate::digest::Digest;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GcOptions {
    /// Also remove every image ref and every cache record first.
    pub all: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GcReport {
    /// Names removed (only with `all`).
    pub removed_refs: Vec<String>,
    pub removed_blobs: u64,
    pub removed_blob_bytes: u64,
    pub removed_snapshots: u64,
    pub removed_snapshot_bytes: u64,
    pub removed_cache_records: u64,
    pub removed_cache_bytes: u64,
    /// Entries of `tmp/` (files or directories) removed.
    pub removed_temp_files: u64,
    pub removed_temp_bytes: u64,
}

impl GcReport {
    pub fn reclaimed_bytes(&self) -> u64 {
        self.removed_blob_bytes
            + self.removed_snapshot_bytes
            + self.removed_cache_bytes
            + self.removed_temp_bytes
    }
}

/// A count of things and the bytes they take.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    pub count: u64,
    pub bytes: u64,
}

impl Usage {
    fn add(&mut self, bytes: u64) {
        self.count += 1;
        self.bytes += bytes;
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImageUsage {
    pub name: String,
    pub digest: Digest,
    /// Bytes of every stored blob the image reaches.
    pub size: u64,
    /// Of which also reached by another tagged image.
    pub shared_size: u64,
    /// Of which reached by no other tagged image.
    pub unique_size: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DuReport {
    pub blobs: Usage,
    pub snapshots: Usage,
    pub cache: Usage,
    /// Per-layer path indexes (`indexes/`).
    pub indexes: Usage,
    /// `RUN --mount=type=cache` directories (`cache-mounts/`).
    pub cache_mounts: Usage,
    pub temp: Usage,
    pub images: Vec<ImageUsage>,
    /// What `gc` without `all` would free now: unreachable blobs,
    /// unreferenced snapshots, temp files.
    pub reclaimable: u64,
}

impl Store {
    /// `indexes/<hex>`: the path index of the layer blob `sha256:<hex>`
    /// (a cache, remade from the blob when missing; GC removes the index
    /// of every blob it does not keep).
    pub(crate) fn indexes_dir(&self) -> PathBuf {
        self.root.join("indexes")
    }

    /// Mark from `refs` and, if `cache`, from the cache records. With
    /// `strict`, a damaged manifest/index/config reachable from a ref is an
    /// error (its children cannot be marked, so sweeping would lose them).
    fn mark(&self, refs: &Refs, cache: bool, strict: bool) -> Result<Walk> {
        let mut walk = Walk::default();
        for entry in refs.values() {
            walk.visit(self, &entry.digest, Role::Image, true)?;
        }
        if strict && let Some((digest, reason)) = walk.broken.first() {
            return Err(StoreError::Damaged {
                digest: digest.clone(),
                reason: reason.clone(),
            });
        }
        if cache {
            let mut named = BTreeSet::new();
            for (path, _) in self.cache_files()? {
                let bytes = match fs::read(&path) {
                    Ok(b) => b,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e).at(&path),
                };
                if let Ok(json) = serde_json::from_slice(&bytes) {
                    digests_in(&json, &mut named);
                }
            }
            for digest in named {
                walk.visit(self, &digest, Role::Unknown, false)?;
                walk.chains.insert(digest);
            }
        }
        Ok(walk)
    }

    /// Collect garbage. Waits for every lease, build and write in any
    /// process; fails if this handle itself holds a lease.
    pub fn gc(&self, options: GcOptions) -> Result<GcReport> {
        let count = self.leases_held();
        if count > 0 {
            return Err(StoreError::LeaseHeld {
                root: self.root().to_path_buf(),
                count,
            });
        }
        // With `all`: the names there are now, before waiting for running
        // builds. A name a build sets (or moves) while this waits for its
        // lease is that build's result, not one this prune was asked to
        // remove: it stays, with everything it reaches.
        let named_before = if options.all {
            Some(self.read_refs()?)
        } else {
            None
        };
        let _lock = self.lock_store(LockMode::Exclusive)?;
        let mut report = GcReport::default();
        if let Some(before) = named_before {
            report.removed_refs = self.update_refs(|refs| {
                let names: Vec<String> = refs
                    .iter()
                    .filter(|(name, entry)| before.get(*name) == Some(*entry))
                    .map(|(name, _)| name.clone())
                    .collect();
                for name in &names {
                    refs.remove(name);
                }
                Ok(names)
            })?;
            for (path, size) in self.cache_files()? {
                fsutil::remove_any(&path)?;
                report.removed_cache_records += 1;
                report.removed_cache_bytes += size;
            }
            // RUN --mount=type=cache directories go with the build cache.
            let mounts = self.root.join("cache-mounts");
            if mounts.exists() {
                report.removed_cache_bytes += fsutil::tree_size(&mounts).unwrap_or(0);
                fsutil::remove_any(&mounts)?;
            }
        }
        let tmp = self.tmp_dir();
        for name in fsutil::dir_names(&tmp)? {
            let path = tmp.join(name);
            report.removed_temp_bytes += fsutil::tree_size(&path).unwrap_or(0);
            fsutil::remove_any(&path)?;
            report.removed_temp_files += 1;
        }
        let walk = self.mark(&self.read_refs()?, !options.all, true)?;
        for (digest, size) in self.list_blob_files()? {
            let Ok(digest) = digest else { continue };
            if !walk.blobs.contains_key(&digest) {
                fsutil::remove_any(&self.blob_path(&digest))?;
                report.removed_blobs += 1;
                report.removed_blob_bytes += size;
            }
        }
        if report.removed_blobs > 0 {
            fsutil::fsync_dir(&self.blobs_dir())?;
        }
        let indexes = self.indexes_dir();
        if indexes.is_dir() {
            for name in fsutil::dir_names(&indexes)? {
                let kept = name
                    .to_str()
                    .and_then(|n| format!("sha256:{n}").parse::<Digest>().ok())
                    .is_some_and(|d| walk.blobs.contains_key(&d));
                if !kept {
                    let path = indexes.join(name);
                    report.removed_cache_bytes += fsutil::tree_size(&path).unwrap_or(0);
                    fsutil::remove_any(&path)?;
                    report.removed_cache_records += 1;
                }
            }
        }
        for kind in [SnapshotKind::Full, SnapshotKind::Diff] {
            for id in self.list_of(kind)? {
                if !walk.chains.contains(&id)
                    && let Some(size) = self.remove_snapshot_locked(kind, &id)?
                {
                    report.removed_snapshots += 1;
                    report.removed_snapshot_bytes += size;
                }
            }
        }
        Ok(report)
    }

    /// What the store holds, per kind and per image, and what GC would free.
    pub fn disk_usage(&self) -> Result<DuReport> {
        let _lock = self.lock_store(LockMode::Shared)?;
        let mut du = DuReport::default();
        let blob_files: BTreeMap<Digest, u64> = self
            .list_blob_files()?
            .into_iter()
            .filter_map(|(d, size)| Some((d.ok()?, size)))
            .collect();
        blob_files.values().for_each(|&size| du.blobs.add(size));
        let mut snapshots = BTreeMap::new();
        for (kind, dir) in [
            (SnapshotKind::Full, self.snapshots_dir()),
            (SnapshotKind::Diff, self.diffs_dir()),
        ] {
            for id in self.list_of(kind)? {
                let size = fsutil::tree_size(&dir.join(id.hex()))?;
                du.snapshots.add(size);
                *snapshots.entry(id).or_insert(0) += size;
            }
        }
        for (_, size) in self.cache_files()? {
            du.cache.add(size);
        }
        let indexes = self.indexes_dir();
        if indexes.exists() {
            for name in fsutil::dir_names(&indexes)? {
                du.indexes
                    .add(fsutil::tree_size(&indexes.join(name)).unwrap_or(0));
            }
        }
        let mounts = self.root.join("cache-mounts");
        if mounts.exists() {
            for name in fsutil::dir_names(&mounts)? {
                let path = mounts.join(&name);
                if path.is_dir() {
                    du.cache_mounts.add(fsutil::tree_size(&path).unwrap_or(0));
                }
            }
        }
        let tmp = self.tmp_dir();
        for name in fsutil::dir_names(&tmp)? {
            du.temp.add(fsutil::tree_size(&tmp.join(name)).unwrap_or(0));
        }

        let refs = self.read_refs()?;
        let mut per_image = Vec::new();
        let mut users: BTreeMap<Digest, u32> = BTreeMap::new();
        for (name, entry) in &refs {
            let mut walk = Walk::default();
            walk.visit(self, &entry.digest, Role::Image, true)?;
            for d in walk.blobs.keys() {
                *users.entry(d.clone()).or_default() += 1;
            }
            per_image.push((name, entry, walk.blobs));
        }
        for (name, entry, blobs) in per_image {
            let size: u64 = blobs.values().sum();
            let unique_size = blobs
                .iter()
                .filter(|(d, _)| users.get(*d) == Some(&1))
                .map(|(_, s)| s)
                .sum();
            du.images.push(ImageUsage {
                name: name.clone(),
                digest: entry.digest.clone(),
                size,
                shared_size: size - unique_size,
                unique_size,
            });
        }

        let kept = self.mark(&refs, true, false)?;
        let dead_blobs: u64 = blob_files
            .iter()
            .filter(|(d, _)| !kept.blobs.contains_key(*d))
            .map(|(_, s)| s)
            .sum();
        let dead_snapshots: u64 = snapshots
            .iter()
            .filter(|(id, _)| !kept.chains.contains(*id))
            .map(|(_, s)| s)
            .sum();
        du.reclaimable = dead_blobs + dead_snapshots + du.temp.bytes;
        Ok(du)
    }
}
