//! Lowering: the stages `--target` needs, in dependency order, each
//! instruction expanded with its stage's scope and turned into a step.
//! Base images are resolved first (their config decides what later
//! instructions expand to, as in BuildKit); nothing else is read.

use std::collections::BTreeMap;
use std::time::Instant;

use hoist_dockerfile::graph::{Source, StageNode};
use hoist_dockerfile::instruction::{Command, Instruction, Network, Security};
use hoist_dockerfile::limits::MAX_WORKDIR_BYTES;
use hoist_dockerfile::{Dockerfile, GlobalScope, StageGraph, StageScope};

use super::exec;
use super::meta::lower_meta;
use super::op::{
    AddOptions, ConfigChange, ExecMount, ExecOp, FileOp, FromInput, Inline, MetaOp, MkdirOp, Op,
    SourceOp, Step,
};
use super::{Plan, PlannedStage};
use crate::executor::base::scratch;
use crate::executor::image_config::{EnvIndex, apply_change};
use crate::executor::state::ImageState;
use crate::executor::{BuildError, BuildOptions, NamedContext, SourceRange};
use crate::image::{ImageConfig, Platform};
use crate::solve::{Graph, VertexId};

/// What lowering asks of the world: base images, and the progress lines
/// of their resolution.
pub trait Bases {
    /// The image `name` for `platform` (from the store, else pulled).
    fn image(&self, name: &str, platform: &Platform) -> Result<ImageState, BuildError>;
    /// The image a `--build-context NAME=docker-image://…|oci-layout://…` names.
    fn named(&self, name: &str, platform: &Platform) -> Result<ImageState, BuildError>;
    /// A warning for the build's output.
    fn warn(&self, warning: hoist_dockerfile::Warning);
    /// A stage's `FROM` step starts (progress): its id.
    fn begin(&self, stage: &str, text: &str) -> (usize, Instant);
    /// …and is done.
    fn done(&self, id: usize, started: Instant);
}

/// What lowering needs of a build's options.
#[derive(Debug, Clone, Copy)]
pub struct PlanOptions<'a> {
    /// Build args, platforms and `--target`.
    pub front: &'a hoist_dockerfile::BuildOptions,
    /// `--build-context`s.
    pub named_contexts: &'a BTreeMap<String, NamedContext>,
    /// `--network`: what `RUN` gets when it does not say.
    pub network: crate::ops::run::Network,
}

impl BuildOptions {
    /// What lowering needs of these options.
    pub fn plan_options(&self) -> PlanOptions<'_> {
        PlanOptions {
            front: &self.front,
            named_contexts: &self.named_contexts,
            network: self.network,
        }
    }
}

/// Lower the target of `df` to a [`Plan`].
pub fn lower(
    df: &Dockerfile,
    opts: PlanOptions<'_>,
    bases: &dyn Bases,
) -> Result<Plan, BuildError> {
    let graph = StageGraph::build(df, opts.front).map_err(BuildError::Dockerfile)?;
    let globals = GlobalScope::new(df, opts.front).map_err(BuildError::Dockerfile)?;
    let mut lowering = Lowering {
        df,
        opts,
        bases,
        graph: Graph::new(),
        stage_last: BTreeMap::new(),
        stage_config: BTreeMap::new(),
    };
    let mut stages = Vec::new();
    for index in graph.needed_order() {
        let node = &graph.stages[index];
        let last = lowering.stage(&graph, &globals, index)?;
        stages.push(PlannedStage {
            name: node.display_name(),
            as_name: node.name.clone(),
            last,
        });
    }
    let target = *lowering
        .stage_last
        .get(&graph.target)
        .ok_or_else(|| BuildError::Internal("target stage was not lowered".into()))?;
    Ok(Plan {
        graph: lowering.graph,
        stages,
        target,
        target_stage: graph.stages[graph.target].display_name(),
    })
}

