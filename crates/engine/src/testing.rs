//! Small real images for tests of this crate and of the `hoist` binary:
//! built with the image model and written into a real store.

use std::io::Write;

use crate::digest::Digest;
use crate::image::{Descriptor, Manifest, Raw, media_types};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum TestImageError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Image(#[from] crate::image::ImageError),
    #[error("building the test layer: {0}")]
    Io(#[from] std::io::Error),
}

/// A one-layer gzip image holding `/hello.txt` (`hello from hoist\n`),
/// stored and tagged `name` (a full reference such as
/// `docker.io/library/hello:1`).
pub fn small_image(store: &Store, name: &str) -> Result<Raw<Manifest>, TestImageError> {
    let mut tar = tar::Builder::new(Vec::new());
    let body = b"hello from hoist\n";
    let mut h = tar::Header::new_ustar();
    h.set_size(body.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut h, "hello.txt", &body[..])?;
    let layer_tar = tar.into_inner()?;
    let diff_id = Digest::of(&layer_tar);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&layer_tar)?;
    let layer = gz.finish()?;
    let layer_info = store.put_blob_bytes(&layer)?;
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/hello.txt"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]},
        "history": [{"created_by": "COPY hello.txt /"}]
    });
    let config = serde_json::to_vec(&config).map_err(std::io::Error::other)?;
    let config_info = store.put_blob_bytes(&config)?;
    let manifest = Manifest::new(
        media_types::OCI_MANIFEST,
        Descriptor::new(
            media_types::OCI_CONFIG,
            config_info.digest,
            config_info.size,
        ),
        vec![Descriptor::new(
            media_types::OCI_LAYER_GZIP,
            layer_info.digest,
            layer_info.size,
        )],
    );
    let raw = Raw::from_value(manifest)?;
    store.put_blob_bytes(raw.bytes())?;
    store.set_ref(name, raw.digest(), Some(media_types::OCI_MANIFEST))?;
    Ok(raw)
}
