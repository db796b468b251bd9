//! `--cache-from`: read a cache's records (its manifest and config: a few
//! kilobytes) and offer its layers to the store, fetched only when read.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::CacheError;
use super::fetch::{CacheFetcher, Origin};
use super::format::{self, CacheConfig, StepRecord};
use super::spec::{CacheSpec, Location};
use crate::digest::Digest;
use crate::image::ImageError;
use crate::image::{AnyManifest, Descriptor, Manifest, Platform, Raw};
use crate::reference::Reference;
use crate::reference::ReferenceError;
use crate::registry::RegistryError;
use crate::registry::{BlobRef, Client, Progress};
use crate::store::Store;

/// Why a cache could not be imported (after `importing cache NAME: `).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// `ref=` is no image reference.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// The registry refused or failed.
    #[error(transparent)]
    Registry(#[from] RegistryError),
    /// A manifest, index or platform choice that does not parse or match.
    #[error(transparent)]
    Image(#[from] ImageError),
    /// The cache config is not one this hoist reads.
    #[error(transparent)]
    Format(#[from] format::FormatError),
    /// An index whose platform's entry is an index again.
    #[error("nested index")]
    NestedIndex,
    /// A config larger than a document may be.
    #[error("config of {0} bytes is too large")]
    ConfigTooLarge(u64),
    /// An image config that is no JSON.
    #[error("image config: {0}")]
    ImageConfig(#[source] serde_json::Error),
    /// An image config without the inline cache.
    #[error("neither a hoist cache nor an image with an inline cache")]
    NotACache,
    /// `type=inline` as a source.
    #[error("an inline cache is read with type=registry,ref=IMAGE")]
    InlineSource,
    /// A layout file that cannot be read (or parsed).
    #[error("{}: {source}", path.display())]
    Layout {
        path: PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A layout blob larger than a document may be.
    #[error("{}: too large", .0.display())]
    LayoutTooLarge(PathBuf),
    /// A layout blob whose bytes are not its digest's.
    #[error("{}: content does not match its digest", .0.display())]
    LayoutDigest(PathBuf),
    /// A layout index without a manifest.
    #[error("{} lists no manifest", .0.display())]
    NoManifest(PathBuf),
}

/// The error for the layout file at `path`.
fn layout(path: &Path) -> impl FnOnce(std::io::Error) -> ImportError + '_ {
    move |e| ImportError::Layout {
        path: path.to_path_buf(),
        source: Box::new(e),
    }
}

/// Configs and manifests larger than this are refused.
const MAX_DOCUMENT: u64 = 16 << 20;

/// A cache read for one build.
#[derive(Debug)]
pub struct ImportedCache {
    /// What the progress output calls it (`registry r:5000/app:cache`).
    pub name: String,
    steps: HashMap<String, StepRecord>,
    sources: HashMap<String, Digest>,
    /// The manifest's blobs, as the records index them.
    blobs: Vec<Descriptor>,
    pub mounts: Vec<(String, Descriptor)>,
    pub fetcher: Arc<CacheFetcher>,
}

/// A step the imported cache answers.
#[derive(Debug, Clone)]
pub struct ImportedStep {
    /// The layer as the image lists it, and its diff_id (`None`: the step
    /// made no layer).
    pub layer: Option<(Descriptor, Digest)>,
    /// The blob in the cache that carries the layer.
    pub blob: Option<Descriptor>,
    pub created: Option<String>,
}

impl ImportedCache {
    /// The record of the step with cache key `key`.
    pub fn step(&self, key: &str) -> Option<ImportedStep> {
        let record = self.steps.get(key)?;
        let blob = record.blob.and_then(|i| self.blobs.get(i)).cloned();
        let layer = match (&record.layer, &record.diff_id, &blob) {
            (Some(l), Some(d), Some(_)) => Some((l.clone(), d.clone())),
            (None, None, None) => None,
            // A record naming a layer without its blob cannot be used.
            _ => return None,
        };
        Some(ImportedStep {
            layer,
            blob,
            created: record.created.clone(),
        })
    }

    /// What a `COPY --from` source hashes to (see [`SourceRecord`](super::format::SourceRecord)).
    pub fn source(&self, key: &str) -> Option<Digest> {
        self.sources.get(key).cloned()
    }

    pub fn len(&self) -> usize {
        self.steps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

/// Read the cache `spec` names and register its fetcher with `store`.
pub fn import(
    store: &Store,
    client: &Client,
    spec: &CacheSpec,
    platform: &Platform,
    runtime: &crate::runtime::Handle,
) -> Result<ImportedCache, CacheError> {
    let name = spec.describe();
    let (config, blobs, origin) = match &spec.location {
        Location::Registry(r) => {
            let reference = Reference::parse(r).map_err(|e| CacheError::Import {
                cache: name.clone(),
                source: Box::new(e.into()),
            })?;
            let (config, blobs) =
                crate::runtime::block_on(runtime, from_registry(client, &reference, platform))
                    .map_err(|source| CacheError::Import {
                        cache: name.clone(),
                        source: Box::new(source),
                    })?;
            let origin = Origin::Registry {
                client: client.clone(),
                repo: reference.repository().clone(),
                runtime: runtime.clone(),
            };
            (config, blobs, origin)
        }
        Location::Local(dir) => {
            let (config, blobs) =
                from_layout(dir, platform).map_err(|source| CacheError::Import {
                    cache: name.clone(),
                    source: Box::new(source),
                })?;
            (config, blobs, Origin::Layout(dir.clone()))
        }
        Location::Inline => {
            return Err(CacheError::Import {
                cache: name,
                source: Box::new(ImportError::InlineSource),
            });
        }
    };
    let fetcher = Arc::new(CacheFetcher::new(origin));
    let mut steps = HashMap::new();
    for record in config.steps {
        if let Some(blob) = record.blob.and_then(|i| blobs.get(i)) {
            fetcher.offer(blob, record.layer.as_ref());
            remember_compressed(store, blob, record.layer.as_ref());
        }
        steps.insert(record.key.clone(), record);
    }
    let sources = config
        .sources
        .into_iter()
        .map(|s| (s.key, s.digest))
        .collect();
    let mut mounts = Vec::new();
    for m in config.mounts {
        if let Some(blob) = blobs.get(m.blob) {
            fetcher.offer(blob, None);
            mounts.push((m.dir, blob.clone()));
        }
    }
    store.add_fetcher(fetcher.clone());
    Ok(ImportedCache {
        name,
        steps,
        sources,
        blobs,
        mounts,
        fetcher,
    })
}

/// Tell the store's recompression memo that `blob` is `layer` compressed,
/// so pushing the layer sends (or mounts) the cache's blob as it is.
fn remember_compressed(store: &Store, blob: &Descriptor, layer: Option<&Descriptor>) {
    use crate::layer::Compression;
    let Some(layer) = layer.filter(|l| l.digest != blob.digest) else {
        return;
    };
    if let Some(to) = Compression::of_layer(&blob.media_type).filter(|c| *c != Compression::None) {
        let _ = crate::export::recompress::remember(
            store,
            to,
            None,
            &layer.digest,
            &blob.digest,
            blob.size,
        );
    }
}

/// The records of a cache manifest, or of an image carrying an inline
/// cache in its config.
fn records(
    manifest: &Manifest,
    config: &[u8],
) -> Result<(CacheConfig, Vec<Descriptor>), ImportError> {
    if manifest.config.media_type == format::CONFIG_MEDIA_TYPE {
        return Ok((CacheConfig::parse(config)?, manifest.layers.clone()));
    }
    let value: serde_json::Value =
        serde_json::from_slice(config).map_err(ImportError::ImageConfig)?;
    let inline = value
        .get(format::INLINE_KEY)
        .ok_or(ImportError::NotACache)?;
    // A JSON value parsed from bytes writes back out.
    let bytes = serde_json::to_vec(inline).map_err(ImportError::ImageConfig)?;
    Ok((CacheConfig::parse(&bytes)?, manifest.layers.clone()))
}

async fn from_registry(
    client: &Client,
    reference: &Reference,
    platform: &Platform,
) -> Result<(CacheConfig, Vec<Descriptor>), ImportError> {
    let repo = reference.repository();
    let top = client.get_manifest(reference).await?;
    let manifest = match AnyManifest::parse(top.bytes, Some(&top.media_type))? {
        AnyManifest::Manifest(m) => *m,
        AnyManifest::Index(index) => {
            let desc = index.value().select(platform)?;
            let child = client
                .get_manifest(&reference.with_digest(desc.digest.clone()))
                .await?;
            match AnyManifest::parse(child.bytes, Some(&desc.media_type))? {
                AnyManifest::Manifest(m) => *m,
                AnyManifest::Index(_) => return Err(ImportError::NestedIndex),
            }
        }
    };
    let m = manifest.value();
    if m.config.size > MAX_DOCUMENT {
        return Err(ImportError::ConfigTooLarge(m.config.size));
    }
    let config = client
        .get_blob(
            repo,
            &BlobRef::new(m.config.digest.clone(), m.config.size),
            Vec::new(),
            &Progress::none(),
        )
        .await?;
    records(m, &config)
}

/// A blob of an OCI layout directory, verified.
fn layout_blob(dir: &Path, digest: &Digest) -> Result<Vec<u8>, ImportError> {
    let path = dir.join("blobs/sha256").join(digest.hex());
    let meta = std::fs::metadata(&path).map_err(layout(&path))?;
    if meta.len() > MAX_DOCUMENT {
        return Err(ImportError::LayoutTooLarge(path));
    }
    let bytes = std::fs::read(&path).map_err(layout(&path))?;
    if Digest::of(&bytes) != *digest {
        return Err(ImportError::LayoutDigest(path));
    }
    Ok(bytes)
}

fn from_layout(
    dir: &Path,
    platform: &Platform,
) -> Result<(CacheConfig, Vec<Descriptor>), ImportError> {
    let index_path = dir.join("index.json");
    let bytes = std::fs::read(&index_path).map_err(layout(&index_path))?;
    let index: crate::image::Index =
        serde_json::from_slice(&bytes).map_err(|e| ImportError::Layout {
            path: index_path.clone(),
            source: Box::new(e),
        })?;
    let desc = index
        .manifests
        .iter()
        .find(|d| d.artifact_type.as_deref() == Some(format::ARTIFACT_TYPE))
        .or_else(|| index.manifest_for(platform))
        .or_else(|| index.manifests.first())
        .ok_or_else(|| ImportError::NoManifest(index_path.clone()))?;
    let manifest: Raw<Manifest> =
        Raw::parse_verified(layout_blob(dir, &desc.digest)?, &desc.digest)?;
    let config = layout_blob(dir, &manifest.value().config.digest)?;
    records(manifest.value(), &config)
}
