//! Materialised filesystems: the layers of an image state unpacked into a
//! store snapshot keyed by their ChainID, shared by every build that needs
//! the same chain. A build asks for one only when a step must look at the
//! parent's files (where a `COPY` lands, `/etc/passwd` for `--chown`,
//! `COPY --from` sources).
//!
//! A step that only needs to know where its files land (`COPY`, `ADD`,
//! `WORKDIR`) needs no tree at all: [`dest_view`] stacks the layers' path
//! indexes (`indexes/` in the store, recorded as a layer is written or
//! read once from a stored blob's headers), and materialises only when the
//! indexes cannot answer as the unpacker would.
//!
//! A `RUN` step needs no whole tree: [`lower_stack`] gives the overlay lower
//! directories for a state, top first: the diffs earlier `RUN` steps left
//! (their overlay upper dirs, kept as they are), down to the first chain
//! with a whole snapshot (made on demand).

use std::path::PathBuf;
use std::sync::Arc;

use super::state::Layer;
use crate::digest::Digest;
use crate::layer::{IndexStack, LayerIndex, UnpackOptions, index_blob, unpack};
use crate::ops::file::DestView;
use crate::store::{SnapshotKind, Store, chain_ids};

/// Overlay takes at most 500 lower directories; past this many diffs a
/// whole snapshot is made instead.
const MAX_STACK: usize = 128;

/// The overlay lower directories holding the filesystem of `layers`, top
/// first; empty for no layers (scratch). Above the highest whole snapshot
/// (made at pull time, or by an earlier build), each layer is a diff
/// directory: the upper dir a `RUN` left, or the layer alone unpacked in
/// overlayfs's format (a `COPY` layer, a pulled layer), so no layer is ever
/// unpacked twice. With no whole snapshot below, one is made.
pub fn lower_stack(store: &Store, layers: &[Layer]) -> Result<Vec<PathBuf>, super::BuildError> {
    let diff_ids: Vec<_> = layers.iter().map(|l| l.diff_id.clone()).collect();
    let chains = chain_ids(&diff_ids);
    let mut base = None;
    for (i, chain) in chains.iter().enumerate().rev() {
        if let Some(full) = current(store, SnapshotKind::Full, chain)? {
            base = Some((i, full));
            break;
        }
    }
    let mut stack = Vec::new();
    for (i, chain) in chains.iter().enumerate().rev() {
        if let Some((b, full)) = &base
            && *b == i
        {
            stack.push(full.clone());
            return Ok(stack);
        }
        if stack.len() < MAX_STACK {
            if let Some(diff) = current(store, SnapshotKind::Diff, chain)? {
                stack.push(diff);
                continue;
            }
            if base.is_some() {
                stack.push(unpack_diff(store, &layers[i], chain)?);
                continue;
            }
        }
        if let Some(full) = materialize(store, &layers[..=i])? {
            stack.push(full);
        }
        return Ok(stack);
    }
    Ok(stack)
}

/// One layer alone, unpacked in overlayfs's format as the diff of `chain`.
fn unpack_diff(store: &Store, layer: &Layer, chain: &Digest) -> Result<PathBuf, super::BuildError> {
    let reservation = store.reserve_snapshot()?;
    let mut opts = UnpackOptions::new(layer.descriptor.digest.clone());
    opts.size = Some(layer.descriptor.size);
    opts.diff_id = Some(layer.diff_id.clone());
    opts.overlay_format = true;
    let blob =
        std::io::BufReader::with_capacity(1 << 20, store.open_blob(&layer.descriptor.digest)?);
    unpack(blob, reservation.path(), &opts)?;
    let path = reservation.commit_diff(chain)?;
    mark_current(store, SnapshotKind::Diff, chain)?;
    Ok(path)
}

/// Read-only views of states' filesystems, mounted once per chain for the
/// whole build (an overlay of [`lower_stack`]: `RUN` diffs over a whole
/// snapshot), so `COPY --from` and `RUN --mount=from=` read a stage without
/// unpacking its layers again. Unmounted when the build ends.
#[derive(Debug, Default)]
pub struct Views {
    mounted: std::sync::Mutex<
        std::collections::HashMap<
            Digest,
            (PathBuf, crate::ops::run::ReadOnlyOverlay, tempfile::TempDir),
        >,
    >,
}

