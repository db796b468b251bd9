//! The solver: stages in dependency order (only what the target needs),
//! each instruction expanded with the stage's scope, metadata applied to
//! the config, and `COPY`/`ADD`/`WORKDIR` turned into layers — each under a
//! cache key derived from its definition, its parent's key and, for
//! `COPY`/`ADD`, the content of what it reads. A step whose key has a
//! record in the store reuses the layer it names and does no work.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use hoist_dockerfile::graph::Source;
use hoist_dockerfile::instruction::{Command, Instruction};
use hoist_dockerfile::{Dockerfile, GlobalScope, StageGraph, StageScope};

use super::base::{BaseResolver, scratch};
use super::config::{self as cfg, StageFlags, commit_history};
use super::key::KeyBuilder;
use super::schedule::Schedule;
use super::snapshot::{dest_view, resolve_user};
use super::state::{ImageState, Layer};
use super::time::{now_seconds, rfc3339};
use super::{BuildError, BuildEvent, BuildOptions, BuildProgress, NamedContext};
use crate::context::{Context, HashCache};
use crate::image::{Descriptor, ImageConfig, Manifest, Platform, Raw, media_types};
use crate::store::Store;
use hoist_dockerfile::limits::MAX_WORKDIR_BYTES;

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

/// Where a `COPY --from` or a `RUN --mount=from=` reads.
pub(super) enum SourceOf {
    /// The context, or a named local context (read with its `.dockerignore`).
    Dir(PathBuf),
    /// A stage or an image (read as a filesystem).
    State(Box<ImageState>),
}

/// What a step left: its layer (none when it changed nothing) and when it
/// was made.
pub(super) type Made = (Option<Layer>, Option<String>);

