//! What the solver remembers about steps: cache records (the layer a key
//! made, when), lookups in the store and then in imported caches
//! (`--cache-from`), the steps noted for `--cache-to`, writing a layer
//! with its record, and `--explain`'s last-run records.

use serde::{Deserialize, Serialize};

use super::build::{Builder, Made};
use super::key::KeyBuilder;
use super::snapshot::keep_index;
use super::state::Layer;
use super::time::{now_seconds, rfc3339};
use super::{BuildError, BuildEvent};
use crate::image::Descriptor;
use crate::layer::{LayerOptions, LayerWriter};

/// A layer-producing step as the cache remembers it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct CacheRecord {
    pub(super) layer: Option<Descriptor>,
    pub(super) diff_id: Option<crate::digest::Digest>,
    /// The entry digests of what it read, for `--explain`.
    #[serde(default)]
    pub(super) inputs: Vec<(String, crate::digest::Digest)>,
    /// When the layer was made: its history entry's `created`, so a cached
    /// rebuild gives the same config (and digest), as with BuildKit.
    #[serde(default)]
    pub(super) created: Option<String>,
}

/// What `--explain` compares against: the last run of a step.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct LastRun {
    pub(super) parent: String,
    pub(super) command: String,
    pub(super) workdir: String,
    pub(super) inputs: Vec<(String, crate::digest::Digest)>,
}

