//! The `WORKDIR` op: the config's working directory, and a layer with the
//! directories the parent lacks (owned by the `USER` in force, as
//! BuildKit makes them); no layer when it has them all.

use std::path::PathBuf;
use std::time::Instant;

use super::BuildError;
use super::build::{Builder, Made};
use super::image_config::commit_history;
use super::key::KeyBuilder;
use super::snapshot::{dest_view, resolve_user};
use super::state::ImageState;
use super::time::now_seconds;
use crate::digest::Digest;
use crate::plan::Step;
use crate::plan::op::MkdirOp;

/// What the key phase of a `WORKDIR` found.
pub(super) struct MkdirPending {
    id: usize,
    started: Instant,
    /// The parent's key, and this step's.
    before: String,
    key: Digest,
    /// The directories missing, when earlier `WORKDIR`s of the stage know.
    known_missing: Option<Vec<String>>,
}

impl Builder<'_> {
    /// The step's key; `None` for `/` (nothing to make, nothing cached).
    pub(super) fn mkdir_key(
        &self,
        step: &Step,
        op: &MkdirOp,
        parent: &ImageState,
    ) -> (Option<String>, MkdirPending) {
        let before = parent.key.to_string();
        let known_missing = self
            .workdirs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&step.stage)
            .and_then(|m| m.missing(&before, &op.path));
        let key = KeyBuilder::new("workdir")
            .digest("parent", &parent.key)
            .str("dir", &op.path)
            .finish();
        let (id, started) = self.begin_step(&step.stage, &step.text);
        let cache_key = (op.path != "/").then(|| key.to_string());
        (
            cache_key,
            MkdirPending {
                id,
                started,
                before,
                key,
                known_missing,
            },
        )
    }

    /// A record means an earlier run of this exact chain made the layer
    /// (or found nothing to make): no need to look at the parent's files.
    pub(super) fn mkdir_load(
        &self,
        step: &Step,
        op: &MkdirOp,
        p: &MkdirPending,
        key: &str,
        parent: &ImageState,
    ) -> Result<Option<ImageState>, BuildError> {
        let Some((layer, created)) = self.cached_step(&step.stage, key)? else {
            return Ok(None);
        };
        let made = layer.as_ref().map(|_| created);
        Ok(Some(self.mkdir_done(
            step,
            op,
            p,
            parent.clone(),
            layer,
            made,
            Vec::new(),
        )))
    }

    pub(super) fn mkdir_run(
        &self,
        step: &Step,
        op: &MkdirOp,
        p: MkdirPending,
        key: &str,
        parent: ImageState,
    ) -> Result<ImageState, BuildError> {
        if op.path == "/" {
            return Ok(self.mkdir_done(step, op, &p, parent, None, None, Vec::new()));
        }
        let mut made_dirs = Vec::new();
        let made = match &p.known_missing {
            Some(m) if m.is_empty() => None,
            known => self.mkdir_layer(&parent, op, key, known.clone(), &mut made_dirs)?,
        };
        let (layer, made) = match made {
            Some((layer, created)) => (Some(layer), Some(created)),
            None => (None, None),
        };
        Ok(self.mkdir_done(step, op, &p, parent, layer, made, made_dirs))
    }

    /// The state after the step: its layer (if one was made), its key, the
    /// working dir, history; what the stage's memo learnt.
    #[allow(clippy::too_many_arguments)]
    fn mkdir_done(
        &self,
        step: &Step,
        op: &MkdirOp,
        p: &MkdirPending,
        parent: ImageState,
        layer: Option<super::state::Layer>,
        made: Option<Option<String>>,
        made_dirs: Vec<String>,
    ) -> ImageState {
        let mut state = parent;
        state.key = p.key.clone();
        state.config.config.working_dir = Some(op.path.clone());
        if op.path != "/" {
            self.visit(
                &step.stage,
                &p.key.to_string(),
                layer.as_ref(),
                made.clone().flatten(),
            );
        }
        if let Some(layer) = layer {
            state.layers.push(layer);
        }
        self.workdirs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(step.stage.clone())
            .or_default()
            .record(&p.before, p.key.to_string(), &op.path, &made_dirs);
        let created = self.created.clone().or(made.clone().flatten());
        commit_history(
            &mut state.config,
            format!("WORKDIR {}", op.path),
            made.is_some(),
            created,
        );
        self.end_step(p.id, p.started);
        state
    }

    /// A layer with the directories of the workdir that the parent lacks,
    /// and when it was made; `None` when the parent has them all (no
    /// layer, as BuildKit's empty diff).
    ///
    /// `known_missing`, when given, are the directories missing (from the
    /// stage's `WorkdirMemo`), so the parent's files need no look unless
    /// a `USER` must be resolved; `made` gets the directories the new
    /// layer creates.
    fn mkdir_layer(
        &self,
        parent: &ImageState,
        op: &MkdirOp,
        cache_key: &str,
        known_missing: Option<Vec<String>>,
        made: &mut Vec<String>,
    ) -> Result<Option<(super::state::Layer, Option<String>)>, BuildError> {
        let user = op.user.as_deref();
        let (view, missing) = match known_missing {
            Some(known) if user.is_none() => (None, known.iter().map(PathBuf::from).collect()),
            _ => {
                let view = dest_view(self.store, &self.views, &parent.layers)?;
                let mut missing = Vec::new();
                let mut path = PathBuf::from("/");
                for part in op.path.split('/').filter(|p| !p.is_empty()) {
                    path.push(part);
                    let exists = view
                        .as_ref()
                        .is_some_and(|v| v.is_dir(&path.to_string_lossy()));
                    if !exists {
                        missing.push(path.clone());
                    }
                }
                (view, missing)
            }
        };
        if missing.is_empty() {
            // Remembered too, so a rebuild (or an importing machine) need
            // not look at the parent's files.
            self.put_record(cache_key, None, &[], self.created.clone())?;
            return Ok(None);
        }
        // BuildKit makes WORKDIR's directories as the USER in force.
        let owner = match user {
            None => (0, 0),
            Some(user) => resolve_user(user, view.as_ref())?,
        };
        let (layer, created): Made = {
            let (layer, created) = self.write_layer(cache_key, |w| {
                for dir in &missing {
                    let rel = dir.strip_prefix("/").unwrap_or(dir);
                    let mut meta = crate::layer::EntryMeta::new(0o755);
                    meta.mtime = self.opts.source_date_epoch.unwrap_or_else(now_seconds);
                    (meta.uid, meta.gid) = owner;
                    w.append_dir(rel, &meta).map_err(BuildError::Layer)?;
                }
                Ok(())
            })?;
            (Some(layer), created)
        };
        made.extend(missing.iter().map(|d| d.to_string_lossy().into_owned()));
        Ok(layer.map(|l| (l, created)))
    }
}
