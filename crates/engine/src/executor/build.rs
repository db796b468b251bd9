//! The executor of a plan: the build's entry point lowers the Dockerfile
//! (`crate::plan`), hands the step graph to the solver (`crate::solve`),
//! and runs each op it is given — `FROM` sources, metadata, `WORKDIR`,
//! `COPY`/`ADD` and `RUN` — each under a cache key derived from its op,
//! its parent's key and, for `COPY`/`ADD`, the content of what it reads.
//! A step whose key has a record in the store reuses the layer it names
//! and does no work.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use hoist_dockerfile::Dockerfile;

use super::base::BaseResolver;
use super::image_config::EnvIndex;
use super::key::KeyBuilder;
use super::state::ImageState;
use super::time::{now_seconds, rfc3339};
use super::workdir::WorkdirMemo;
use super::{BuildError, BuildEvent, BuildOptions, BuildProgress, NamedContext};
use crate::context::{Context, HashCache};
use crate::image::{Descriptor, ImageConfig, Manifest, Platform, Raw, media_types};
use crate::plan::op::{ConfigChange, FromInput};
use crate::plan::{Op, Step};
use crate::solve::{Exec, Failure, VertexId};
use crate::store::Store;

/// What a build made.
#[derive(Debug, Clone)]
pub struct BuildResult {
    pub manifest: Raw<Manifest>,
    pub config: Raw<ImageConfig>,
    /// Steps run and steps answered from the cache.
    pub executed: usize,
    pub cached: usize,
    /// Steps answered by an imported cache (`--cache-from`).
    pub imported: usize,
    /// What `--cache-to` exports.
    pub cache: crate::cache::BuildCache,
}

/// Where a `COPY --from` or a bind mount reads.
pub(super) enum SourceOf<'s> {
    /// The context, or a named local context (read with its `.dockerignore`).
    Dir(PathBuf),
    /// A stage or an image (read as a filesystem).
    State(&'s ImageState),
}

/// What a step left: its layer (none when it changed nothing) and when it
/// was made.
pub(super) type Made = (Option<super::state::Layer>, Option<String>);

/// What a step's key phase found, for its load or run phase.
pub(super) enum Pending {
    Exec(super::exec_op::ExecPending),
    File(super::file_op::FilePending),
    Mkdir(super::mkdir_op::MkdirPending),
}

/// How many steps run at once (a `RUN` is a process; `COPY` hashing and
/// layer writing are I/O bound): generous, as stages used to run on a
/// thread each.
const PARALLELISM: usize = 16;

pub(super) struct Builder<'a> {
    pub(super) store: &'a Store,
    pub(super) opts: &'a BuildOptions,
    resolver: BaseResolver<'a>,
    pub(super) context: Context,
    pub(super) hashes: HashCache,
    pub(super) progress: &'a dyn BuildProgress,
    next_id: AtomicUsize,
    /// What the steps did, for the result.
    pub(super) ledger: super::ledger::Ledger,
    pub(super) target_stage: String,
    /// Display names of the stages `--no-cache-filter` names.
    pub(super) no_cache_stages: std::collections::BTreeSet<String>,
    pub(super) created: Option<String>,
    /// Stage filesystems mounted for reading, kept until the build ends.
    pub(super) views: super::snapshot::Views,
    /// What runs `RUN` steps' processes (the sandbox, unless the options
    /// give another).
    pub(super) executor: Arc<dyn crate::ops::run::Executor>,
    /// What each step's key phase found, until its load or run phase.
    pending: Mutex<HashMap<VertexId, Pending>>,
    /// What each stage's `WORKDIR`s know of its directories.
    pub(super) workdirs: Mutex<HashMap<String, WorkdirMemo>>,
}

