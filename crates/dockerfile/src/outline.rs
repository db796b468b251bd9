//! What `hoist build --call=outline` and `--call=targets` report, as
//! BuildKit's Dockerfile front end fills its `outline` and `targets`
//! subrequests (`frontend/subrequests/`, `dockerfile2llb/outline.go`):
//!
//! - [`outline`]: the target stage, its description, the build args it
//!   consumes (its stages' own `ARG`s and the global `ARG`s its `FROM`
//!   lines use, through the globals they are made of), with values after
//!   `--build-arg`s and descriptions, and the secrets and ssh agents its
//!   `RUN --mount`s ask for. The stages reached are the target, its base
//!   stages and every stage it copies or mounts from.
//! - [`targets`]: every stage, its description, base and platform as
//!   written, and which one builds by default.
//!
//! A description is a comment line directly above the `FROM` or `ARG`
//! that starts with the stage's or arg's name (`# GO_VERSION sets the Go
//! version` describes `ARG GO_VERSION`); the name and a space are cut.
//! The JSON shapes are BuildKit's, `location` included, so tools that read
//! `buildx --call=outline,format=json` read hoist's.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::ast::{Ast, Span};
use crate::error::{Error, Result};
use crate::graph::{DepKind, Source, StageGraph};
use crate::instruction::{ArgDecl, Command, Instruction};
use crate::mount::MountType;
use crate::stage::{BuildOptions, Dockerfile, GlobalScope, StageScope, predefined_args};
use crate::vars::VarList;

/// Where an entry is written: BuildKit's `pb.Location` (source 0, the
/// Dockerfile), its lines 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Location {
    pub ranges: [Range; 1],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Range {
    pub start: Position,
    pub end: Position,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Position {
    pub line: usize,
}

impl Location {
    fn of(span: Span) -> Location {
        Location {
            ranges: [Range {
                start: Position {
                    line: span.start.line,
                },
                end: Position {
                    line: span.end_line.max(span.start.line),
                },
            }],
        }
    }

    /// The first line: what BuildKit sorts outline entries by.
    pub fn line(&self) -> usize {
        self.ranges[0].start.line
    }
}

/// BuildKit's `outline.Outline`, without `sources` (the caller has the bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outline {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<OutlineArg>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<Requirement>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ssh: Vec<Requirement>,
}

/// A build arg the target consumes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutlineArg {
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub value: String,
    pub location: Location,
}

/// A secret or ssh agent a `RUN --mount` of the target asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Requirement {
    pub name: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
    pub location: Location,
}

/// BuildKit's `targets.Target`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Target {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub default: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub description: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub base: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub platform: String,
    pub location: Location,
}

/// Every stage, in order; the last one is the default target.
pub fn targets(ast: &Ast, df: &Dockerfile) -> Vec<Target> {
    let comments = Comments::of(ast);
    let last = df.stages.len().saturating_sub(1);
    df.stages
        .iter()
        .map(|s| {
            let name = s.name().unwrap_or_default().to_string();
            Target {
                description: comments.describe(s.span, &name),
                name,
                default: s.index == last,
                base: s.from.base.clone(),
                platform: s.from.platform.clone().unwrap_or_default(),
                location: Location::of(s.span),
            }
        })
        .collect()
}

