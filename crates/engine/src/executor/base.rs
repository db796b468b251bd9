//! Where a stage starts: `FROM scratch`, an image from the local store
//! (pulled when missing, or always with `--pull`), or an earlier stage.

use crate::executor::BuildError;
use crate::executor::image_config::scratch_config;
use crate::executor::key::KeyBuilder;
use crate::executor::state::{ImageState, Layer};
use crate::image::{AnyManifest, ImageConfig, Manifest, Platform, Raw};
use crate::reference::Reference;
use crate::registry::{Client, Progress};
use crate::store::Store;
use crate::transfer::{PullOptions, pull};

/// The state of `FROM scratch` for `platform`.
pub fn scratch(platform: &Platform) -> ImageState {
    let config = scratch_config(
        &platform.os,
        &platform.architecture,
        platform.variant.as_deref(),
    );
    let key = KeyBuilder::new("from-scratch")
        .str("platform", &platform.to_string())
        .finish();
    ImageState {
        layers: Vec::new(),
        config,
        key,
    }
}

/// How base images are found.
pub struct BaseResolver<'a> {
    pub store: &'a Store,
    /// The registry client and the runtime it pulls on (the CLI's);
    /// `None`: never pull (offline), a missing image is an error.
    pub client: Option<(&'a Client, &'a crate::runtime::Handle)>,
    /// `--pull`: always ask the registry, even when the store has the name.
    pub always_pull: bool,
    /// Resolve a missing image's manifest and config only; its layers are
    /// fetched when something reads them (a build importing a cache, whose
    /// steps may all hit).
    pub lazy: bool,
}

impl BaseResolver<'_> {
    /// The image `name` for `platform`: from the store, else pulled.
    pub fn image(&self, name: &str, platform: &Platform) -> Result<ImageState, BuildError> {
        let reference = Reference::parse(name).map_err(|e| BuildError::Base {
            name: name.to_string(),
            reason: e.to_string(),
        })?;
        let full = reference.to_string();
        let have = self.store.resolve(&full).ok();
        // A stored index whose image for this platform was never pulled
        // (the name was pulled for another platform) is pulled again.
        let lacks_platform = have
            .as_ref()
            .is_some_and(|r| self.lacks_platform(&r.digest, &r.media_type, platform));
        if have.is_none() || self.always_pull || lacks_platform {
            let Some((client, rt)) = self.client else {
                return Err(BuildError::Base {
                    name: name.to_string(),
                    reason: format!("{full} is not in the local store and pulling is disabled"),
                });
            };
            if self.lazy {
                return self.resolve_lazily(client, rt, &reference, platform, name);
            }
            let opts = PullOptions {
                platform: platform.clone(),
            };
            crate::runtime::block_on(
                rt,
                pull(client, self.store, &reference, &opts, &Progress::none()),
            )
            .map_err(|e| BuildError::Base {
                name: name.to_string(),
                reason: e.to_string(),
            })?;
        }
        let record = self.store.resolve(&full)?;
        self.stored(&record.digest, Some(&record.media_type), platform, name)
    }

    /// The image `reference` from its registry without its layers, which
    /// the store fetches on first read.
    fn resolve_lazily(
        &self,
        client: &Client,
        rt: &crate::runtime::Handle,
        reference: &Reference,
        platform: &Platform,
        name: &str,
    ) -> Result<ImageState, BuildError> {
        let base_error = |reason: String| BuildError::Base {
            name: name.to_string(),
            reason,
        };
        let (digest, media_type, layers) = crate::runtime::block_on(
            rt,
            crate::transfer::pull::resolve_manifest(client, self.store, reference, platform),
        )
        .map_err(|e| base_error(e.to_string()))?;
        let fetcher =
            crate::cache::fetch::CacheFetcher::new(crate::cache::fetch::Origin::Registry {
                client: client.clone(),
                repo: reference.repository().clone(),
                runtime: rt.clone(),
            });
        for layer in layers.iter().filter(|l| l.urls.is_empty()) {
            fetcher.offer(layer, None);
        }
        self.store.add_fetcher(std::sync::Arc::new(fetcher));
        self.stored(&digest, Some(&media_type), platform, name)
    }

    /// Whether the stored index `digest` lists an image for `platform`
    /// whose manifest the store does not hold.
    fn lacks_platform(
        &self,
        digest: &crate::digest::Digest,
        media_type: &str,
        platform: &Platform,
    ) -> bool {
        let Ok(bytes) = self.store.read_blob_verified(digest) else {
            return false;
        };
        match AnyManifest::parse(bytes, Some(media_type)) {
            Ok(AnyManifest::Index(index)) => index
                .value()
                .manifest_for(platform)
                .is_some_and(|d| !self.store.has_blob(&d.digest).unwrap_or(false)),
            _ => false,
        }
    }

    /// The image whose manifest (or index) `digest` is in the store.
    pub fn stored(
        &self,
        digest: &crate::digest::Digest,
        media_type: Option<&str>,
        platform: &Platform,
        name: &str,
    ) -> Result<ImageState, BuildError> {
        let bytes = self.store.read_blob_verified(digest)?;
        let manifest: Raw<Manifest> = match AnyManifest::parse(bytes, media_type)? {
            AnyManifest::Manifest(m) => *m,
            AnyManifest::Index(index) => {
                let desc = index
                    .value()
                    .select(platform)
                    .map_err(|e| BuildError::Base {
                        name: name.to_string(),
                        reason: e.to_string(),
                    })?;
                Raw::parse_verified(self.store.read_blob_verified(&desc.digest)?, &desc.digest)?
            }
        };
        let config: Raw<ImageConfig> = Raw::parse_for(
            self.store
                .read_blob_verified(&manifest.value().config.digest)?,
            &manifest.value().config,
        )?;
        let diff_ids = &config.value().rootfs.diff_ids;
        if diff_ids.len() != manifest.value().layers.len() {
            return Err(BuildError::Base {
                name: name.to_string(),
                reason: format!(
                    "its config lists {} diff_ids for {} layers",
                    diff_ids.len(),
                    manifest.value().layers.len()
                ),
            });
        }
        let layers = manifest
            .value()
            .layers
            .iter()
            .zip(diff_ids)
            .map(|(d, id)| Layer {
                descriptor: d.clone(),
                diff_id: id.clone(),
            })
            .collect();
        let key = KeyBuilder::new("from-image")
            .digest("manifest", manifest.digest())
            .finish();
        Ok(ImageState {
            layers,
            config: config.into_value(),
            key,
        })
    }
}