/// Build the target of `df` into `store` (blobs and cache records; naming
/// the result is the caller's, who holds a [`Store::lease`] from before
/// this call until the names are set: the lease taken here ends with it,
/// and a waiting GC would otherwise collect the unnamed result and the
/// layers it reuses).
pub fn build(
    store: &Store,
    resolver: BaseResolver<'_>,
    df: &Dockerfile,
    opts: &BuildOptions,
    progress: &dyn BuildProgress,
) -> Result<BuildResult, BuildError> {
    let _lease = store.lease()?;
    let context = Context::open(&opts.context, opts.dockerfile.as_deref())?;
    let hashes = HashCache::for_context(store, &opts.context)?;
    let mut solver = Builder {
        store,
        opts,
        resolver,
        context,
        hashes,
        progress,
        next_id: AtomicUsize::new(1),
        ledger: Default::default(),
        // Known once the plan is.
        target_stage: String::new(),
        no_cache_stages: Default::default(),
        views: super::snapshot::Views::default(),
        executor: opts
            .executor
            .clone()
            .unwrap_or_else(|| Arc::new(crate::ops::run::SandboxExecutor::default())),
        created: opts.source_date_epoch.map(rfc3339),
        pending: Mutex::new(HashMap::new()),
        workdirs: Mutex::new(HashMap::new()),
    };
    let plan = crate::plan::lower(df, opts.plan_options(), &solver)?;
    super::entitlement::check_plan(&plan, &opts.entitlements)?;
    solver.target_stage = plan.target_stage.clone();
    // BuildKit matches named stages only (`strings.EqualFold` on the
    // stage name); a name no stage has does nothing.
    solver.no_cache_stages = plan
        .stages
        .iter()
        .filter(|s| {
            s.as_name.as_deref().is_some_and(|n| {
                opts.no_cache_filter
                    .iter()
                    .any(|f| f.eq_ignore_ascii_case(n))
            })
        })
        .map(|s| s.name.clone())
        .collect();
    let cancelled = || opts.cancel.is_cancelled();
    let solve_opts = crate::solve::Options {
        parallelism: PARALLELISM,
        cancelled: &cancelled,
    };
    let solved = crate::solve::solve(&plan.graph, &[plan.target], &solver, &solve_opts);
    let mut solved = match solved {
        Ok(s) => s,
        Err(Failure::Op { vertex, error }) => {
            let step = &plan.graph.vertex(vertex).op;
            return Err(error.at_step(step.range, &step.stage, &step.text));
        }
        Err(Failure::Cancelled) => return Err(BuildError::Run("cancelled".into())),
        Err(Failure::Panicked { vertex }) => {
            return Err(BuildError::Internal(format!(
                "step {vertex} ({}) panicked",
                plan.graph.vertex(vertex).op.text
            )));
        }
    };
    solver.hashes.save()?;
    let target = solved
        .outputs
        .pop()
        .ok_or_else(|| BuildError::Internal("target stage was not built".into()))?;
    let target = Arc::try_unwrap(target).unwrap_or_else(|shared| (*shared).clone());
    solver.finish(target)
}

impl crate::plan::Bases for Builder<'_> {
    fn image(&self, name: &str, platform: &Platform) -> Result<ImageState, BuildError> {
        self.resolver.image(name, platform)
    }

    fn named(&self, name: &str, platform: &Platform) -> Result<ImageState, BuildError> {
        named_state(
            self.store,
            &self.resolver,
            &self.opts.named_contexts,
            name,
            platform,
        )
    }

    fn warn(&self, warning: hoist_dockerfile::Warning) {
        self.progress.event(BuildEvent::Warning(warning));
    }

    fn begin(&self, stage: &str, text: &str) -> (usize, Instant) {
        self.begin_step(stage, text)
    }

    fn done(&self, id: usize, started: Instant) {
        self.progress.event(BuildEvent::Done {
            id,
            seconds: started.elapsed().as_secs_f64(),
        });
    }
}