/// The outline of `opts.target` (or the last stage).
///
/// Linear in the Dockerfile: each stage's own capture is made once and
/// never copied into the stages built on it (BuildKit clones it, which is
/// quadratic in a chain of stages); the walk visits each stage once.
pub fn outline(ast: &Ast, df: &Dockerfile, opts: &BuildOptions) -> Result<Outline> {
    let graph = StageGraph::build(df, opts)?;
    let globals = GlobalScope::new(df, opts)?;
    let comments = Comments::of(ast);
    let lex = df.lexer();
    let global_args = global_args(df, opts, &comments)?;

    let mut captures: Vec<Capture> = Vec::with_capacity(df.stages.len());
    let mut envs: Vec<Vec<(String, String)>> = Vec::with_capacity(df.stages.len());
    for stage in &df.stages {
        let node = &graph.stages[stage.index];
        let base_stage = match node.base() {
            Source::Stage(b) => Some(*b),
            _ => None,
        };
        let mut cap = Capture::default();
        for word in std::iter::once(&stage.from.base).chain(stage.from.platform.as_ref()) {
            let e = lex
                .process_word_with_matches(word, &globals.vars)
                .map_err(|e| Error::new(e.message, stage.span.start))?;
            cap.from_used.extend(e.used);
        }
        if !node.needed {
            // Not reached from the target: nothing of it is reported.
            envs.push(Vec::new());
            captures.push(cap);
            continue;
        }
        let triggers: Vec<&Instruction> = match base_stage {
            Some(b) => df.stages[b]
                .instructions
                .iter()
                .filter_map(|i| match &i.command {
                    Command::Onbuild(o) => Some(&*o.trigger),
                    _ => None,
                })
                .collect(),
            None => Vec::new(),
        };
        let base_env = base_stage.map(|b| envs[b].as_slice()).unwrap_or_default();
        let mut scope = StageScope::new(df, &globals, opts, base_env);
        for ins in triggers.into_iter().chain(&stage.instructions) {
            let expanded = scope.apply(ins)?;
            cap.take(ins, &expanded, &scope, &globals, opts, &comments)?;
        }
        envs.push(scope.config_env().to_vec());
        captures.push(cap);
    }

    let walk = Walk {
        graph: &graph,
        captures: &captures,
        globals: &global_args,
    };
    let found = walk.run(graph.target);
    let (mut args, mut secrets, mut ssh) = (found.args, found.secrets, found.ssh);
    args.sort_by_key(|a| a.location.line());
    secrets.sort_by_key(|a| a.location.line());
    ssh.sort_by_key(|a| a.location.line());

    let target = &df.stages[graph.target];
    let name = target.name().unwrap_or_default().to_string();
    Ok(Outline {
        description: comments.describe(target.span, &name),
        name,
        args,
        secrets,
        ssh,
    })
}

/// One `ARG` as the outline knows it.
#[derive(Debug, Clone)]
struct ArgInfo {
    name: String,
    value: String,
    description: String,
    span: Span,
    /// The global args its default was made of (BuildKit's `deps`).
    deps: BTreeSet<String>,
}

/// What one stage itself declares and uses (BuildKit's `outlineCapture`
/// without the copies of the base stage's).
#[derive(Debug, Clone, Default)]
struct Capture {
    /// The stage's own `ARG` entries (an `ARG X` that re-declares a global
    /// X has none: the global's stands).
    own: BTreeMap<String, ArgInfo>,
    /// Every key its `ARG`s declare (the walk sorts what it reports).
    declared: BTreeSet<String>,
    /// The global args its `FROM` line (name and platform) uses.
    from_used: BTreeSet<String>,
    /// Secrets and ssh ids in the order met; the first mention of an id wins.
    secrets: Vec<Requirement>,
    ssh: Vec<Requirement>,
}