struct Lowering<'a> {
    df: &'a Dockerfile,
    opts: PlanOptions<'a>,
    bases: &'a dyn Bases,
    graph: Graph<Step>,
    /// Each lowered stage's last step and its config there.
    stage_last: BTreeMap<usize, VertexId>,
    stage_config: BTreeMap<usize, ImageConfig>,
}

/// A stage being lowered: its chain's last step, the config so far, and
/// metadata instructions not yet pushed (a run of them is one step).
struct Chain {
    stage: String,
    last: VertexId,
    config: ImageConfig,
    env: EnvIndex,
    cmd_set: bool,
    meta: Vec<MetaOp>,
    /// The line and text of the first metadata instruction of `meta`.
    meta_at: (SourceRange, String),
}

impl Chain {
    fn push(&mut self, graph: &mut Graph<Step>, op: Op, line: SourceRange, text: String) {
        self.push_with(graph, op, line, text, Vec::new());
    }

    fn push_with(
        &mut self,
        graph: &mut Graph<Step>,
        op: Op,
        line: SourceRange,
        text: String,
        extra: Vec<VertexId>,
    ) {
        self.flush(graph);
        self.add(graph, op, line, text, extra);
    }

    fn add(
        &mut self,
        graph: &mut Graph<Step>,
        op: Op,
        line: SourceRange,
        text: String,
        extra: Vec<VertexId>,
    ) {
        let mut inputs = vec![self.last];
        inputs.extend(extra);
        self.last = graph.add(
            Step {
                op,
                stage: self.stage.clone(),
                range: line,
                text,
            },
            inputs,
        );
    }

    /// A metadata instruction: applied to the config now, pushed with the
    /// next step that is not one.
    fn meta(&mut self, op: MetaOp, line: SourceRange, text: String) {
        apply_change(&mut self.config, &mut self.env, &op, None);
        // The plan needs the config's values, not its history (the
        // executor writes that): kept, a chain of stages would copy a
        // growing history into every stage.
        self.config.history.clear();
        if self.meta.is_empty() {
            self.meta_at = (line, text);
        }
        self.meta.push(op);
    }

    /// Push the pending metadata instructions as one step.
    fn flush(&mut self, graph: &mut Graph<Step>) {
        if self.meta.is_empty() {
            return;
        }
        let ops = std::mem::take(&mut self.meta);
        let (line, mut text) = std::mem::take(&mut self.meta_at);
        if ops.len() > 1 {
            text.push_str(&format!(" (+{} more)", ops.len() - 1));
        }
        self.add(graph, Op::Meta(ops), line, text, Vec::new());
    }
}

