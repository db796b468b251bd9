//! The store's images as `docker images` shows them: an image's ID (its
//! config's digest, as Docker's IMAGE ID), its size (Docker's: the bytes
//! its layers put on disk, uncompressed), the images no name reaches
//! (`<none>` rows), and finding an image by a short ID.

use std::collections::BTreeMap;

use crate::digest::Digest;
use crate::executor::snapshot::layer_index;
use crate::executor::state::Layer;
use crate::image::{AnyManifest, ImageConfig, Manifest, Platform, Raw};
use crate::store::{Store, StoreError};

/// One image as `hoist images` lists it: a name (or none) on a stored
/// manifest or index.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Listed {
    /// The full store name; `None` for an image no name reaches.
    pub name: Option<String>,
    /// Docker's IMAGE ID: the config digest (of the platform picked from an
    /// index).
    pub id: Digest,
    /// The manifest or index the name points at.
    pub digest: Digest,
    pub media_type: String,
    /// The image config's `created`.
    pub created: Option<String>,
    /// The layers' uncompressed content, as `docker images` SIZE.
    pub size: u64,
}

/// Why an image could not be listed or found.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Image(#[from] crate::image::ImageError),
    #[error("no image {0:?} in the store")]
    NotFound(String),
    #[error("{given:?} is ambiguous: it could be any of {}", candidates.join(", "))]
    Ambiguous {
        given: String,
        candidates: Vec<String>,
    },
}

/// The single-platform manifest of a stored manifest or index (an index
/// picks `platform`, else its first stored image).
pub fn platform_manifest(
    store: &Store,
    digest: &Digest,
    media_type: Option<&str>,
    platform: &Platform,
) -> Result<Raw<Manifest>, InventoryError> {
    let bytes = store.read_blob_verified(digest)?;
    match AnyManifest::parse(bytes, media_type)? {
        AnyManifest::Manifest(m) => Ok(*m),
        AnyManifest::Index(index) => {
            let picked = index
                .value()
                .manifest_for(platform)
                .filter(|d| store.has_blob(&d.digest).unwrap_or(false))
                .or_else(|| {
                    index
                        .value()
                        .images()
                        .find(|d| store.has_blob(&d.digest).unwrap_or(false))
                });
            let desc = match picked {
                Some(d) => d,
                None => index.value().select(platform)?,
            };
            Ok(Raw::parse_verified(
                store.read_blob_verified(&desc.digest)?,
                &desc.digest,
            )?)
        }
    }
}

/// The config of `manifest`, parsed.
fn config_of(store: &Store, manifest: &Manifest) -> Result<Raw<ImageConfig>, InventoryError> {
    Ok(Raw::parse_for(
        store.read_blob_verified(&manifest.config.digest)?,
        &manifest.config,
    )?)
}

/// Docker's size of an image: the sum of its layers'
/// [`crate::layer::LayerIndex::content_size`] (each layer's path index is
/// read from the store, or made from its blob and kept). A layer whose
/// blob the store lacks (an image resolved from a cache) counts nothing.
pub fn content_size(store: &Store, manifest: &Manifest, config: &ImageConfig) -> u64 {
    manifest
        .layers
        .iter()
        .zip(&config.rootfs.diff_ids)
        .filter_map(|(d, id)| {
            layer_index(
                store,
                &Layer {
                    descriptor: d.clone(),
                    diff_id: id.clone(),
                },
            )
        })
        .map(|index| index.content_size())
        .sum()
}

/// The listing of one manifest or index; its size only when `sized` (it
/// may read every layer once to index it).
fn describe(
    store: &Store,
    name: Option<String>,
    digest: &Digest,
    media_type: &str,
    platform: &Platform,
    sized: bool,
) -> Result<Listed, InventoryError> {
    let manifest = platform_manifest(store, digest, Some(media_type), platform)?;
    let config = config_of(store, manifest.value())?;
    Ok(Listed {
        name,
        id: manifest.value().config.digest.clone(),
        digest: digest.clone(),
        media_type: media_type.to_string(),
        created: config.value().created.clone(),
        size: if sized {
            content_size(store, manifest.value(), config.value())
        } else {
            0
        },
    })
}

/// Every named image, one entry a name, sorted by name; with `unnamed`,
/// then one entry for each image ID that only manifests no name reaches
/// carry (Docker's dangling images). Sizes only when `sized` (else 0).
pub fn list(
    store: &Store,
    platform: &Platform,
    unnamed: bool,
    sized: bool,
) -> Result<Vec<Listed>, InventoryError> {
    let mut out = Vec::new();
    for record in store.list_images()? {
        out.push(describe(
            store,
            Some(record.name.clone()),
            &record.digest,
            &record.media_type,
            platform,
            sized,
        )?);
    }
    if unnamed {
        let mut dangling: BTreeMap<Digest, Listed> = BTreeMap::new();
        for (digest, _) in store.unnamed_images()? {
            let Ok(image) = describe(
                store,
                None,
                &digest,
                crate::image::media_types::OCI_MANIFEST,
                platform,
                false,
            ) else {
                continue;
            };
            if out.iter().any(|n| n.id == image.id) || dangling.contains_key(&image.id) {
                continue;
            }
            let image = if sized {
                describe(store, None, &digest, &image.media_type, platform, true)?
            } else {
                image
            };
            dangling.insert(image.id.clone(), image);
        }
        out.extend(dangling.into_values());
    }
    Ok(out)
}

/// The image (size not computed) `given` names when it is an image ID or
/// a manifest digest:
/// `sha256:<64 hex>`, 64 hex, or a prefix of either (with or without
/// `sha256:`), as Docker's commands take IDs. `Ok(None)` when `given`
/// does not look like one or no image matches; an error naming the
/// candidates when a prefix fits more than one image.
pub fn find_by_id(
    store: &Store,
    given: &str,
    platform: &Platform,
) -> Result<Option<Listed>, InventoryError> {
    let hex = given.strip_prefix("sha256:").unwrap_or(given);
    let looks_like_id = !hex.is_empty()
        && hex.len() <= 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !looks_like_id {
        return Ok(None);
    }
    // A manifest digest given whole need not be named (a build without -t).
    if let Ok(digest) = format!("sha256:{hex}").parse::<Digest>()
        && store.has_blob(&digest)?
        && let Ok(top) = AnyManifest::parse(store.read_blob_verified(&digest)?, None)
        && let Ok(image) = describe(store, None, &digest, top.media_type(), platform, false)
    {
        let named = list(store, platform, false, false)?
            .into_iter()
            .find(|n| n.digest == digest);
        return Ok(Some(named.unwrap_or(image)));
    }
    let mut by_id: BTreeMap<Digest, Vec<Listed>> = BTreeMap::new();
    for image in list(store, platform, true, false)? {
        if image.id.hex().starts_with(hex) || image.digest.hex().starts_with(hex) {
            by_id.entry(image.id.clone()).or_default().push(image);
        }
    }
    match by_id.len() {
        0 => Ok(None),
        1 => Ok(by_id
            .into_values()
            .next()
            .and_then(|v| v.into_iter().next())),
        _ => Err(InventoryError::Ambiguous {
            given: given.to_string(),
            candidates: by_id
                .values()
                .map(|images| {
                    let names: Vec<&str> = images
                        .iter()
                        .map(|i| i.name.as_deref().unwrap_or("<none>"))
                        .collect();
                    format!("{} ({})", &images[0].id.hex()[..12], names.join(", "))
                })
                .collect(),
        }),
    }
}