impl Capture {
    /// Take in one instruction of the stage as written (`ins`) and as the
    /// stage's scope expanded it (`expanded`: an `ARG`'s values are the
    /// build's, so they are not worked out twice).
    fn take(
        &mut self,
        ins: &Instruction,
        expanded: &Instruction,
        scope: &StageScope<'_>,
        globals: &GlobalScope,
        opts: &BuildOptions,
        comments: &Comments<'_>,
    ) -> Result<()> {
        let at = |m: String| Error::new(m, ins.span.start);
        match &ins.command {
            Command::Arg { args } => {
                let values = match &expanded.command {
                    Command::Arg { args } => args.as_slice(),
                    _ => &[],
                };
                for (i, ArgDecl { key, default }) in args.iter().enumerate() {
                    let given = opts.build_args.get(key);
                    // `ARG X` with no default re-declares a global X: the
                    // global's entry (value, line, description) stands.
                    let inherited =
                        default.is_none() && given.is_none() && globals.get(key).is_some();
                    if !inherited {
                        let value = values
                            .get(i)
                            .and_then(|d| d.default.clone())
                            .unwrap_or_default();
                        self.own.insert(
                            key.clone(),
                            ArgInfo {
                                name: key.clone(),
                                value,
                                description: comments.describe(ins.span, key),
                                span: ins.span,
                                deps: BTreeSet::new(),
                            },
                        );
                    }
                    self.declared.insert(key.clone());
                }
            }
            Command::Run(run) => {
                let mounts = run
                    .mounts(&mut |w| scope.expand_word(w))
                    .map_err(|e| at(e.to_string()))?;
                for m in mounts {
                    let (list, id) = match m.kind {
                        // BuildKit: the id, else the source, else the
                        // target's file name.
                        MountType::Secret => {
                            let id = m
                                .source
                                .clone()
                                .filter(|s| !s.is_empty())
                                .or_else(|| m.id.clone().filter(|s| !s.is_empty()))
                                .or_else(|| {
                                    m.target.as_deref().map(|t| {
                                        t.trim_end_matches('/')
                                            .rsplit('/')
                                            .next()
                                            .unwrap_or_default()
                                            .to_string()
                                    })
                                })
                                .unwrap_or_default();
                            (&mut self.secrets, id)
                        }
                        MountType::Ssh => (
                            &mut self.ssh,
                            m.id.clone()
                                .filter(|s| !s.is_empty())
                                .unwrap_or_else(|| "default".to_string()),
                        ),
                        _ => continue,
                    };
                    if !list.iter().any(|r| r.name == id) {
                        list.push(Requirement {
                            name: id,
                            required: m.required,
                            location: Location::of(ins.span),
                        });
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// The global `ARG`s as BuildKit's `buildMetaArgs` records them: value
/// after `--build-arg`s, the last definition's line, and the globals each
/// default was made of (a redefinition `ARG A=${A}x` keeps the old deps).
fn global_args(
    df: &Dockerfile,
    opts: &BuildOptions,
    comments: &Comments<'_>,
) -> Result<BTreeMap<String, ArgInfo>> {
    let lex = df.lexer();
    let mut env: VarList = predefined_args(df, opts).into_iter().collect();
    let mut all: BTreeMap<String, ArgInfo> = BTreeMap::new();
    for ins in &df.global_args {
        let Command::Arg { args } = &ins.command else {
            continue;
        };
        for ArgDecl { key, default } in args {
            let mut info = ArgInfo {
                name: key.clone(),
                value: String::new(),
                description: comments.describe(ins.span, key),
                span: ins.span,
                deps: BTreeSet::new(),
            };
            let value = match (opts.build_args.get(key), default) {
                (Some(v), _) => Some(v.clone()),
                (None, Some(d)) => {
                    let e = lex
                        .process_word_with_matches(d, &env)
                        .map_err(|e| Error::new(e.message, ins.span.start))?;
                    info.deps = e.used;
                    if info.deps.remove(key)
                        && let Some(old) = all.get(key)
                    {
                        info.deps.extend(old.deps.iter().cloned());
                    }
                    Some(e.result)
                }
                (None, None) => None,
            };
            if let Some(v) = value {
                env.set(key, v.clone());
                info.value = v;
            }
            all.insert(key.clone(), info);
        }
    }
    Ok(all)
}

/// What the walk found, in the order BuildKit's `dispatchState.args` and
/// friends meet it (sorted by line afterwards).
#[derive(Default)]
struct Found {
    args: Vec<OutlineArg>,
    secrets: Vec<Requirement>,
    ssh: Vec<Requirement>,
}

/// The walk from the target over its base stages and the stages it
/// copies or mounts from, depth first as BuildKit walks: a stage, its base
/// chain, then the chain's other sources, deepest first. Each key is
/// reported once, by the first stage that reaches it, which sees its own
/// `ARG`s and the globals (BuildKit's per-stage `allArgs`). A stage walked
/// once is never walked again: what it could report is reported.
struct Walk<'a> {
    graph: &'a StageGraph,
    captures: &'a [Capture],
    globals: &'a BTreeMap<String, ArgInfo>,
}

impl Walk<'_> {
    fn base(&self, stage: usize) -> Option<usize> {
        match self.graph.stages[stage].base() {
            Source::Stage(b) => Some(*b),
            _ => None,
        }
    }

    /// The stages `stage` copies or mounts from, in order, once each.
    fn sources(&self, stage: usize) -> Vec<usize> {
        let mut out: Vec<usize> = Vec::new();
        for d in self.graph.stages[stage]
            .deps
            .iter()
            .filter(|d| d.kind != DepKind::From)
        {
            if let Source::Stage(j) = d.source
                && !out.contains(&j)
            {
                out.push(j);
            }
        }
        out
    }

    fn run(&self, target: usize) -> Found {
        let mut found = Found::default();
        let mut keys: BTreeSet<String> = BTreeSet::new();
        let mut secret_ids: BTreeSet<String> = BTreeSet::new();
        let mut ssh_ids: BTreeSet<String> = BTreeSet::new();
        let mut walked = vec![false; self.captures.len()];
        let mut stack = vec![target];
        while let Some(root) = stack.pop() {
            if walked[root] {
                continue;
            }
            // The root's base chain, down to a stage already walked.
            let mut chain = vec![root];
            while let Some(b) = self.base(*chain.last().unwrap_or(&root)) {
                if walked[b] || chain.contains(&b) {
                    break;
                }
                chain.push(b);
            }
            for (depth, &c) in chain.iter().enumerate() {
                walked[c] = true;
                let cap = &self.captures[c];
                let mut used: Vec<String> = cap.declared.iter().cloned().collect();
                if depth == 0 {
                    // A stage inherits the FROM-used keys of its whole base
                    // chain (BuildKit copies them when it makes the stage).
                    for &d in &chain {
                        used.extend(self.captures[d].from_used.iter().cloned());
                    }
                }
                for key in self.closure(cap, used) {
                    let info = cap.own.get(&key).or_else(|| self.globals.get(&key));
                    if let Some(a) = info
                        && keys.insert(key)
                    {
                        found.args.push(OutlineArg {
                            name: a.name.clone(),
                            description: a.description.clone(),
                            value: a.value.clone(),
                            location: Location::of(a.span),
                        });
                    }
                }
                for r in &cap.secrets {
                    if secret_ids.insert(r.name.clone()) {
                        found.secrets.push(r.clone());
                    }
                }
                for r in &cap.ssh {
                    if ssh_ids.insert(r.name.clone()) {
                        found.ssh.push(r.clone());
                    }
                }
            }
            // The chain's other sources: the deepest stage's first, each
            // stage's in order.
            for &c in &chain {
                stack.extend(self.sources(c).into_iter().rev());
            }
        }
        found
    }

    /// `used` and, through the globals' `deps`, the keys they were made of
    /// (BuildKit's `markAllUsed`), as `cap`'s stage sees them.
    fn closure(&self, cap: &Capture, used: Vec<String>) -> BTreeSet<String> {
        let mut all = BTreeSet::new();
        let mut todo = used;
        while let Some(k) = todo.pop() {
            if !all.insert(k.clone()) {
                continue;
            }
            if cap.own.contains_key(&k) {
                continue;
            }
            if let Some(a) = self.globals.get(&k) {
                todo.extend(a.deps.iter().cloned());
            }
        }
        all
    }
}

/// Comment lines above each instruction, by its first line.
struct Comments<'a> {
    by_line: BTreeMap<usize, &'a [String]>,
}

impl<'a> Comments<'a> {
    fn of(ast: &'a Ast) -> Comments<'a> {
        Comments {
            by_line: ast
                .children
                .iter()
                .map(|n| (n.span.start.line, n.prev_comment.as_slice()))
                .collect(),
        }
    }

    /// The description of `name` from the comments above the instruction
    /// at `span`: the first line that starts with `name` and a space.
    fn describe(&self, span: Span, name: &str) -> String {
        if name.is_empty() {
            return String::new();
        }
        let prefix = format!("{name} ");
        self.by_line
            .get(&span.start.line)
            .and_then(|lines| lines.iter().find_map(|l| l.strip_prefix(&prefix)))
            .unwrap_or_default()
            .to_string()
    }
}