impl Lowering<'_> {
    /// The platform of a stage (`FROM --platform`), else the target's.
    fn platform(&self, stage_platform: Option<&str>) -> Result<Platform, BuildError> {
        let p = match stage_platform {
            Some(p) => hoist_dockerfile::Platform::parse(p)
                .map_err(|e| BuildError::Internal(e.to_string()))?,
            None => self.opts.front.target_platform.clone(),
        };
        let variant = (!p.variant.is_empty()).then_some(p.variant.as_str());
        Ok(Platform::new(&p.os, &p.architecture, variant))
    }

    /// A source step of its own (no inputs).
    fn source(
        &mut self,
        stage: &str,
        name: String,
        platform: Platform,
        state: ImageState,
    ) -> VertexId {
        self.graph.add(
            Step {
                text: format!("FROM {name}"),
                op: Op::Source(SourceOp {
                    name,
                    platform,
                    state: Box::new(state),
                }),
                stage: stage.to_string(),
                range: SourceRange::default(),
            },
            Vec::new(),
        )
    }

    fn stage(
        &mut self,
        graph: &StageGraph,
        globals: &GlobalScope,
        index: usize,
    ) -> Result<VertexId, BuildError> {
        let node = &graph.stages[index];
        let stage = &self.df.stages[index];
        let display = node.display_name();
        let platform = self.platform(node.platform.as_deref())?;
        let from_line = stage.span.start.line;
        let from_range = range_of(&stage.span);
        let at = |e: BuildError| e.at(from_range);
        let (id, started) = self
            .bases
            .begin(&display, &base_step_text(self.opts, graph, node));
        // A stage a `--build-context` replaces is that image, whole.
        if let Some(name) = node.name.as_deref()
            && self.opts.named_contexts.contains_key(name)
        {
            let state = self.bases.named(name, &platform).map_err(at)?;
            self.bases.done(id, started);
            let mut config = state.config.clone();
            config.history.clear();
            let last = self.source(&display, name.to_string(), platform, state);
            self.stage_last.insert(index, last);
            self.stage_config.insert(index, config);
            return Ok(last);
        }
        let (last, config) = match node.base() {
            Source::Image(name) if self.opts.named_contexts.contains_key(name.as_str()) => {
                let state = self.bases.named(name, &platform).map_err(at)?;
                let config = state.config.clone();
                (
                    self.source(&display, name.clone(), platform.clone(), state),
                    config,
                )
            }
            Source::Scratch => {
                let state = scratch(&platform);
                let config = state.config.clone();
                (
                    self.source(&display, "scratch".into(), platform.clone(), state),
                    config,
                )
            }
            Source::Stage(j) => (
                *self.stage_last.get(j).ok_or_else(|| {
                    BuildError::Internal(format!("stage {j} not lowered before {index}"))
                })?,
                self.stage_config.get(j).cloned().unwrap_or_default(),
            ),
            Source::Image(name) => {
                let state = self.bases.image(name, &platform).map_err(at)?;
                self.check_base_platform(name, &state.config, &platform, from_line);
                let config = state.config.clone();
                let shown = crate::reference::Reference::parse(name)
                    .map(|r| r.to_string())
                    .unwrap_or_else(|_| name.clone());
                (
                    self.source(&display, shown, platform.clone(), state),
                    config,
                )
            }
        };
        self.bases.done(id, started);
        let mut config = config;
        config.history.clear();
        let mut chain = Chain {
            stage: display,
            last,
            config,
            env: EnvIndex::default(),
            cmd_set: false,
            meta: Vec::new(),
            meta_at: (SourceRange::default(), String::new()),
        };
        let env: Vec<(String, String)> = chain
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
        let mut scope = StageScope::new(self.df, globals, self.opts.front, &env);
        // ONBUILD triggers of the base run first, then are cleared.
        let mut triggers = Vec::new();
        if !chain.config.config.on_build.is_empty() {
            for expr in &chain.config.config.on_build {
                let ast = hoist_dockerfile::parse(&format!("FROM scratch\n{expr}\n"))
                    .map_err(BuildError::Dockerfile)?;
                let typed = Dockerfile::from_ast(&ast).map_err(BuildError::Dockerfile)?;
                triggers.extend(typed.stages.into_iter().flat_map(|s| s.instructions));
            }
            let op = MetaOp {
                change: ConfigChange::ClearOnBuild,
                history: None,
            };
            chain.meta(op, from_range, "ONBUILD triggers".into());
        }
        for ins in triggers.iter().chain(stage.instructions.iter()) {
            self.instruction(&mut chain, &mut scope, ins, &platform)?;
        }
        chain.flush(&mut self.graph);
        self.stage_last.insert(index, chain.last);
        self.stage_config.insert(index, chain.config);
        Ok(chain.last)
    }

    /// BuildKit's `InvalidBaseImagePlatform` check: a base image (a single
    /// manifest, which is used as it is) whose config says another os or
    /// architecture than the stage's platform is a warning, not an error
    /// (`validateBaseImagePlatform` in dockerfile2llb compares os and
    /// architecture only).
    fn check_base_platform(&self, name: &str, cfg: &ImageConfig, wanted: &Platform, line: usize) {
        use crate::image::platform::normalize;
        let actual = normalize(&Platform::new(
            &cfg.os,
            &cfg.architecture,
            cfg.variant.as_deref(),
        ));
        let expected = normalize(wanted);
        if actual.os != expected.os || actual.architecture != expected.architecture {
            self.bases.warn(hoist_dockerfile::Warning {
                rule: "InvalidBaseImagePlatform",
                message: format!(
                    "Base image {name} was pulled with platform \"{actual}\", expected \"{expected}\" for current build"
                ),
                line,
            });
        }
    }

    fn instruction(
        &mut self,
        chain: &mut Chain,
        scope: &mut StageScope<'_>,
        ins: &Instruction,
        _platform: &Platform,
    ) -> Result<(), BuildError> {
        let line = range_of(&ins.span);
        let at = |e: BuildError| e.at(line);
        let mut expanded = scope.apply(ins).map_err(BuildError::Dockerfile)?;
        // Progress views name the step as BuildKit does: expanded.
        expanded.original = scope.display_text(ins.original.trim());
        let text = expanded.original.trim().to_string();
        match &expanded.command {
            Command::Run(cmd) => {
                let (op, extra) = self.exec(chain, scope, cmd).map_err(at)?;
                chain.push_with(&mut self.graph, Op::Exec(op), line, text, extra);
            }
            Command::Copy(_) | Command::Add(_) => {
                let (op, extra) = self.file(chain, &expanded.command).map_err(at)?;
                chain.push_with(&mut self.graph, Op::File(op), line, text, extra);
            }
            Command::Workdir { path } => {
                let wd = normalize_workdir(chain.config.config.working_dir.as_deref(), path);
                if wd.len() > MAX_WORKDIR_BYTES {
                    return Err(BuildError::Dockerfile(hoist_dockerfile::Error::new(
                        format!(
                            "WORKDIR resolves to a path longer than {MAX_WORKDIR_BYTES} bytes (PATH_MAX)"
                        ),
                        ins.span.start,
                    )));
                }
                let user = chain.config.config.user.clone().filter(|u| !u.is_empty());
                chain.config.config.working_dir = Some(wd.clone());
                let text = format!("WORKDIR {wd}");
                chain.push(
                    &mut self.graph,
                    Op::Mkdir(MkdirOp { path: wd, user }),
                    line,
                    text,
                );
            }
            other => {
                let op = lower_meta(other, &chain.config, &mut chain.cmd_set)
                    // A value the instruction cannot take (`EXPOSE 80/tpc`,
                    // `STOPSIGNAL SIGNOPE`) is the Dockerfile's error, at it.
                    .map_err(|e| {
                        BuildError::Dockerfile(hoist_dockerfile::Error::new(e.0, ins.span.start))
                    })?
                    .ok_or_else(|| {
                        at(BuildError::Internal(format!(
                            "no handler for {}",
                            other.keyword()
                        )))
                    })?;
                chain.meta(op, line, text);
            }
        }
        Ok(())
    }

    /// What `from` (of `COPY --from` or a mount's `from=`) names: the
    /// context, a named local directory, or an input step (a stage, or an
    /// image resolved now) — and how errors name it.
    fn input_of(
        &mut self,
        stage: &str,
        from: Option<&str>,
        extra: &mut Vec<VertexId>,
    ) -> Result<(FromInput, Option<String>), BuildError> {
        let Some(name) = from else {
            return Ok((FromInput::Context, None));
        };
        let mut input = |v: VertexId| {
            extra.push(v);
            FromInput::Input(extra.len())
        };
        match self.opts.named_contexts.get(name) {
            Some(NamedContext::Dir(dir)) => {
                return Ok((
                    FromInput::Dir(dir.clone()),
                    Some(format!("build context {name}")),
                ));
            }
            Some(_) => {
                let platform = self.platform(None)?;
                let state = self.bases.named(name, &platform)?;
                let v = self.source(stage, name.to_string(), platform, state);
                return Ok((input(v), Some(format!("build context {name}"))));
            }
            None => {}
        }
        let stage_index = match name.parse::<usize>() {
            Ok(i) => Some(i),
            Err(_) => self.df.stage_by_name(name).map(|s| s.index),
        };
        if let Some(v) = stage_index.and_then(|i| self.stage_last.get(&i).copied()) {
            return Ok((input(v), Some(format!("stage {name}"))));
        }
        let platform = self.platform(None)?;
        let state = self.bases.image(name, &platform)?;
        let shown = crate::reference::Reference::parse(name)
            .map(|r| r.to_string())
            .unwrap_or_else(|_| name.to_string());
        let v = self.source(stage, shown, platform, state);
        Ok((input(v), Some(format!("image {name}"))))
    }

    fn exec(
        &mut self,
        chain: &Chain,
        scope: &StageScope<'_>,
        cmd: &hoist_dockerfile::instruction::Run,
    ) -> Result<(ExecOp, Vec<VertexId>), BuildError> {
        let config = &chain.config;
        let security = match cmd.security {
            Security::Sandbox => crate::ops::run::Security::Sandbox,
            Security::Insecure => crate::ops::run::Security::Insecure,
        };
        let network = match cmd.network {
            Network::None => crate::ops::run::Network::None,
            Network::Host => crate::ops::run::Network::Host,
            Network::Default => self.opts.network,
        };
        let (args, script) = exec::argv(config, &cmd.command);
        let cwd = config
            .config
            .working_dir
            .clone()
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into());
        let specs = cmd
            .mounts(&mut |w| scope.expand_word(w))
            .map_err(|e| BuildError::Run(format!("RUN --mount: {e}")))?;
        let mut extra = Vec::new();
        let mut mounts = Vec::new();
        for spec in specs {
            let (from, _) = match spec.kind {
                hoist_dockerfile::mount::MountType::Bind => {
                    self.input_of(&chain.stage, spec.from.as_deref(), &mut extra)?
                }
                _ => (FromInput::Context, None),
            };
            mounts.push(ExecMount { spec, from });
        }
        let op = ExecOp {
            env: exec::environment(config, scope),
            proxy_env: exec::proxy_env(&self.opts.front.build_args),
            cwd,
            user: config.config.user.clone().unwrap_or_default(),
            network,
            security,
            mounts,
            hostname: exec::sandbox_hostname(&self.opts.front.build_args)?,
            history: exec::history_line(&args, config, scope),
            args,
            script,
        };
        Ok((op, extra))
    }

    /// A `COPY` or `ADD`: the fields both have, then each one's own.
    fn file(
        &mut self,
        chain: &Chain,
        cmd: &Command,
    ) -> Result<(FileOp, Vec<VertexId>), BuildError> {
        let (files, chown, chmod, link, exclude) = match cmd {
            Command::Copy(c) => (&c.files, &c.chown, &c.chmod, c.link, &c.exclude),
            Command::Add(a) => (&a.files, &a.chown, &a.chmod, a.link, &a.exclude),
            _ => {
                return Err(BuildError::Internal(
                    "file() on a non-COPY instruction".into(),
                ));
            }
        };
        let mut op = FileOp {
            history: copy_history(cmd),
            sources: files.sources.clone(),
            inline: files
                .inline
                .iter()
                .map(|f| Inline {
                    name: f.name.clone(),
                    data: f.data.clone(),
                    expand: f.expand,
                    chomp: f.chomp,
                })
                .collect(),
            dest: files.dest.clone(),
            add: None,
            from_name: None,
            from_place: None,
            from: FromInput::Context,
            chown: chown.clone(),
            chmod: chmod.clone(),
            link,
            parents: false,
            exclude: exclude.clone(),
            workdir: chain
                .config
                .config
                .working_dir
                .clone()
                .unwrap_or_else(|| "/".into()),
        };
        let mut extra = Vec::new();
        match cmd {
            Command::Copy(c) => {
                op.parents = c.parents;
                op.from_name = c.from.clone();
                (op.from, op.from_place) =
                    self.input_of(&chain.stage, c.from.as_deref(), &mut extra)?;
            }
            Command::Add(a) => {
                op.add = Some(AddOptions {
                    keep_git_dir: a.keep_git_dir,
                    checksum: a.checksum.clone(),
                    unpack: a.unpack,
                });
            }
            _ => {}
        }
        Ok((op, extra))
    }
}

