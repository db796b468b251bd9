//! The image's filesystem, flattened: `type=local` (a directory) and
//! `type=tar` (one tar of that directory). Layers are applied bottom-up
//! with the contained unpacker (whiteouts honoured, every blob verified
//! against its digest and its diff_id); the tar is then written by the
//! layer writer, so it is sorted and deterministic.

use std::io::Write;
use std::path::Path;

use crate::image::{ImageConfig, Manifest, Raw};
use crate::layer::{
    Compression, LayerError, LayerOptions, UnpackOptions, UnpackWarning, unpack, write_tree,
};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum FilesystemError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Image(#[from] crate::image::ImageError),
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

type Result<T> = std::result::Result<T, FilesystemError>;

/// Unpack every layer of `manifest` into `dest` (created if missing).
/// Returns what the unpacker could not reproduce (devices when rootless,
/// ownership it may not set).
pub fn export_local(
    store: &Store,
    manifest: &Raw<Manifest>,
    dest: &Path,
) -> Result<Vec<UnpackWarning>> {
    let _lease = store.lease()?;
    fs_err::create_dir_all(dest).map_err(|source| FilesystemError::Io {
        path: dest.display().to_string(),
        source,
    })?;
    let config: Raw<ImageConfig> = Raw::parse_for(
        store.read_blob_verified(&manifest.value().config.digest)?,
        &manifest.value().config,
    )?;
    let diff_ids = &config.value().rootfs.diff_ids;
    let mut warnings = Vec::new();
    for (i, layer) in manifest.value().layers.iter().enumerate() {
        let mut opts = UnpackOptions::new(layer.digest.clone());
        opts.size = Some(layer.size);
        opts.diff_id = diff_ids.get(i).cloned();
        let report = unpack(
            std::io::BufReader::with_capacity(1 << 20, store.open_blob(&layer.digest)?),
            dest,
            &opts,
        )?;
        warnings.extend(report.warnings);
    }
    Ok(warnings)
}

/// Write the flattened filesystem as one uncompressed tar into `out`.
/// `source_date_epoch` clamps mtimes, as for layers.
pub fn export_tar<W: Write>(
    store: &Store,
    manifest: &Raw<Manifest>,
    source_date_epoch: Option<i64>,
    out: W,
) -> Result<Vec<UnpackWarning>> {
    let _lease = store.lease()?;
    let scratch = tempfile::Builder::new()
        .prefix("export-")
        .tempdir_in(store.root().join("tmp"))
        .map_err(|source| FilesystemError::Io {
            path: store.root().join("tmp").display().to_string(),
            source,
        })?;
    let rootfs = scratch.path().join("rootfs");
    let warnings = export_local(store, manifest, &rootfs)?;
    let opts = LayerOptions {
        compression: Compression::None,
        source_date_epoch,
        ..LayerOptions::default()
    };
    write_tree(&rootfs, &opts, out)?;
    Ok(warnings)
}
