//! `--cache-to`: the build's step records, and the layers they name, as a
//! cache manifest in a registry (`type=registry`) or an OCI layout
//! directory (`type=local`). Layers go compressed as the spec asks (gzip
//! by default, as buildx); a layer already compressed that way for an
//! image push is the same blob, so the registry has it and it is skipped,
//! and a layer only known from an imported cache is mounted from there.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::CacheError;
use super::format::{self, CacheConfig, MountRecord, StepRecord};
use super::spec::{CacheSpec, Location, Mode};
use crate::digest::Digest;
use crate::export::recompress::RecompressError;
use crate::export::recompress::recompress_layers;
use crate::image::ImageError;
use crate::image::{Descriptor, Index, Manifest, Raw, media_types};
use crate::layer::LayerError;
use crate::layer::{Compression, LayerOptions};
use crate::reference::Reference;
use crate::reference::ReferenceError;
use crate::registry::RegistryError;
use crate::registry::{BlobRef, Client, Progress};
use crate::store::{Store, StoreError};
use crate::transfer::TransferError;

/// Why a cache could not be exported (after `exporting cache NAME: `).
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The store could not be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A manifest or index could not be encoded.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The cache config could not be encoded.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// Layers could not be compressed as asked.
    #[error(transparent)]
    Recompress(#[from] RecompressError),
    /// A cache-mount directory could not be written as a layer.
    #[error("{}: {source}", dir.display())]
    Mount {
        dir: PathBuf,
        #[source]
        source: LayerError,
    },
    /// `ref=` is no image reference.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// A blob could not be pushed.
    #[error(transparent)]
    Transfer(#[from] TransferError),
    /// The manifest could not be pushed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A layout file could not be written.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A blob the cache lists that neither the store nor a fetcher has.
    #[error("blob {0} is not in the store")]
    Missing(Digest),
    /// `type=inline` as a destination of its own.
    #[error("an inline cache is written into the image config by the build")]
    InlineTarget,
}

/// The error for the layout file at `path`.
fn io_at(path: &Path) -> impl FnOnce(std::io::Error) -> ExportError + '_ {
    move |source| ExportError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A step of the build, as an export sees it.
#[derive(Debug, Clone)]
pub struct ExportStep {
    pub key: String,
    /// The layer as the image lists it, and its diff_id.
    pub layer: Option<(Descriptor, Digest)>,
    /// A blob of an imported cache that carries the layer (the layer may
    /// not be in the store).
    pub blob: Option<Descriptor>,
    pub created: Option<String>,
    /// In the target stage (a `mode=min` export carries only these).
    pub in_target: bool,
}

/// What a build leaves for `--cache-to`.
#[derive(Debug, Clone, Default)]
pub struct BuildCache {
    /// Every step with a cache record, in build order.
    pub steps: Vec<ExportStep>,
    /// `COPY --from` source hashes: record key and digest.
    pub sources: Vec<(String, Digest)>,
    /// The `RUN --mount=type=cache` directories used: the store's name for
    /// each and its path.
    pub mounts: Vec<(String, PathBuf)>,
}

/// What an export wrote.
#[derive(Debug, Clone, Default)]
pub struct ExportReport {
    pub steps: usize,
    pub layers: usize,
    pub mounts: usize,
    /// The cache manifest's digest.
    pub digest: Option<Digest>,
}

/// The manifest, its config and the blobs it names.
struct Built {
    manifest: Raw<Manifest>,
    config: Vec<u8>,
    steps: usize,
    mounts: usize,
}

/// Write the cache `spec` names.
pub fn export(
    store: &Store,
    client: &Client,
    spec: &CacheSpec,
    cache: &BuildCache,
    runtime: &crate::runtime::Handle,
) -> Result<ExportReport, CacheError> {
    let fail = |source: ExportError| CacheError::Export {
        cache: spec.describe(),
        source: Box::new(source),
    };
    let _lease = store.lease().map_err(|e| fail(e.into()))?;
    let built = build(store, spec, cache).map_err(fail)?;
    let report = ExportReport {
        steps: built.steps,
        layers: built.manifest.value().layers.len() - built.mounts,
        mounts: built.mounts,
        digest: Some(built.manifest.digest().clone()),
    };
    match &spec.location {
        Location::Registry(r) => {
            let reference = Reference::parse(r).map_err(|e| fail(e.into()))?;
            crate::runtime::block_on(runtime, to_registry(client, store, &reference, &built))
                .map_err(fail)?;
        }
        Location::Local(dir) => to_layout(store, dir, &built).map_err(fail)?,
        Location::Inline => {
            return Err(fail(ExportError::InlineTarget));
        }
    }
    Ok(report)
}

/// The records `mode` selects, deduplicated by key (first wins).
pub fn select(steps: &[ExportStep], mode: Mode) -> Vec<&ExportStep> {
    let mut seen = std::collections::HashSet::new();
    steps
        .iter()
        .filter(|s| mode == Mode::Max || s.in_target)
        .filter(|s| seen.insert(s.key.clone()))
        .collect()
}

/// The records of an inline cache: `blob` indexes the image's layers.
pub fn inline_config(steps: &[ExportStep], image_layers: &[Descriptor]) -> CacheConfig {
    let records = select(steps, Mode::Min)
        .into_iter()
        .filter_map(|s| {
            let blob = match &s.layer {
                Some((desc, _)) => Some(image_layers.iter().position(|l| l.digest == desc.digest)?),
                None => None,
            };
            Some(StepRecord {
                key: s.key.clone(),
                blob,
                layer: s.layer.as_ref().map(|(d, _)| d.clone()),
                diff_id: s.layer.as_ref().map(|(_, d)| d.clone()),
                created: s.created.clone(),
            })
        })
        .collect();
    CacheConfig {
        version: format::VERSION,
        steps: records,
        sources: Vec::new(),
        mounts: Vec::new(),
    }
}

fn build(store: &Store, spec: &CacheSpec, cache: &BuildCache) -> Result<Built, ExportError> {
    let chosen = select(&cache.steps, spec.mode);
    // The blob of each layer in the wanted compression: an imported blob
    // already so compressed is used as it is (it need not be here).
    let mut blobs: Vec<Descriptor> = Vec::new();
    let mut blob_of: BTreeMap<Digest, usize> = BTreeMap::new();
    let mut to_convert: Vec<Descriptor> = Vec::new();
    for s in &chosen {
        let Some((layer, _)) = &s.layer else { continue };
        if blob_of.contains_key(&layer.digest) {
            continue;
        }
        let ready = s
            .blob
            .clone()
            .filter(|b| Compression::of_layer(&b.media_type) == Some(spec.compression));
        match ready {
            Some(b) => {
                blob_of.insert(layer.digest.clone(), blobs.len());
                blobs.push(b);
            }
            None => {
                blob_of.insert(layer.digest.clone(), usize::MAX);
                to_convert.push(layer.clone());
            }
        }
    }
    if !to_convert.is_empty() {
        // The exporters' recompression (and its memo) on a manifest of
        // just these layers.
        let placeholder = Descriptor::new(media_types::OCI_CONFIG, Digest::of(b"{}"), 2);
        let m = Raw::from_value(Manifest::new(
            media_types::OCI_MANIFEST,
            placeholder,
            to_convert.clone(),
        ))?;
        let converted = recompress_layers(store, &m, spec.compression, None, false)?;
        for (layer, blob) in to_convert.iter().zip(&converted.value().layers) {
            blob_of.insert(layer.digest.clone(), blobs.len());
            blobs.push(blob.clone());
        }
    }
    let records: Vec<StepRecord> = chosen
        .iter()
        .map(|s| StepRecord {
            key: s.key.clone(),
            blob: s
                .layer
                .as_ref()
                .and_then(|(l, _)| blob_of.get(&l.digest).copied()),
            layer: s.layer.as_ref().map(|(l, _)| l.clone()),
            diff_id: s.layer.as_ref().map(|(_, d)| d.clone()),
            created: s.created.clone(),
        })
        .collect();
    let mut mount_records = Vec::new();
    if spec.cache_mounts {
        for (name, dir) in &cache.mounts {
            let blob = mount_blob(store, dir)?;
            mount_records.push(MountRecord {
                dir: name.clone(),
                blob: blobs.len(),
            });
            blobs.push(blob);
        }
    }
    let config = CacheConfig {
        version: format::VERSION,
        steps: records,
        sources: cache
            .sources
            .iter()
            .map(|(key, digest)| super::format::SourceRecord {
                key: key.clone(),
                digest: digest.clone(),
            })
            .collect(),
        mounts: mount_records,
    };
    let config_bytes = serde_json::to_vec(&config)?;
    let config_info = store.put_blob_bytes(&config_bytes)?;
    let mut manifest = Manifest::new(
        media_types::OCI_MANIFEST,
        Descriptor::new(
            format::CONFIG_MEDIA_TYPE,
            config_info.digest,
            config_info.size,
        ),
        blobs,
    );
    manifest.artifact_type = Some(format::ARTIFACT_TYPE.to_string());
    let manifest = Raw::from_value(manifest)?;
    store.put_blob_bytes(manifest.bytes())?;
    Ok(Built {
        manifest,
        config: config_bytes,
        steps: config.steps.len(),
        mounts: config.mounts.len(),
    })
}

/// A cache-mount directory as a gzip tar blob in the store.
fn mount_blob(store: &Store, dir: &Path) -> Result<Descriptor, ExportError> {
    let opts = LayerOptions {
        compression: Compression::Gzip,
        ..LayerOptions::default()
    };
    let mut writer = store.blob_writer()?;
    let written =
        crate::layer::write_tree(dir, &opts, &mut writer).map_err(|source| ExportError::Mount {
            dir: dir.to_path_buf(),
            source,
        })?;
    let info = writer.commit(Some(&written.digest), Some(written.size))?;
    Ok(Descriptor::new(
        format::MOUNT_MEDIA_TYPE,
        info.digest,
        info.size,
    ))
}

async fn to_registry(
    client: &Client,
    store: &Store,
    reference: &Reference,
    built: &Built,
) -> Result<(), ExportError> {
    let repo = reference.repository();
    for blob in &built.manifest.value().layers {
        crate::transfer::push::push_store_blob(
            client,
            store,
            repo,
            &BlobRef::new(blob.digest.clone(), blob.size),
            None,
            &Progress::none(),
        )
        .await?;
    }
    let config = &built.manifest.value().config;
    crate::transfer::push::push_store_blob(
        client,
        store,
        repo,
        &BlobRef::new(config.digest.clone(), config.size),
        None,
        &Progress::none(),
    )
    .await?;
    let _ = &built.config;
    client
        .put_manifest(reference, media_types::OCI_MANIFEST, built.manifest.bytes())
        .await?;
    Ok(())
}

/// An OCI layout at `dir`: the blobs (copied from the store), then
/// `index.json` naming the cache manifest, replaced atomically.
fn to_layout(store: &Store, dir: &Path, built: &Built) -> Result<(), ExportError> {
    let blobs_dir = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs_dir).map_err(io_at(&blobs_dir))?;
    let m = built.manifest.value();
    let mut all: Vec<&Digest> = m.layers.iter().map(|d| &d.digest).collect();
    all.push(&m.config.digest);
    all.push(built.manifest.digest());
    for digest in all {
        let dest = blobs_dir.join(digest.hex());
        if dest.exists() {
            continue;
        }
        if !store.ensure_blob(digest)? {
            return Err(ExportError::Missing(digest.clone()));
        }
        let tmp = blobs_dir.join(format!(".{}.tmp", digest.hex()));
        std::fs::copy(store.blob_path(digest), &tmp)
            .and_then(|_| std::fs::rename(&tmp, &dest))
            .map_err(io_at(&dest))?;
    }
    write_file(
        &dir.join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )?;
    let mut desc = built.manifest.descriptor(media_types::OCI_MANIFEST);
    desc.artifact_type = Some(format::ARTIFACT_TYPE.to_string());
    let index = Raw::from_value(Index::new(media_types::OCI_INDEX, vec![desc]))?;
    write_file(&dir.join("index.json"), index.bytes())
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ExportError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(io_at(path))
}