/// Where an instruction is in the Dockerfile.
fn range_of(span: &hoist_dockerfile::ast::Span) -> SourceRange {
    SourceRange {
        line: span.start.line,
        column: span.start.column,
        end_line: span.end_line.max(span.start.line),
    }
}

/// A stage's first step as BuildKit names it: `FROM` and the image it
/// resolves, expanded and fully qualified (`FROM ${BASE}` with
/// `BASE=base:1` is `FROM docker.io/library/base:1`).
fn base_step_text(opts: PlanOptions<'_>, graph: &StageGraph, node: &StageNode) -> String {
    let named = |name: &str| match opts.named_contexts.get(name) {
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

/// The history line BuildKit's `dispatchCopy` writes:
/// `COPY [--parents] [--chown=..] [--chmod=..] SRC... [<<DOC]... DEST # buildkit`.
fn copy_history(cmd: &Command) -> String {
    let (word, files, chown, chmod, parents) = match cmd {
        Command::Copy(c) => ("COPY", &c.files, &c.chown, &c.chmod, c.parents),
        Command::Add(a) => ("ADD", &a.files, &a.chown, &a.chmod, false),
        _ => return String::new(),
    };
    let mut s = String::from(word);
    if parents {
        s.push_str(" --parents");
    }
    if let Some(c) = chown {
        s.push_str(&format!(" --chown={c}"));
    }
    if let Some(c) = chmod {
        s.push_str(&format!(" --chmod={c}"));
    }
    for src in &files.sources {
        s.push_str(&format!(" {src}"));
    }
    for doc in &files.inline {
        s.push_str(&format!(" <<{}", doc.name));
    }
    s.push_str(&format!(" {} # buildkit", files.dest));
    s
}

/// BuildKit's `NormalizeWorkdir`: relative paths join the current one.
fn normalize_workdir(current: Option<&str>, path: &str) -> String {
    let joined = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("{}/{path}", current.unwrap_or("/"))
    };
    crate::executor::build::normalize_path(&joined)
}

/// Lowering without a store: every image is an empty one of the asked
/// platform, with `ENV FROM_IMAGE=<name>` and, for a name starting with
/// `onbuild`, an `ONBUILD RUN echo trigger`.
#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    pub(crate) struct FakeBases;

    impl Bases for FakeBases {
        fn image(&self, name: &str, platform: &Platform) -> Result<ImageState, BuildError> {
            let mut state = scratch(platform);
            state.config.config.env.push(format!("FROM_IMAGE={name}"));
            if name.starts_with("onbuild") {
                state.config.config.on_build.push("RUN echo trigger".into());
            }
            state.key = crate::executor::key::KeyBuilder::new("fake")
                .str("name", name)
                .finish();
            Ok(state)
        }
        fn named(&self, name: &str, platform: &Platform) -> Result<ImageState, BuildError> {
            self.image(name, platform)
        }
        fn warn(&self, _: hoist_dockerfile::Warning) {}
        fn begin(&self, _: &str, _: &str) -> (usize, Instant) {
            (0, Instant::now())
        }
        fn done(&self, _: usize, _: Instant) {}
    }

    /// The plan of `text` with `build_args`, default options otherwise.
    pub(crate) fn plan_of(text: &str, build_args: &[(&str, &str)]) -> Result<Plan, BuildError> {
        let df = hoist_dockerfile::load(text).map_err(BuildError::Dockerfile)?;
        let front = hoist_dockerfile::BuildOptions {
            build_args: build_args
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        };
        let named = BTreeMap::new();
        let opts = PlanOptions {
            front: &front,
            named_contexts: &named,
            network: crate::ops::run::Network::Private,
        };
        lower(&df, opts, &FakeBases)
    }

    /// The op of the only `COPY`/`ADD` in `FROM scratch\n{line}`.
    pub(crate) fn file_op(line: &str) -> FileOp {
        let plan = plan_of(&format!("FROM scratch\n{line}\n"), &[]).unwrap();
        plan.graph
            .iter()
            .find_map(|(_, v)| match &v.op.op {
                Op::File(f) => Some(f.clone()),
                _ => None,
            })
            .expect("a file op")
    }
}

