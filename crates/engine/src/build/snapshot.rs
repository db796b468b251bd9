//! Materialised filesystems: the layers of an image state unpacked into a
//! store snapshot keyed by their ChainID, shared by every build that needs
//! the same chain. A build asks for one only when a step must look at the
//! parent's files (where a `COPY` lands, `/etc/passwd` for `--chown`,
//! `COPY --from` sources).

use std::path::PathBuf;

use super::state::Layer;
use crate::layer::{UnpackOptions, unpack};
use crate::store::{Store, chain_ids};

/// The directory holding the filesystem of `layers`, unpacked on first
/// use; `None` for no layers (scratch).
pub fn materialize(store: &Store, layers: &[Layer]) -> Result<Option<PathBuf>, super::BuildError> {
    let diff_ids: Vec<_> = layers.iter().map(|l| l.diff_id.clone()).collect();
    let Some(chain) = chain_ids(&diff_ids).pop() else {
        return Ok(None);
    };
    // Snapshots are not flushed to disk when made; one made before the
    // last reboot may have lost data in a power cut, so it is made again.
    let marker = format!("snapshot-boot:{chain}");
    let boot = boot_id();
    if let Some(path) = store.snapshot(&chain)? {
        if store.get_cache_record(&marker)?.as_deref() == Some(boot.as_bytes()) {
            return Ok(Some(path));
        }
        store.remove_snapshot(&chain)?;
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
    store.put_cache_record(&marker, boot.as_bytes())?;
    Ok(Some(path))
}

/// This boot's id (changes at every reboot); empty where the kernel has none.
fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}