impl Exec<Step> for Builder<'_> {
    type Output = ImageState;
    type Error = BuildError;

    fn cache_key(
        &self,
        id: VertexId,
        step: &Step,
        inputs: &[Arc<ImageState>],
    ) -> Result<Option<String>, BuildError> {
        let parent = || {
            inputs
                .first()
                .map(|p| &**p)
                .ok_or_else(|| BuildError::Internal(format!("step {id} has no parent")))
        };
        let (key, pending) = match &step.op {
            Op::Source(_) | Op::Meta(_) => return Ok(None),
            Op::Exec(op) => {
                let (key, p) = self.exec_key(step, op, parent()?, inputs)?;
                (Some(key), Pending::Exec(p))
            }
            Op::File(op) => {
                let (key, p) = self.file_key(step, op, parent()?, inputs)?;
                (Some(key), Pending::File(p))
            }
            Op::Mkdir(op) => {
                let (key, p) = self.mkdir_key(step, op, parent()?);
                (key, Pending::Mkdir(p))
            }
        };
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, pending);
        Ok(key)
    }

    fn load(
        &self,
        id: VertexId,
        step: &Step,
        key: &str,
        inputs: &[Arc<ImageState>],
    ) -> Result<Option<ImageState>, BuildError> {
        let parent = &inputs[0];
        let pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let hit = match (&step.op, pending.get(&id)) {
            (Op::Exec(op), Some(Pending::Exec(p))) => self.exec_load(step, op, p, key, parent)?,
            (Op::File(op), Some(Pending::File(p))) => self.file_load(step, op, p, key, parent)?,
            (Op::Mkdir(op), Some(Pending::Mkdir(p))) => {
                self.mkdir_load(step, op, p, key, parent)?
            }
            _ => {
                return Err(BuildError::Internal(format!(
                    "step {id}: load without a key"
                )));
            }
        };
        drop(pending);
        if hit.is_some() {
            self.take_pending(id);
        }
        Ok(hit)
    }

    fn run(
        &self,
        id: VertexId,
        step: &Step,
        key: Option<&str>,
        inputs: Vec<Arc<ImageState>>,
    ) -> Result<ImageState, BuildError> {
        match &step.op {
            Op::Source(s) => Ok((*s.state).clone()),
            Op::Meta(ops) => Ok(self.meta(ops, parent_of(inputs)?)),
            op => {
                let pending = self.take_pending(id);
                let key = key.unwrap_or_default();
                match (op, pending) {
                    (Op::Exec(op), Some(Pending::Exec(p))) => {
                        self.exec_run(step, op, p, key, inputs)
                    }
                    (Op::File(op), Some(Pending::File(p))) => {
                        self.file_run(step, op, p, key, inputs)
                    }
                    (Op::Mkdir(op), Some(Pending::Mkdir(p))) => {
                        self.mkdir_run(step, op, p, key, parent_of(inputs)?)
                    }
                    _ => Err(BuildError::Internal(format!(
                        "step {id}: run without a key"
                    ))),
                }
            }
        }
    }
}