pub(super) struct Solver<'a> {
    pub(super) store: &'a Store,
    pub(super) df: &'a Dockerfile,
    pub(super) opts: &'a BuildOptions,
    resolver: BaseResolver<'a>,
    pub(super) context: Context,
    pub(super) hashes: HashCache,
    pub(super) progress: &'a dyn BuildProgress,
    next_id: AtomicUsize,
    pub(super) executed: AtomicUsize,
    pub(super) cached: AtomicUsize,
    pub(super) imported: AtomicUsize,
    /// Steps with cache records, for `--cache-to`.
    pub(super) visited: Mutex<Vec<crate::cache::ExportStep>>,
    /// Keys answered by an imported cache, and by which.
    pub(super) imported_keys: Mutex<HashMap<String, String>>,
    /// Cache-mount directories used (store name → path).
    pub(super) used_mounts: Mutex<BTreeMap<String, PathBuf>>,
    /// `COPY --from` source hashes used (record key → digest).
    pub(super) used_sources: Mutex<BTreeMap<String, crate::digest::Digest>>,
    pub(super) target_stage: String,
    /// Display names of the stages `--no-cache-filter` names.
    pub(super) no_cache_stages: std::collections::BTreeSet<String>,
    pub(super) created: Option<String>,
    /// One lock per cache key being worked on: identical steps in
    /// concurrent stages run once; the others wait and find the record.
    in_flight: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    /// Stage filesystems mounted for reading, kept until the build ends.
    pub(super) views: super::snapshot::Views,
    /// The steps' snapshotter: overlay until the host refuses it.
    pub(super) snapshotters: crate::ops::run::Snapshotters,
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
    let graph = StageGraph::build(df, &opts.front).map_err(BuildError::Dockerfile)?;
    super::entitlement::check_stages(df, &graph.needed_order(), &opts.entitlements)?;
    let globals = GlobalScope::new(df, &opts.front).map_err(BuildError::Dockerfile)?;
    let context = Context::open(&opts.context, opts.dockerfile.as_deref())?;
    let hashes = HashCache::for_context(store, &opts.context)?;
    let solver = Solver {
        store,
        df,
        opts,
        resolver,
        context,
        hashes,
        progress,
        next_id: AtomicUsize::new(1),
        executed: AtomicUsize::new(0),
        cached: AtomicUsize::new(0),
        imported: AtomicUsize::new(0),
        visited: Mutex::new(Vec::new()),
        imported_keys: Mutex::new(HashMap::new()),
        used_mounts: Mutex::new(BTreeMap::new()),
        used_sources: Mutex::new(BTreeMap::new()),
        target_stage: graph.stages[graph.target].display_name(),
        // BuildKit matches named stages only (`strings.EqualFold` on the
        // stage name); a name no stage has does nothing.
        no_cache_stages: graph
            .stages
            .iter()
            .filter(|s| {
                s.name.as_deref().is_some_and(|n| {
                    opts.no_cache_filter
                        .iter()
                        .any(|f| f.eq_ignore_ascii_case(n))
                })
            })
            .map(|s| s.display_name())
            .collect(),
        in_flight: Mutex::new(HashMap::new()),
        views: super::snapshot::Views::default(),
        snapshotters: crate::ops::run::Snapshotters::new(),
        created: opts.source_date_epoch.map(rfc3339),
    };
    // Stages run as soon as every stage they use is built; the ready ones
    // run concurrently (one thread each). Results nothing needs any more
    // are dropped (`schedule`).
    let mut results: BTreeMap<usize, ImageState> = BTreeMap::new();
    let (mut schedule, mut ready) = Schedule::new(&graph);
    while !ready.is_empty() {
        let bases: Vec<Option<ImageState>> = ready
            .iter()
            .map(|&i| {
                schedule
                    .takes_base(&graph, i)
                    .and_then(|j| results.remove(&j))
            })
            .collect();
        let done: Vec<(usize, Result<ImageState, BuildError>, Instant)> =
            std::thread::scope(|scope| {
                let handles: Vec<_> = ready
                    .iter()
                    .zip(bases)
                    .map(|(&i, base)| {
                        let (solver, graph, globals, results) =
                            (&solver, &graph, &globals, &results);
                        (
                            i,
                            scope.spawn(move || {
                                let r = solver.stage(graph, globals, i, base, results);
                                (r, Instant::now())
                            }),
                        )
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|(i, h)| {
                        let (r, at) = h.join().unwrap_or_else(|_| {
                            (
                                Err(BuildError::Internal(format!("stage {i} panicked"))),
                                Instant::now(),
                            )
                        });
                        (i, r, at)
                    })
                    .collect()
            });
        // Of stages failing together, the one that failed first is the
        // build's error, as BuildKit reports it (not the lowest index).
        let mut states = Vec::new();
        let mut first_error: Option<(BuildError, Instant)> = None;
        for (i, r, at) in done {
            match r {
                Ok(state) => states.push((i, state)),
                Err(e) => {
                    if first_error.as_ref().is_none_or(|(_, when)| at < *when) {
                        first_error = Some((e, at));
                    }
                }
            }
        }
        if let Some((e, _)) = first_error {
            return Err(e);
        }
        ready = Vec::new();
        let mut released = Vec::new();
        for (i, state) in states {
            results.insert(i, state);
            let (next, unused) = schedule.finished(&graph, i);
            ready.extend(next);
            released.extend(unused);
        }
        for j in released {
            results.remove(&j);
        }
    }
    solver.hashes.save()?;
    let target = results
        .remove(&graph.target)
        .ok_or_else(|| BuildError::Internal("target stage was not built".into()))?;
    solver.finish(target)
}