#[cfg(test)]
mod tests {
    use super::testing::plan_of;
    use super::*;

    /// The needed steps of a plan: (kind, stage, text, inputs).
    fn steps(plan: &Plan) -> Vec<(&'static str, String, String, Vec<usize>)> {
        plan.graph
            .needed(&[plan.target])
            .into_iter()
            .map(|id| {
                let v = plan.graph.vertex(id);
                (
                    v.op.op.kind(),
                    v.op.stage.clone(),
                    v.op.text.clone(),
                    v.inputs.clone(),
                )
            })
            .collect()
    }

    fn exec_ops(plan: &Plan) -> Vec<ExecOp> {
        plan.graph
            .iter()
            .filter_map(|(_, v)| match &v.op.op {
                Op::Exec(e) => Some(e.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_stage_is_a_chain_of_steps_and_copy_from_is_an_input() {
        let plan = plan_of(
            "FROM base:1 AS build\nRUN make\nFROM scratch\nENV A=1\nLABEL l=v\nCOPY --from=build /out /out\n",
            &[],
        )
        .unwrap();
        let got = steps(&plan);
        assert_eq!(
            got,
            [
                (
                    "source",
                    "build".to_string(),
                    "FROM docker.io/library/base:1".to_string(),
                    vec![]
                ),
                ("exec", "build".into(), "RUN make".into(), vec![0]),
                ("source", "stage-1".into(), "FROM scratch".into(), vec![]),
                // Metadata in a row is one step.
                (
                    "meta",
                    "stage-1".into(),
                    "ENV A=1 (+1 more)".into(),
                    vec![2]
                ),
                (
                    "file",
                    "stage-1".into(),
                    "COPY --from=build /out /out".into(),
                    vec![3, 1]
                ),
            ]
        );
        let Op::File(f) = &plan.graph.vertex(4).op.op else {
            panic!("not a file op")
        };
        assert_eq!(f.from, FromInput::Input(1));
        assert_eq!(f.from_place.as_deref(), Some("stage build"));
        assert_eq!(plan.target, 4);
    }

    #[test]
    fn unused_stages_are_not_lowered() {
        let plan = plan_of("FROM base:1 AS unused\nRUN x\nFROM scratch\nRUN y\n", &[]).unwrap();
        assert_eq!(plan.stages.len(), 1);
        assert!(
            exec_ops(&plan)
                .iter()
                .all(|e| e.args != ["/bin/sh", "-c", "x"])
        );
    }

    #[test]
    fn exec_ops_carry_expanded_argv_env_user_cwd_and_history() {
        let plan = plan_of(
            "FROM base:1\nARG V=1\nENV E=$V\nUSER app\nWORKDIR /w\nSHELL [\"/bin/bash\", \"-c\"]\n\
             RUN echo $V\nRUN [\"/bin/true\", \"$V\"]\n",
            &[("V", "2"), ("HTTP_PROXY", "p")],
        )
        .unwrap();
        let ops = exec_ops(&plan);
        assert_eq!(ops[0].args, ["/bin/bash", "-c", "echo $V"]);
        assert_eq!(ops[1].args, ["/bin/true", "$V"]);
        assert_eq!(ops[0].user, "app");
        assert_eq!(ops[0].cwd, "/w");
        assert!(ops[0].env.contains(&"E=2".to_string()), "{:?}", ops[0].env);
        assert!(ops[0].env.contains(&"FROM_IMAGE=base:1".to_string()));
        assert!(ops[0].env.contains(&"V=2".to_string()));
        // Proxies reach the step, never its env key.
        assert!(!ops[0].env.iter().any(|e| e.contains("PROXY")));
        assert!(
            ops[0]
                .proxy_env
                .contains(&("HTTP_PROXY".into(), "p".into()))
        );
        assert_eq!(ops[0].history, "RUN |1 V=2 /bin/bash -c echo $V # buildkit");
    }

    #[test]
    fn heredoc_scripts_and_mounts_are_planned() {
        let plan = plan_of(
            "FROM base:1 AS src\nFROM base:1\nRUN --mount=type=bind,from=src,target=/s <<EOF\n#!/bin/sh\necho hi\nEOF\n",
            &[],
        )
        .unwrap();
        let ops = exec_ops(&plan);
        let op = ops.last().unwrap();
        assert_eq!(op.args, ["/bin/sh", "-c", "/dev/pipes/EOF"]);
        assert_eq!(op.script.as_ref().unwrap().data, "#!/bin/sh\necho hi\n");
        assert_eq!(op.mounts.len(), 1);
        assert_eq!(op.mounts[0].from, FromInput::Input(1));
        let exec = plan.target;
        assert_eq!(plan.graph.vertex(exec).inputs.len(), 2);
    }

    #[test]
    fn onbuild_triggers_run_first_and_are_cleared() {
        let plan = plan_of("FROM onbuild-base\nRUN after\n", &[]).unwrap();
        let got = steps(&plan);
        let kinds: Vec<&str> = got.iter().map(|s| s.0).collect();
        assert_eq!(kinds, ["source", "meta", "exec", "exec"]);
        let ops = exec_ops(&plan);
        assert_eq!(ops[0].args, ["/bin/sh", "-c", "echo trigger"]);
        assert_eq!(ops[1].args, ["/bin/sh", "-c", "after"]);
    }

    #[test]
    fn errors_carry_their_line() {
        let e = plan_of("FROM scratch\nENV A=1\nEXPOSE 80/tpc\n", &[])
            .err()
            .expect("an error");
        match e {
            BuildError::Dockerfile(e) => assert_eq!(e.pos.line, 3, "{e}"),
            other => panic!("{other:?}"),
        }
        let e = plan_of(
            "FROM scratch\nARG M=zz\nRUN --mount=type=cache,target=/c,mode=$M true\n",
            &[],
        )
        .err()
        .expect("an error");
        assert_eq!(e.place_of().map(|p| p.range.line), Some(3), "{e:?}");
    }

    #[test]
    fn a_hundred_thousand_metadata_lines_are_one_step() {
        let text: String = std::iter::once("FROM scratch\n".to_string())
            .chain((0..100_000).map(|i| format!("ENV k{}=v{i}\n", i % 1000)))
            .chain(std::iter::once("RUN true\n".to_string()))
            .collect();
        let plan = plan_of(&text, &[]).unwrap();
        assert_eq!(plan.graph.len(), 3);
        assert_eq!(exec_ops(&plan)[0].env.len(), 1001);
    }

    #[test]
    fn workdir_like_buildkit() {
        assert_eq!(normalize_workdir(Some("/"), "app"), "/app");
        assert_eq!(normalize_workdir(Some("/a"), "b/../c"), "/a/c");
        assert_eq!(normalize_workdir(Some("/a"), "/x/"), "/x");
        assert_eq!(normalize_workdir(None, "."), "/");
    }
}