impl Builder<'_> {
    fn take_pending(&self, id: VertexId) -> Option<Pending> {
        self.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&id)
    }

    /// Metadata instructions: the config changes (`USER` also keys what
    /// follows: it owns the directories `WORKDIR` makes).
    fn meta(&self, ops: &[crate::plan::op::MetaOp], parent: ImageState) -> ImageState {
        let mut state = parent;
        let mut env = EnvIndex::default();
        for op in ops {
            super::image_config::apply_change(
                &mut state.config,
                &mut env,
                op,
                self.created.clone(),
            );
            if let ConfigChange::User(user) = &op.change {
                state.key = KeyBuilder::new("user")
                    .digest("parent", &state.key)
                    .str("user", user)
                    .finish();
            }
        }
        state
    }

    /// A new step: its id, announced to the progress view, and its start.
    pub(super) fn begin_step(
        &self,
        stage: impl Into<String>,
        text: impl Into<String>,
    ) -> (usize, Instant) {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst);
        self.progress.event(BuildEvent::Step {
            id,
            stage: stage.into(),
            text: text.into(),
        });
        (id, Instant::now())
    }

    /// The state after a step that may have made a layer: the parent's
    /// with the step's key, layer and history entry, noted for
    /// `--cache-to`; progress says it is done.
    pub(super) fn step_done(
        &self,
        step: &Step,
        key: &crate::digest::Digest,
        parent: ImageState,
        (layer, created): Made,
        history: &str,
        (id, started): (usize, Instant),
    ) -> ImageState {
        self.visit(
            &step.stage,
            &key.to_string(),
            layer.as_ref(),
            created.clone(),
        );
        let mut state = parent;
        state.key = key.clone();
        let with_layer = layer.is_some();
        if let Some(layer) = layer {
            state.layers.push(layer);
        }
        super::image_config::commit_history(
            &mut state.config,
            history.to_string(),
            with_layer,
            self.created.clone().or(created),
        );
        self.end_step(id, started);
        state
    }

    /// A step is done (progress).
    pub(super) fn end_step(&self, id: usize, started: Instant) {
        self.progress.event(BuildEvent::Done {
            id,
            seconds: started.elapsed().as_secs_f64(),
        });
    }

    /// What a `from` reads: a directory (the context, a named local
    /// context) or one of the step's inputs (a stage, an image).
    pub(super) fn source_of<'s>(
        &self,
        from: &FromInput,
        inputs: &'s [Arc<ImageState>],
    ) -> Result<SourceOf<'s>, BuildError> {
        Ok(match from {
            FromInput::Context => SourceOf::Dir(self.opts.context.clone()),
            FromInput::Dir(dir) => SourceOf::Dir(dir.clone()),
            FromInput::Input(i) => SourceOf::State(
                inputs
                    .get(*i)
                    .map(|s| &**s)
                    .ok_or_else(|| BuildError::Internal(format!("no input {i}")))?,
            ),
        })
    }

    /// Where a bind mount reads, as a directory, and whether it is a
    /// filesystem (`true`: read without a `.dockerignore`).
    pub(super) fn source_root(
        &self,
        from: &FromInput,
        inputs: &[Arc<ImageState>],
    ) -> Result<(PathBuf, bool), BuildError> {
        match self.source_of(from, inputs)? {
            SourceOf::Dir(dir) => Ok((dir, false)),
            SourceOf::State(st) => Ok((self.state_root(st)?, true)),
        }
    }

    /// A stage's or image's filesystem as a directory (a view, mounted once
    /// per build; an empty dir for scratch).
    pub(super) fn state_root(&self, st: &ImageState) -> Result<PathBuf, BuildError> {
        Ok(self
            .views
            .get(self.store, &st.layers)?
            .unwrap_or_else(|| self.empty_dir()))
    }

    fn empty_dir(&self) -> PathBuf {
        let dir = self.store.root().join("tmp").join("empty-root");
        let _ = std::fs::create_dir_all(&dir);
        dir
    }

    fn finish(self, mut state: ImageState) -> Result<BuildResult, BuildError> {
        for (k, v) in &self.opts.labels {
            state.config.config.labels.insert(k.clone(), v.clone());
        }
        state.config.rootfs.kind = "layers".into();
        state.config.rootfs.diff_ids = state.diff_ids();
        let steps = self.ledger.take_steps();
        if self.opts.inline_cache {
            let image_layers: Vec<Descriptor> =
                state.layers.iter().map(|l| l.descriptor.clone()).collect();
            let inline = crate::cache::inline_config(&steps, &image_layers);
            let value =
                serde_json::to_value(&inline).map_err(|e| BuildError::Internal(e.to_string()))?;
            state
                .config
                .extra
                .insert(crate::cache::format::INLINE_KEY.to_string(), value);
        }
        // BuildKit: the epoch, else the newest history time (so a fully
        // cached rebuild gives the same image), else now.
        let newest = state
            .config
            .history
            .iter()
            .filter_map(|h| h.created.clone())
            .max();
        let created = self
            .created
            .clone()
            .or(newest)
            .unwrap_or_else(|| rfc3339(now_seconds()));
        // Every history entry has a time (umoci and others need one): an
        // entry without one takes the image's, as BuildKit's exporter does.
        for h in state.config.history.iter_mut() {
            if h.created.is_none() {
                h.created = Some(created.clone());
            }
        }
        state.config.created = Some(created);
        let config = Raw::from_value(state.config)?;
        self.store.put_blob_bytes(config.bytes())?;
        let manifest = Manifest::new(
            media_types::OCI_MANIFEST,
            config.descriptor(media_types::OCI_CONFIG),
            state.layers.iter().map(|l| l.descriptor.clone()).collect(),
        );
        let manifest = Raw::from_value(manifest)?;
        self.store.put_blob_bytes(manifest.bytes())?;
        let counts = self.ledger.counts();
        Ok(BuildResult {
            manifest,
            config,
            executed: counts.executed,
            cached: counts.cached,
            imported: counts.imported,
            cache: self.ledger.cache(steps),
        })
    }
}