impl Views {
    /// True when `layers` can be viewed without unpacking anything: a
    /// whole snapshot in the chain with a diff directory for every layer
    /// above it (or a view already mounted).
    pub fn ready(&self, store: &Store, layers: &[Layer]) -> Result<bool, super::BuildError> {
        let diff_ids: Vec<_> = layers.iter().map(|l| l.diff_id.clone()).collect();
        let chains = chain_ids(&diff_ids);
        if let Some(top) = chains.last()
            && self
                .mounted
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains_key(top)
        {
            return Ok(true);
        }
        for (depth, chain) in chains.iter().rev().enumerate() {
            if current(store, SnapshotKind::Full, chain)?.is_some() {
                return Ok(true);
            }
            if depth >= MAX_STACK || current(store, SnapshotKind::Diff, chain)?.is_none() {
                return Ok(false);
            }
        }
        Ok(false)
    }

    /// The filesystem of `layers` as a directory (`None` for scratch).
    pub fn get(
        &self,
        store: &Store,
        layers: &[Layer],
    ) -> Result<Option<PathBuf>, super::BuildError> {
        let diff_ids: Vec<_> = layers.iter().map(|l| l.diff_id.clone()).collect();
        let Some(chain) = chain_ids(&diff_ids).pop() else {
            return Ok(None);
        };
        let mut mounted = self.mounted.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((path, _, _)) = mounted.get(&chain) {
            return Ok(Some(path.clone()));
        }
        let stack = lower_stack(store, layers)?;
        if stack.len() <= 1 {
            return Ok(stack.into_iter().next());
        }
        let tmp = store.root().join("tmp");
        let dir = tempfile::Builder::new()
            .prefix("view-")
            .tempdir_in(&tmp)
            .map_err(|e| super::BuildError::Internal(format!("{}: {e}", tmp.display())))?;
        match crate::ops::run::ReadOnlyOverlay::mount(&stack, dir.path()) {
            Ok(view) => {
                let path = dir.path().to_path_buf();
                mounted.insert(chain, (path.clone(), view, dir));
                Ok(Some(path))
            }
            // No mount here (no privilege): unpack, as before views.
            Err(_) => materialize(store, layers),
        }
    }
}

/// Unpack the image `digest` names (a manifest, or an index resolved for
/// `platform`) into its whole snapshot now, as `docker pull` and `podman
/// pull` do, so the first build on it does not wait for the unpack.
pub fn unpack_image(
    store: &Store,
    digest: &Digest,
    platform: &crate::image::Platform,
) -> Result<(), super::BuildError> {
    let resolver = super::base::BaseResolver {
        store,
        client: None,
        always_pull: false,
        lazy: false,
    };
    let _lease = store.lease()?;
    let state = resolver.stored(digest, None, platform, &digest.to_string())?;
    materialize(store, &state.layers)?;
    Ok(())
}

