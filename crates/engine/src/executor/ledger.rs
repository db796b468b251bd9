//! What a build notes of its steps as they go, for its result: how many
//! ran, hit the cache or came from an imported one; the steps with cache
//! records (`--cache-to`); the cache mounts and `COPY --from` source
//! hashes used. Written from solver threads; read once, at the end.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::cache::{BuildCache, ExportStep};
use crate::digest::Digest;

#[derive(Debug, Default)]
pub(super) struct Ledger {
    executed: AtomicUsize,
    cached: AtomicUsize,
    imported: AtomicUsize,
    /// Steps with cache records, in the order they finished.
    steps: Mutex<Vec<ExportStep>>,
    /// Keys answered by an imported cache, and by which.
    imported_keys: Mutex<HashMap<String, String>>,
    /// Cache-mount directories used (store name → path).
    mounts: Mutex<BTreeMap<String, PathBuf>>,
    /// `COPY --from` source hashes used (record key → digest).
    sources: Mutex<BTreeMap<String, Digest>>,
}

/// The counts a build reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Counts {
    pub(super) executed: usize,
    pub(super) cached: usize,
    pub(super) imported: usize,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Ledger {
    /// A step did its work.
    pub(super) fn ran(&self) {
        self.executed.fetch_add(1, Ordering::SeqCst);
    }

    /// A step hit the cache; the imported cache that answered, if one did.
    pub(super) fn hit(&self, key: &str) -> Option<String> {
        self.cached.fetch_add(1, Ordering::SeqCst);
        let from = lock(&self.imported_keys).get(key).cloned();
        if from.is_some() {
            self.imported.fetch_add(1, Ordering::SeqCst);
        }
        from
    }

    /// `key` was found in the imported cache `name`.
    pub(super) fn imported_from(&self, key: &str, name: &str) {
        lock(&self.imported_keys).insert(key.to_string(), name.to_string());
    }

    /// A step with a cache record (hit or made).
    pub(super) fn step(&self, step: ExportStep) {
        lock(&self.steps).push(step);
    }

    /// A cache mount used.
    pub(super) fn mount(&self, name: &str, dir: PathBuf) {
        lock(&self.mounts).insert(name.to_string(), dir);
    }

    /// A `COPY --from` source hash used.
    pub(super) fn source(&self, key: &str, digest: Digest) {
        lock(&self.sources).insert(key.to_string(), digest);
    }

    pub(super) fn counts(&self) -> Counts {
        Counts {
            executed: self.executed.load(Ordering::SeqCst),
            cached: self.cached.load(Ordering::SeqCst),
            imported: self.imported.load(Ordering::SeqCst),
        }
    }

    /// The steps noted so far, taken.
    pub(super) fn take_steps(&self) -> Vec<ExportStep> {
        std::mem::take(&mut *lock(&self.steps))
    }

    /// What `--cache-to` exports: `steps`, and the mounts and sources used.
    pub(super) fn cache(&self, steps: Vec<ExportStep>) -> BuildCache {
        BuildCache {
            steps,
            sources: std::mem::take(&mut *lock(&self.sources))
                .into_iter()
                .collect(),
            mounts: std::mem::take(&mut *lock(&self.mounts))
                .into_iter()
                .collect(),
        }
    }
}
