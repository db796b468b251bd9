//! `compression=`, `compression-level=` and `force-compression=` of an
//! output: layers whose compression differs (or all, when forced) are
//! recompressed into new store blobs, and a new manifest names them. The
//! config is unchanged: diff_ids do not depend on compression.

use crate::image::{Descriptor, Manifest, Raw, media_types};
use crate::layer::{Compression, LayerError, recompress};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum RecompressError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Image(#[from] crate::image::ImageError),
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error(
        "layer {digest} has media type {media_type}, which is not a tar layer hoist can recompress"
    )]
    NotALayer {
        digest: crate::digest::Digest,
        media_type: String,
    },
}

/// The manifest with its layers in `to` (at `level`); the same manifest
/// when nothing needs to change. New blobs go into `store`.
pub fn recompress_layers(
    store: &Store,
    manifest: &Raw<Manifest>,
    to: Compression,
    level: Option<i32>,
    force: bool,
) -> Result<Raw<Manifest>, RecompressError> {
    let _lease = store.lease()?;
    let m = manifest.value();
    let docker = media_types::is_docker(m.media_type());
    let mut out = m.clone();
    let mut changed = false;
    for (i, layer) in m.layers.iter().enumerate() {
        let from = match Compression::of_layer(&layer.media_type) {
            Some(c) => c,
            None => {
                return Err(RecompressError::NotALayer {
                    digest: layer.digest.clone(),
                    media_type: layer.media_type.clone(),
                });
            }
        };
        if from == to && !force {
            continue;
        }
        let media_type = crate::layer::MediaTypes::from_docker(docker).layer(to);
        // The same blob recompressed the same way before: reuse it.
        let remembered = store
            .get_cache_record(&memo_key(to, level, &layer.digest))?
            .and_then(|b| serde_json::from_slice::<(crate::digest::Digest, u64)>(&b).ok())
            .filter(|(d, _)| store.has_blob(d).unwrap_or(false) || store.blob_origin(d).is_some());
        let (digest, size) = match remembered {
            Some(found) => found,
            None => {
                let writer = store.blob_writer()?;
                let (done, writer) =
                    recompress(store.open_blob(&layer.digest)?, from, to, level, writer)?;
                let info = writer.commit(Some(&done.digest), Some(done.size))?;
                remember(store, to, level, &layer.digest, &info.digest, info.size)?;
                (info.digest, info.size)
            }
        };
        out.layers[i] = Descriptor {
            media_type: media_type.to_string(),
            digest,
            size,
            ..layer.clone()
        };
        changed = true;
    }
    if !changed {
        return Ok(manifest.clone());
    }
    let raw = Raw::from_value(out)?;
    store.put_blob_bytes(raw.bytes())?;
    Ok(raw)
}

/// The cache record naming the blob that is `layer` compressed with `to`
/// at `level` (the default when `None`).
fn memo_key(to: Compression, level: Option<i32>, layer: &crate::digest::Digest) -> String {
    format!(
        "recompressed:{to:?}:{}:{layer}",
        level.unwrap_or(to.default_level())
    )
}

/// Remember that `blob` (of `size` bytes) is `layer` compressed with `to`
/// at `level`, so the next export (or push) uses it as it is.
pub(crate) fn remember(
    store: &Store,
    to: Compression,
    level: Option<i32>,
    layer: &crate::digest::Digest,
    blob: &crate::digest::Digest,
    size: u64,
) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(&(blob, size)).unwrap_or_default();
    store.put_cache_record(&memo_key(to, level, layer), &bytes)
}