impl Solver<'_> {
    fn platform(&self, stage_platform: Option<&str>) -> Result<Platform, BuildError> {
        let p = match stage_platform {
            Some(p) => hoist_dockerfile::Platform::parse(p).map_err(BuildError::Internal)?,
            None => self.opts.front.target_platform.clone(),
        };
        let variant = (!p.variant.is_empty()).then_some(p.variant.as_str());
        Ok(Platform::new(&p.os, &p.architecture, variant))
    }

    /// BuildKit's `InvalidBaseImagePlatform` check: a base image (a single
    /// manifest, which is used as it is) whose config says another os or
    /// architecture than the stage's platform is a warning, not an error
    /// (`validateBaseImagePlatform` in dockerfile2llb compares os and
    /// architecture only).
    fn check_base_platform(&self, name: &str, state: &ImageState, wanted: &Platform, line: usize) {
        use crate::image::platform::normalize;
        let cfg = &state.config;
        let actual = normalize(&Platform::new(
            &cfg.os,
            &cfg.architecture,
            cfg.variant.as_deref(),
        ));
        let expected = normalize(wanted);
        if actual.os != expected.os || actual.architecture != expected.architecture {
            self.progress
                .event(BuildEvent::Warning(hoist_dockerfile::Warning {
                    rule: "InvalidBaseImagePlatform",
                    message: format!(
                        "Base image {name} was pulled with platform \"{actual}\", expected \"{expected}\" for current build"
                    ),
                    line,
                }));
        }
    }

    fn stage(
        &self,
        graph: &StageGraph,
        globals: &GlobalScope,
        index: usize,
        base: Option<ImageState>,
        results: &BTreeMap<usize, ImageState>,
    ) -> Result<ImageState, BuildError> {
        let node = &graph.stages[index];
        let stage = &self.df.stages[index];
        let platform = self.platform(node.platform.as_deref())?;
        let (id, started) = self.begin_step(node.display_name(), self.base_step_text(graph, node));
        if let Some(name) = node.name.as_deref()
            && self.opts.named_contexts.contains_key(name)
        {
            let state = self
                .named_state(name, &platform)
                .map_err(|e| e.at(stage.span.start.line))?;
            self.progress.event(BuildEvent::Done {
                id,
                seconds: started.elapsed().as_secs_f64(),
            });
            return Ok(state);
        }
        // A base that cannot be had is an error at its FROM line.
        let from_line = |e: BuildError| e.at(stage.span.start.line);
        let mut state = match node.base() {
            Source::Image(name) if self.opts.named_contexts.contains_key(name.as_str()) => {
                self.named_state(name, &platform).map_err(from_line)?
            }
            Source::Scratch => scratch(&platform),
            Source::Stage(j) => match base {
                Some(taken) => taken,
                None => results.get(j).cloned().ok_or_else(|| {
                    BuildError::Internal(format!("stage {j} not built before {index}"))
                })?,
            },
            Source::Image(name) => {
                let state = self.resolver.image(name, &platform).map_err(from_line)?;
                self.check_base_platform(name, &state, &platform, stage.span.start.line);
                state
            }
        };
        self.progress.event(BuildEvent::Done {
            id,
            seconds: started.elapsed().as_secs_f64(),
        });
        let env: Vec<(String, String)> = state
            .config
            .config
            .env
            .iter()
            .map(|e| {
                e.split_once('=')
                    .map_or((e.clone(), String::new()), |(k, v)| {
                        (k.to_string(), v.to_string())
                    })
            })
            .collect();
        let mut scope = StageScope::new(self.df, globals, &self.opts.front, &env);
        let mut flags = StageFlags::default();
        // ONBUILD triggers of the base run first, then are cleared.
        let mut triggers = Vec::new();
        for expr in std::mem::take(&mut state.config.config.on_build) {
            let ast = hoist_dockerfile::parse(&format!("FROM scratch\n{expr}\n"))
                .map_err(BuildError::Dockerfile)?;
            let typed =
                hoist_dockerfile::Dockerfile::from_ast(&ast).map_err(BuildError::Dockerfile)?;
            triggers.extend(typed.stages.into_iter().flat_map(|s| s.instructions));
        }
        for ins in triggers.iter().chain(stage.instructions.iter()) {
            state = self.step(
                &node.display_name(),
                &mut scope,
                &mut flags,
                ins,
                state,
                results,
            )?;
        }
        Ok(state)
    }

    /// A stage's first step as BuildKit names it: `FROM` and the image it
    /// resolves, expanded and fully qualified (`FROM ${BASE}` with
    /// `BASE=base:1` is `FROM docker.io/library/base:1`).
    fn base_step_text(
        &self,
        graph: &StageGraph,
        node: &hoist_dockerfile::graph::StageNode,
    ) -> String {
        let named = |name: &str| match self.opts.named_contexts.get(name) {
            Some(NamedContext::Image(r)) => Some(format!("FROM {r}")),
            Some(NamedContext::OciLayout { dir, reference }) => Some(format!(
                "FROM oci-layout://{}{}",
                dir.display(),
                reference
                    .as_deref()
                    .map(|r| format!("@{r}"))
                    .unwrap_or_default()
            )),
            Some(NamedContext::Dir(_)) | None => None,
        };
        if let Some(text) = node.name.as_deref().and_then(named) {
            return text;
        }
        match node.base() {
            Source::Scratch => "FROM scratch".to_string(),
            Source::Stage(j) => format!("FROM {}", graph.stages[*j].display_name()),
            Source::Image(name) => {
                named(name).unwrap_or_else(|| match crate::reference::Reference::parse(name) {
                    Ok(r) => format!("FROM {r}"),
                    Err(_) => format!("FROM {name}"),
                })
            }
        }
    }

    /// The image a `--build-context` names.
    fn named_state(&self, name: &str, platform: &Platform) -> Result<ImageState, BuildError> {
        match self.opts.named_contexts.get(name) {
            Some(NamedContext::Image(r)) => self.resolver.image(r, platform),
            Some(NamedContext::OciLayout { dir, reference }) => {
                let report =
                    crate::import::archive::load_layout_dir(self.store, dir).map_err(|e| {
                        BuildError::Base {
                            name: name.to_string(),
                            reason: format!("oci-layout://{}: {e}", dir.display()),
                        }
                    })?;
                let digest = match reference {
                    Some(r) if r.starts_with("sha256:") => {
                        r.parse().map_err(|e| BuildError::Base {
                            name: name.to_string(),
                            reason: format!("{e}"),
                        })?
                    }
                    _ => report
                        .manifests
                        .first()
                        .cloned()
                        .ok_or_else(|| BuildError::Base {
                            name: name.to_string(),
                            reason: format!("oci-layout://{} holds no image", dir.display()),
                        })?,
                };
                self.resolver.stored(&digest, None, platform, name)
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

    /// The lock for steps with this cache key.
    pub(super) fn slot(&self, cache_key: &str) -> Arc<Mutex<()>> {
        let mut map = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(cache_key.to_string()).or_default().clone()
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

    fn step(
        &self,
        stage: &str,
        scope: &mut StageScope<'_>,
        flags: &mut StageFlags,
        ins: &Instruction,
        mut state: ImageState,
        results: &BTreeMap<usize, ImageState>,
    ) -> Result<ImageState, BuildError> {
        let at = |e: BuildError| e.at(ins.span.start.line);
        let mut expanded = scope.apply(ins).map_err(BuildError::Dockerfile)?;
        // Progress views name the step as BuildKit does: expanded.
        expanded.original = scope.display_text(ins.original.trim());
        match &expanded.command {
            Command::Run(_) => {
                state = self
                    .run(stage, scope, &expanded, state, results)
                    .map_err(at)?;
            }
            Command::Arg { args } => {
                let parts: Vec<String> = args
                    .iter()
                    .map(|a| match &a.default {
                        Some(v) => format!("{}={v}", a.key),
                        None => a.key.clone(),
                    })
                    .collect();
                commit_history(
                    &mut state.config,
                    format!("ARG {}", parts.join(" ")),
                    false,
                    self.created.clone(),
                );
                // As in BuildKit, an ARG changes no layer: its value reaches the
                // cache only through what it expands into (or a RUN's env).
            }
            Command::Workdir { path } => {
                let wd = normalize_workdir(state.config.config.working_dir.as_deref(), path);
                if wd.len() > MAX_WORKDIR_BYTES {
                    return Err(BuildError::Dockerfile(hoist_dockerfile::Error::new(
                        format!(
                            "WORKDIR resolves to a path longer than {MAX_WORKDIR_BYTES} bytes (PATH_MAX)"
                        ),
                        ins.span.start,
                    )));
                }
                // What earlier WORKDIRs know spares a look at the files.
                let before = state.key.to_string();
                let known_missing = flags.workdirs.missing(&before, &wd);
                state.config.config.working_dir = Some(wd.clone());
                state.key = KeyBuilder::new("workdir")
                    .digest("parent", &state.key)
                    .str("dir", &wd)
                    .finish();
                let (id, started) = self.begin_step(stage, format!("WORKDIR {wd}"));
                let mut made_dirs = Vec::new();
                let made = if wd == "/" {
                    None
                } else {
                    let made = match known_missing {
                        Some(m) if m.is_empty() => None,
                        known => self
                            .mkdir_layer(stage, &mut state, &wd, known, &mut made_dirs)
                            .map_err(at)?,
                    };
                    let layer = made.as_ref().and_then(|_| state.layers.last().cloned());
                    let created = made.clone().flatten();
                    self.visit(stage, &state.key.to_string(), layer.as_ref(), created);
                    made
                };
                flags
                    .workdirs
                    .record(&before, state.key.to_string(), &wd, &made_dirs);
                let created = self.created.clone().or(made.clone().flatten());
                commit_history(
                    &mut state.config,
                    format!("WORKDIR {wd}"),
                    made.is_some(),
                    created,
                );
                self.progress.event(BuildEvent::Done {
                    id,
                    seconds: started.elapsed().as_secs_f64(),
                });
            }
            Command::Copy(_) | Command::Add(_) => {
                state = self.copy(stage, &expanded, state, results).map_err(at)?;
            }
            other => {
                if !cfg::apply(&mut state.config, flags, other, self.created.clone())
                    // A value the instruction cannot take (`EXPOSE 80/tpc`,
                    // `STOPSIGNAL SIGNOPE`) is the Dockerfile's error, at it.
                    .map_err(|e| {
                        BuildError::Dockerfile(hoist_dockerfile::Error::new(e.0, ins.span.start))
                    })?
                {
                    return Err(at(BuildError::Internal(format!(
                        "no handler for {}",
                        other.keyword()
                    ))));
                }
                // Metadata changes the config, not the filesystem: later layers
                // keep their keys (BuildKit's LLB state is unchanged too), except
                // USER, which owns the directories WORKDIR creates.
                if let Command::User { user } = other {
                    state.key = KeyBuilder::new("user")
                        .digest("parent", &state.key)
                        .str("user", user)
                        .finish();
                }
            }
        }
        Ok(state)
    }

    /// A layer with the directories of `wd` that the parent lacks, and
    /// when it was made; `None` when the parent has them all (no layer, as
    /// BuildKit's empty diff).
    ///
    /// `known_missing`, when given, are the directories missing (from the
    /// stage's `WorkdirMemo`), so the parent's files need no look unless
    /// a `USER` must be resolved; `made` gets the directories the new
    /// layer creates.
    fn mkdir_layer(
        &self,
        stage: &str,
        state: &mut ImageState,
        wd: &str,
        known_missing: Option<Vec<String>>,
        made: &mut Vec<String>,
    ) -> Result<Option<Option<String>>, BuildError> {
        let cache_key = state.key.to_string();
        let slot = self.slot(&cache_key);
        let _running = slot.lock().unwrap_or_else(|p| p.into_inner());
        // A record means an earlier run of this exact chain made the layer:
        // no need to look at the parent's files again.
        if let Some((layer, created)) = self.cached_step(stage, &cache_key)? {
            let Some(layer) = layer else {
                return Ok(None);
            };
            state.layers.push(layer);
            return Ok(Some(created));
        }
        let user = state
            .config
            .config
            .user
            .as_deref()
            .filter(|u| !u.is_empty());
        let (view, missing) = match known_missing {
            Some(known) if user.is_none() => (None, known.iter().map(PathBuf::from).collect()),
            _ => {
                let view = dest_view(self.store, &self.views, &state.layers)?;
                let mut missing = Vec::new();
                let mut path = PathBuf::from("/");
                for part in wd.split('/').filter(|p| !p.is_empty()) {
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
            self.put_record(&cache_key, None, &[], self.created.clone())?;
            return Ok(None);
        }
        // BuildKit makes WORKDIR's directories as the USER in force.
        let owner = match user {
            None => (0, 0),
            Some(user) => resolve_user(user, view.as_ref())?,
        };
        let (layer, created) = self.write_layer(&cache_key, |w| {
            for dir in &missing {
                let rel = dir.strip_prefix("/").unwrap_or(dir);
                let mut meta = crate::layer::EntryMeta::new(0o755);
                meta.mtime = self.opts.source_date_epoch.unwrap_or_else(now_seconds);
                (meta.uid, meta.gid) = owner;
                w.append_dir(rel, &meta).map_err(BuildError::Layer)?;
            }
            Ok(())
        })?;
        state.layers.push(layer);
        made.extend(missing.iter().map(|d| d.to_string_lossy().into_owned()));
        Ok(Some(created))
    }

    /// Where `COPY --from` / `RUN --mount=from=` reads: the build context
    /// (no `from`), a named local context, or a stage's or image's rootfs
    /// (`true`: a filesystem, read without a `.dockerignore`).
    pub(super) fn source_root(
        &self,
        from: Option<&str>,
        results: &BTreeMap<usize, ImageState>,
    ) -> Result<(PathBuf, bool), BuildError> {
        match self.source_of(from, results)? {
            SourceOf::Dir(dir) => Ok((dir, false)),
            SourceOf::State(st) => Ok((self.state_root(&st)?, true)),
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

    /// What `from` names, unresolved to files: a directory (the context, a
    /// named local context) or an image state (a stage, an image).
    pub(super) fn source_of(
        &self,
        from: Option<&str>,
        results: &BTreeMap<usize, ImageState>,
    ) -> Result<SourceOf, BuildError> {
        Ok(match from {
            None => SourceOf::Dir(self.opts.context.clone()),
            Some(name)
                if matches!(
                    self.opts.named_contexts.get(name),
                    Some(NamedContext::Dir(_))
                ) =>
            {
                let Some(NamedContext::Dir(dir)) = self.opts.named_contexts.get(name) else {
                    return Err(BuildError::Internal("named context changed".into()));
                };
                SourceOf::Dir(dir.clone())
            }
            Some(name) if self.opts.named_contexts.contains_key(name) => {
                let platform = self.platform(None)?;
                SourceOf::State(Box::new(self.named_state(name, &platform)?))
            }
            Some(name) => {
                let st = match name.parse::<usize>() {
                    Ok(i) => results.get(&i).cloned(),
                    Err(_) => self
                        .df
                        .stage_by_name(name)
                        .and_then(|s| results.get(&s.index).cloned()),
                };
                SourceOf::State(Box::new(match st {
                    Some(st) => st,
                    None => {
                        let platform = self.platform(None)?;
                        self.resolver.image(name, &platform)?
                    }
                }))
            }
        })
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
        let steps = std::mem::take(&mut *self.visited.lock().unwrap_or_else(|p| p.into_inner()));
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
        Ok(BuildResult {
            manifest,
            config,
            executed: self.executed.load(Ordering::SeqCst),
            cached: self.cached.load(Ordering::SeqCst),
            imported: self.imported.load(Ordering::SeqCst),
            cache: crate::cache::BuildCache {
                steps,
                sources: std::mem::take(
                    &mut *self.used_sources.lock().unwrap_or_else(|p| p.into_inner()),
                )
                .into_iter()
                .collect(),
                mounts: std::mem::take(
                    &mut *self.used_mounts.lock().unwrap_or_else(|p| p.into_inner()),
                )
                .into_iter()
                .collect(),
            },
        })
    }
}

/// BuildKit's `NormalizeWorkdir`: relative paths join the current one.
fn normalize_workdir(current: Option<&str>, path: &str) -> String {
    let joined = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{}/{path}", current.unwrap_or("/"))
    };
    normalize_path(&joined)
}

/// An absolute path cleaned of `.`, `..` and repeated slashes.
pub(super) fn normalize_path(joined: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::normalize_workdir;

    #[test]
    fn workdir_like_buildkit() {
        assert_eq!(normalize_workdir(Some("/"), "app"), "/app");
        assert_eq!(normalize_workdir(Some("/a"), "b/../c"), "/a/c");
        assert_eq!(normalize_workdir(Some("/a"), "/x/"), "/x");
        assert_eq!(normalize_workdir(None, "."), "/");
    }
}
