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
    if let Some(path) = store.snapshot(&chain)? {
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
    Ok(Some(reservation.commit(&chain)?))
}