impl Builder<'_> {
    /// Where the last run of this step (this Dockerfile line in this stage
    /// and context) is remembered, for `--explain`.
    pub(super) fn step_identity(&self, stage: &str, line: usize) -> String {
        let key = KeyBuilder::new("last-run")
            .str("context", &self.opts.context.display().to_string())
            .opt(
                "dockerfile",
                self.opts
                    .dockerfile
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .as_deref(),
            )
            .str("stage", stage)
            .str("line", &line.to_string())
            .finish();
        format!("last-run:{key}")
    }

    pub(super) fn remember(
        &self,
        stage: &str,
        line: usize,
        run: &LastRun,
    ) -> Result<(), BuildError> {
        let bytes = serde_json::to_vec(run).map_err(|e| BuildError::Internal(e.to_string()))?;
        self.store
            .put_cache_record(&self.step_identity(stage, line), &bytes)?;
        Ok(())
    }

    /// Say why this step missed the cache, against its last run.
    pub(super) fn explain(&self, id: usize, stage: &str, line: usize, now: &LastRun) {
        let last: Option<LastRun> = self
            .store
            .get_cache_record(&self.step_identity(stage, line))
            .ok()
            .flatten()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let reason = match last {
            None => "first build of this step (no earlier run recorded)".to_string(),
            Some(last) if last.parent != now.parent => {
                "its parent step changed (an earlier step missed the cache)".to_string()
            }
            Some(last) if last.command != now.command => format!(
                "the instruction changed after expansion (a build arg or env value changed): was {}, now {}",
                last.command, now.command
            ),
            Some(last) if last.workdir != now.workdir => {
                format!("WORKDIR changed: was {}, now {}", last.workdir, now.workdir)
            }
            Some(last) => {
                let hashes = |inputs: &[(String, crate::digest::Digest)]| {
                    inputs
                        .iter()
                        .map(|(p, d)| crate::context::EntryHash {
                            path: p.clone(),
                            digest: d.clone(),
                        })
                        .collect::<Vec<_>>()
                };
                let changes: Vec<String> =
                    crate::context::changed_paths(&hashes(&last.inputs), &hashes(&now.inputs))
                        .into_iter()
                        .map(|c| match c {
                            crate::context::PathChange::Added(p) => format!("added {p}"),
                            crate::context::PathChange::Removed(p) => format!("removed {p}"),
                            crate::context::PathChange::Modified(p) => format!("changed {p}"),
                        })
                        .collect();
                if changes.is_empty() {
                    "the layer it made is no longer in the store (pruned)".to_string()
                } else {
                    format!("files changed: {}", changes.join(", "))
                }
            }
        };
        self.progress.event(BuildEvent::Explain { id, reason });
    }

    /// Whether `stage`'s steps run whatever the cache holds (`--no-cache`,
    /// `--no-cache-filter`).
    pub(super) fn ignores_cache(&self, stage: &str) -> bool {
        self.opts.no_cache || self.no_cache_stages.contains(stage)
    }

    pub(super) fn cached_layer(
        &self,
        stage: &str,
        cache_key: &str,
    ) -> Result<Option<(Layer, Option<String>)>, BuildError> {
        Ok(match self.cached_step(stage, cache_key)? {
            Some((Some(layer), created)) => Some((layer, created)),
            _ => None,
        })
    }

    /// The cache record of a step: the layer it made (`None` inside when it
    /// made none, as an empty `RUN`) and when; `None` on a miss, with
    /// `--no-cache` (or `--no-cache-filter` naming `stage`), or when the
    /// layer's blob is gone.
    pub(super) fn cached_step(
        &self,
        stage: &str,
        cache_key: &str,
    ) -> Result<Option<Made>, BuildError> {
        if self.ignores_cache(stage) {
            return Ok(None);
        }
        let Some(record) = self
            .store
            .get_cache_record(cache_key)?
            .and_then(|bytes| serde_json::from_slice::<CacheRecord>(&bytes).ok())
        else {
            return Ok(self.imported_step(cache_key));
        };
        match (record.layer, record.diff_id) {
            (Some(descriptor), Some(diff_id)) if self.store.has_blob(&descriptor.digest)? => {
                Ok(Some((
                    Some(Layer {
                        descriptor,
                        diff_id,
                    }),
                    record.created,
                )))
            }
            (None, None) => Ok(Some((None, record.created))),
            _ => Ok(self.imported_step(cache_key)),
        }
    }

    /// The step as an imported cache (`--cache-from`) has it: its layer's
    /// descriptor only; the bytes are fetched if something reads them.
    pub(super) fn imported_step(&self, cache_key: &str) -> Option<Made> {
        self.opts.cache_from.iter().find_map(|cache| {
            let step = cache.step(cache_key)?;
            self.ledger.imported_from(cache_key, &cache.name);
            let layer = step.layer.map(|(descriptor, diff_id)| Layer {
                descriptor,
                diff_id,
            });
            // Remembered here too: once the layer is fetched, later builds
            // hit without the imported cache.
            let _ = self.put_record(cache_key, layer.as_ref(), &[], step.created.clone());
            Some((layer, step.created))
        })
    }

    /// A cache hit: announced, and (from an imported cache) said so.
    pub(super) fn announce_hit(&self, id: usize, cache_key: &str) {
        let from = self.ledger.hit(cache_key);
        self.progress.event(BuildEvent::Cached { id });
        if let Some(from) = from {
            self.progress.event(BuildEvent::Imported { id, from });
        }
    }

    /// Note a step with a cache record (hit or made) for `--cache-to`.
    pub(super) fn visit(
        &self,
        stage: &str,
        cache_key: &str,
        layer: Option<&Layer>,
        created: Option<String>,
    ) {
        let blob = self
            .opts
            .cache_from
            .iter()
            .find_map(|c| c.step(cache_key))
            .and_then(|s| s.blob);
        let step = crate::cache::ExportStep {
            key: cache_key.to_string(),
            layer: layer.map(|l| (l.descriptor.clone(), l.diff_id.clone())),
            blob,
            created,
            in_target: stage == self.target_stage,
        };
        self.ledger.step(step);
    }

    /// Write the cache record of a step.
    pub(super) fn put_record(
        &self,
        cache_key: &str,
        layer: Option<&Layer>,
        inputs: &[(String, crate::digest::Digest)],
        created: Option<String>,
    ) -> Result<(), BuildError> {
        let record = CacheRecord {
            layer: layer.map(|l| l.descriptor.clone()),
            diff_id: layer.map(|l| l.diff_id.clone()),
            inputs: inputs.to_vec(),
            created,
        };
        let bytes = serde_json::to_vec(&record).map_err(|e| BuildError::Internal(e.to_string()))?;
        self.store.put_cache_record(cache_key, &bytes)?;
        Ok(())
    }

    pub(super) fn write_layer(
        &self,
        cache_key: &str,
        fill: impl FnOnce(&mut LayerWriter<&mut crate::store::BlobWriter>) -> Result<(), BuildError>,
    ) -> Result<(Layer, Option<String>), BuildError> {
        self.write_layer_with_inputs(cache_key, &[], fill)
    }

    pub(super) fn write_layer_with_inputs(
        &self,
        cache_key: &str,
        inputs: &[(String, crate::digest::Digest)],
        fill: impl FnOnce(&mut LayerWriter<&mut crate::store::BlobWriter>) -> Result<(), BuildError>,
    ) -> Result<(Layer, Option<String>), BuildError> {
        let layer_opts = LayerOptions {
            compression: self.opts.compression,
            level: self.opts.compression_level,
            source_date_epoch: self.opts.source_date_epoch,
            ..LayerOptions::default()
        };
        let mut blob = self.store.blob_writer()?;
        let mut writer = LayerWriter::new(&mut blob, &layer_opts)?.with_index();
        fill(&mut writer)?;
        let (written, index) = writer.finish_with_index()?;
        let info = blob.commit(Some(&written.digest), Some(written.size))?;
        if let Some(index) = &index {
            keep_index(self.store, &info.digest, index);
        }
        let descriptor = Descriptor::new(written.media_type, info.digest, info.size);
        let created = Some(
            self.created
                .clone()
                .unwrap_or_else(|| rfc3339(now_seconds())),
        );
        let layer = Layer {
            descriptor,
            diff_id: written.diff_id,
        };
        self.put_record(cache_key, Some(&layer), inputs, created.clone())?;
        Ok((layer, created))
    }
}