/// Record that the tree of `chain` of `kind` was made in this boot, with
/// the entries it has now (`hoist store check` compares them).
pub fn mark_current(
    store: &Store,
    kind: SnapshotKind,
    chain: &Digest,
) -> Result<(), super::BuildError> {
    store.mark_tree(kind, chain, &boot_id())?;
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
    if store
        .tree_marker(kind, chain)?
        .is_some_and(|m| m.boot_id == boot_id())
    {
        return Ok(Some(path));
    }
    store.remove_of(kind, chain)?;
    Ok(None)
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

/// The parent filesystem as a `COPY`/`ADD`/`WORKDIR` destination: the
/// layers' path indexes, or the materialised snapshot when an index cannot
/// be had (a blob the unpacker would refuse) or the stack cannot be
/// answered from indexes; `None` for no layers (scratch).
pub fn dest_view(
    store: &Store,
    views: &Views,
    layers: &[Layer],
) -> Result<Option<DestView>, super::BuildError> {
    if layers.is_empty() {
        return Ok(None);
    }
    // Trees already on disk (a whole snapshot with RUN diffs above it) are
    // read through an overlay view at once, with nothing to unpack or scan.
    if views.ready(store, layers)? {
        return Ok(views.get(store, layers)?.map(DestView::Dir));
    }
    // A whole snapshot already there (made at pull time, or by an earlier
    // step) answers at once; an index may need the blob read first.
    let diff_ids: Vec<_> = layers.iter().map(|l| l.diff_id.clone()).collect();
    if let Some(chain) = chain_ids(&diff_ids).pop()
        && let Some(full) = current(store, SnapshotKind::Full, &chain)?
    {
        return Ok(Some(DestView::Dir(full)));
    }
    let mut parts = Vec::with_capacity(layers.len());
    for layer in layers {
        let Some(index) = layer_index(store, layer) else {
            return Ok(materialize(store, layers)?.map(DestView::Dir));
        };
        parts.push((index, store.blob_path(&layer.descriptor.digest)));
    }
    match IndexStack::new(parts) {
        Some(stack) => Ok(Some(DestView::Index(Arc::new(stack)))),
        None => Ok(materialize(store, layers)?.map(DestView::Dir)),
    }
}

/// Keeps the path index of the layer blob `digest` (best effort: an index
/// is a cache, made again from the blob when it is missing).
pub fn keep_index(store: &Store, digest: &Digest, index: &LayerIndex) {
    let dir = store.indexes_dir();
    let written = std::fs::create_dir_all(&dir)
        .and_then(|()| tempfile::NamedTempFile::new_in(store.root().join("tmp")))
        .and_then(|mut tmp| {
            index.write_to(std::io::BufWriter::new(&mut tmp))?;
            tmp.persist(dir.join(digest.hex())).map_err(|e| e.error)?;
            Ok(())
        });
    if let Err(e) = written {
        tracing::debug!(%digest, error = %e, "layer index not kept");
    }
}

/// The index of `layer`'s blob: kept in the store, or read from the blob
/// (verified against its digest and diff_id) and kept. `None` when the
/// blob cannot be read as a layer (materialising then says why).
pub(crate) fn layer_index(store: &Store, layer: &Layer) -> Option<Arc<LayerIndex>> {
    let digest = &layer.descriptor.digest;
    let path = store.indexes_dir().join(digest.hex());
    if let Ok(bytes) = std::fs::read(&path)
        && let Ok(index) = LayerIndex::decode(&bytes)
    {
        return Some(Arc::new(index));
    }
    // A layer of an imported cache is fetched the first time it is read.
    if !store.ensure_blob(digest).ok()? {
        return None;
    }
    let blob = std::fs::File::open(store.blob_path(digest)).ok()?;
    let size = blob.metadata().ok()?.len();
    let reader = std::io::BufReader::with_capacity(1 << 20, blob);
    match index_blob(reader, digest, Some(size), Some(&layer.diff_id)) {
        Ok(index) => {
            keep_index(store, digest, &index);
            Some(Arc::new(index))
        }
        Err(e) => {
            tracing::debug!(%digest, error = %e, "layer not indexed");
            None
        }
    }
}

/// `USER` as ids for `WORKDIR`, from the view's `/etc/passwd` and
/// `/etc/group`, read through the view: symlinks are followed inside the
/// image root only, whichever kind of view it is.
pub fn resolve_user(user: &str, view: Option<&DestView>) -> Result<(u32, u32), super::BuildError> {
    let read = |file: &str| -> Result<Vec<u8>, super::BuildError> {
        let Some(view) = view else {
            return Ok(Vec::new());
        };
        view.read_file(file, hoist_userdb::MAX_FILE_BYTES)
            .map(Option::unwrap_or_default)
            .map_err(|e| super::BuildError::Internal(format!("user database {file}: {e}")))
    };
    hoist_userdb::UserDb::parse(&read("/etc/passwd")?, &read("/etc/group")?)
        .exec_user(user)
        .map_err(|e| super::BuildError::Internal(e.to_string()))
}
