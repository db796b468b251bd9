//! Materialised filesystems: the layers of an image state unpacked into a
//! store snapshot keyed by their ChainID, shared by every build that needs
//! the same chain. A build asks for one only when a step must look at the
//! parent's files (where a `COPY` lands, `/etc/passwd` for `--chown`,
//! `COPY --from` sources).
//!
//! A `RUN` step needs no whole tree: [`lower_stack`] gives the overlay lower
//! directories for a state, top first: the diffs earlier `RUN` steps left
//! (their overlay upper dirs, kept as they are), down to the first chain
//! with a whole snapshot (made on demand).

use std::path::PathBuf;

use super::state::Layer;
use crate::digest::Digest;
use crate::layer::{UnpackOptions, unpack};
use crate::store::{SnapshotKind, Store, chain_ids};

/// Overlay takes at most 500 lower directories; past this many diffs a
/// whole snapshot is made instead.
const MAX_STACK: usize = 128;

/// The overlay lower directories holding the filesystem of `layers`, top
/// first; empty for no layers (scratch).
pub fn lower_stack(store: &Store, layers: &[Layer]) -> Result<Vec<PathBuf>, super::BuildError> {
    let diff_ids: Vec<_> = layers.iter().map(|l| l.diff_id.clone()).collect();
    let chains = chain_ids(&diff_ids);
    let mut stack = Vec::new();
    for (i, chain) in chains.iter().enumerate().rev() {
        if let Some(full) = current(store, SnapshotKind::Full, chain)? {
            stack.push(full);
            return Ok(stack);
        }
        if stack.len() < MAX_STACK
            && let Some(diff) = current(store, SnapshotKind::Diff, chain)?
        {
            stack.push(diff);
            continue;
        }
        if let Some(full) = materialize(store, &layers[..=i])? {
            stack.push(full);
        }
        return Ok(stack);
    }
    Ok(stack)
}

/// Record that the tree of `chain` of `kind` was made in this boot.
pub fn mark_current(
    store: &Store,
    kind: SnapshotKind,
    chain: &Digest,
) -> Result<(), super::BuildError> {
    store.put_cache_record(&marker(kind, chain), boot_id().as_bytes())?;
    Ok(())
}

/// A committed tree made since the last boot (an older one is removed:
/// trees are not flushed to disk, so a power cut may have torn it).
fn current(
    store: &Store,
    kind: SnapshotKind,
    chain: &Digest,
) -> Result<Option<PathBuf>, super::BuildError> {
    let Some(path) = store.snapshot_of(kind, chain)? else {
        return Ok(None);
    };
    if store.get_cache_record(&marker(kind, chain))?.as_deref() == Some(boot_id().as_bytes()) {
        return Ok(Some(path));
    }
    store.remove_of(kind, chain)?;
    Ok(None)
}

fn marker(kind: SnapshotKind, chain: &Digest) -> String {
    match kind {
        SnapshotKind::Full => format!("snapshot-boot:{chain}"),
        SnapshotKind::Diff => format!("diff-boot:{chain}"),
    }
}

/// The directory holding the filesystem of `layers`, unpacked on first
/// use; `None` for no layers (scratch).
pub fn materialize(store: &Store, layers: &[Layer]) -> Result<Option<PathBuf>, super::BuildError> {
    let diff_ids: Vec<_> = layers.iter().map(|l| l.diff_id.clone()).collect();
    let Some(chain) = chain_ids(&diff_ids).pop() else {
        return Ok(None);
    };
    // Snapshots are not flushed to disk when made; one made before the
    // last reboot may have lost data in a power cut, so it is made again.
    if let Some(path) = current(store, SnapshotKind::Full, &chain)? {
        return Ok(Some(path));
    }
    let reservation = store.reserve_snapshot()?;
    for layer in layers {
        let mut opts = UnpackOptions::new(layer.descriptor.digest.clone());
        opts.size = Some(layer.descriptor.size);
        opts.diff_id = Some(layer.diff_id.clone());
        let blob =
            std::io::BufReader::with_capacity(1 << 20, store.open_blob(&layer.descriptor.digest)?);
        unpack(blob, reservation.path(), &opts)?;
    }
    let path = reservation.commit(&chain)?;
    mark_current(store, SnapshotKind::Full, &chain)?;
    Ok(Some(path))
}

/// This boot's id (changes at every reboot); empty where the kernel has none.
fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}