/// The image a `--build-context` names.
fn named_state(
    store: &Store,
    resolver: &BaseResolver<'_>,
    named_contexts: &BTreeMap<String, NamedContext>,
    name: &str,
    platform: &Platform,
) -> Result<ImageState, BuildError> {
    match named_contexts.get(name) {
        Some(NamedContext::Image(r)) => resolver.image(r, platform),
        Some(NamedContext::OciLayout { dir, reference }) => {
            let report = crate::import::archive::load_layout_dir(store, dir).map_err(|e| {
                BuildError::Base {
                    name: name.to_string(),
                    reason: format!("oci-layout://{}: {e}", dir.display()),
                }
            })?;
            let digest = match reference {
                Some(r) if r.starts_with("sha256:") => r.parse().map_err(|e| BuildError::Base {
                    name: name.to_string(),
                    reason: format!("{e}"),
                })?,
                _ => report
                    .manifests
                    .first()
                    .cloned()
                    .ok_or_else(|| BuildError::Base {
                        name: name.to_string(),
                        reason: format!("oci-layout://{} holds no image", dir.display()),
                    })?,
            };
            resolver.stored(&digest, None, platform, name)
        }
        Some(NamedContext::Dir(dir)) => Err(BuildError::Base {
            name: name.to_string(),
            reason: format!(
                "{} is a local directory context: use it with COPY --from={name}",
                dir.display()
            ),
        }),
        None => Err(BuildError::Internal(format!("no build context {name}"))),
    }
}

/// The plan of the target of `df` (`hoist graph --steps`): base images
/// resolved as a build resolves them, nothing run.
pub fn plan(
    store: &Store,
    resolver: BaseResolver<'_>,
    df: &Dockerfile,
    opts: crate::plan::PlanOptions<'_>,
) -> Result<crate::plan::Plan, BuildError> {
    struct Quiet<'a> {
        store: &'a Store,
        resolver: BaseResolver<'a>,
        named: &'a BTreeMap<String, NamedContext>,
    }
    impl crate::plan::Bases for Quiet<'_> {
        fn image(&self, name: &str, platform: &Platform) -> Result<ImageState, BuildError> {
            self.resolver.image(name, platform)
        }
        fn named(&self, name: &str, platform: &Platform) -> Result<ImageState, BuildError> {
            named_state(self.store, &self.resolver, self.named, name, platform)
        }
        fn warn(&self, _: hoist_dockerfile::Warning) {}
        fn begin(&self, _: &str, _: &str) -> (usize, Instant) {
            (0, Instant::now())
        }
        fn done(&self, _: usize, _: Instant) {}
    }
    let _lease = store.lease()?;
    let bases = Quiet {
        store,
        resolver,
        named: opts.named_contexts,
    };
    crate::plan::lower(df, opts, &bases)
}

/// A step's parent state (its first input), by value: moved when the
/// solver handed the step the only reference, copied otherwise.
pub(super) fn parent_of(inputs: Vec<Arc<ImageState>>) -> Result<ImageState, BuildError> {
    let first = inputs
        .into_iter()
        .next()
        .ok_or_else(|| BuildError::Internal("a step without its parent".into()))?;
    Ok(Arc::try_unwrap(first).unwrap_or_else(|shared| (*shared).clone()))
}

/// An absolute path cleaned of `.`, `..` and repeated slashes.
pub(crate) fn normalize_path(joined: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in joined.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}
