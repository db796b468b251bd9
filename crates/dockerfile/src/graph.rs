//! The stage DAG: which stage depends on which (through `FROM`,
//! `COPY --from`, `RUN --mount=from=` and `ONBUILD` triggers of a base
//! stage), which stages `--target` needs, and which it skips.
//!
//! Rules follow BuildKit's `dockerfile2llb`: a `FROM` names an earlier
//! stage or else an image; `COPY --from` takes a stage name, a stage index
//! or an image, and no variables; a stage may only use stages defined
//! before it; cycles are errors.

use std::collections::BTreeSet;
use std::fmt::Write;

use serde::Serialize;

use crate::ast::Pos;
use crate::error::{Error, Result};
use crate::instruction::{Command, Instruction};
use crate::stage::{BuildOptions, Dockerfile, GlobalScope, resolve_from};

/// What a stage starts from or reads from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(tag = "type", content = "ref", rename_all = "lowercase")]
pub enum Source {
    /// `FROM scratch`.
    Scratch,
    /// Another stage, by index.
    Stage(usize),
    /// An image reference, as written after expansion.
    Image(String),
}

/// How a dependency arises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DepKind {
    From,
    CopyFrom,
    MountFrom,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dep {
    pub source: Source,
    pub kind: DepKind,
    /// Where the dependency is written.
    pub pos: Pos,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StageNode {
    pub index: usize,
    pub name: Option<String>,
    /// The base after expansion: `FROM`'s dependency is always `deps[0]`.
    pub deps: Vec<Dep>,
    pub platform: Option<String>,
    /// Whether the target needs this stage.
    pub needed: bool,
}

impl StageNode {
    pub fn display_name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("stage-{}", self.index))
    }

    pub fn base(&self) -> &Source {
        &self.deps[0].source
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StageGraph {
    pub stages: Vec<StageNode>,
    pub target: usize,
}

impl StageGraph {
    /// Build the graph for `opts.target` (or the last stage).
    pub fn build(df: &Dockerfile, opts: &BuildOptions) -> Result<StageGraph> {
        let globals = GlobalScope::new(df, opts)?;
        let lex = df.lexer();
        // Each stage's ONBUILD instructions, found once: a base used by
        // many stages is not read again for each.
        let onbuilds: Vec<Vec<&Instruction>> = df
            .stages
            .iter()
            .map(|s| {
                s.instructions
                    .iter()
                    .filter(|i| matches!(i.command, Command::Onbuild(_)))
                    .collect()
            })
            .collect();
        let mut stages: Vec<StageNode> = Vec::new();
        for stage in &df.stages {
            let from = resolve_from(df, stage, &globals)?;
            let base = if from.base.eq_ignore_ascii_case("scratch") {
                Source::Scratch
            } else {
                match df.stage_by_name(&from.base) {
                    Some(s) if s.index < stage.index => Source::Stage(s.index),
                    _ => Source::Image(from.base.clone()),
                }
            };
            let mut deps = vec![Dep {
                source: base.clone(),
                kind: DepKind::From,
                pos: stage.span.start,
            }];
            for ins in &stage.instructions {
                instruction_deps(df, &lex, ins, &mut deps)?;
            }
            // ONBUILD triggers of a base stage run in this stage.
            if let Source::Stage(b) = base {
                for ins in &onbuilds[b] {
                    if let Command::Onbuild(o) = &ins.command {
                        let mut trig = Vec::new();
                        instruction_deps(df, &lex, &o.trigger, &mut trig)?;
                        deps.extend(trig.into_iter().map(|d| Dep {
                            pos: ins.span.start,
                            ..d
                        }));
                    }
                }
            }
            stages.push(StageNode {
                index: stage.index,
                name: stage.name().map(str::to_string),
                deps,
                platform: from.platform.map(|p| p.to_string()),
                needed: false,
            });
        }
        check_cycles(&stages)?;
        let target = match &opts.target {
            None => stages.len() - 1,
            Some(t) => df.stage_by_name(t).map(|s| s.index).ok_or_else(|| {
                let names: Vec<String> = stages.iter().filter_map(|s| s.name.clone()).collect();
                // BuildKit's `suggest.WrapError` wording, which scripts
                // match on.
                let lower = t.to_lowercase();
                if let Some(best) = crate::flags::suggest(&lower, names.iter().map(String::as_str))
                {
                    return Error::whole_file(format!(
                        "target stage {t:?} could not be found (did you mean {best}?)"
                    ));
                }
                Error::whole_file(format!(
                    "target stage {t:?} could not be found (stages: {})",
                    if names.is_empty() {
                        "none named".to_string()
                    } else {
                        names.join(", ")
                    }
                ))
            })?,
        };
        let mut graph = StageGraph { stages, target };
        for i in graph.needed_order() {
            graph.stages[i].needed = true;
        }
        for s in graph.stages.iter().filter(|s| s.needed) {
            for d in &s.deps {
                if let Source::Stage(j) = d.source
                    && j >= s.index
                {
                    return Err(Error::new(
                        format!(
                            "cannot copy from stage {:?}, it needs to be defined before current stage {:?}",
                            graph.stages[j].display_name(),
                            s.display_name()
                        ),
                        d.pos,
                    ));
                }
            }
        }
        Ok(graph)
    }

    /// The stages the target needs, dependencies first (a topological order:
    /// a depth-first post-order from the target, deps in order). Iterative,
    /// so a chain of any length fits the stack.
    pub fn needed_order(&self) -> Vec<usize> {
        let mut order = Vec::new();
        let mut seen = vec![false; self.stages.len()];
        // (stage, index of its next dependency to visit)
        let mut stack = vec![(self.target, 0)];
        seen[self.target] = true;
        while let Some((i, next)) = stack.last_mut() {
            let i = *i;
            match self.stages[i].deps.get(*next) {
                Some(d) => {
                    *next += 1;
                    if let Source::Stage(j) = d.source
                        && !seen[j]
                    {
                        seen[j] = true;
                        stack.push((j, 0));
                    }
                }
                None => {
                    order.push(i);
                    stack.pop();
                }
            }
        }
        order
    }

    /// The stages the target does not need.
    pub fn skipped(&self) -> Vec<usize> {
        self.stages
            .iter()
            .filter(|s| !s.needed)
            .map(|s| s.index)
            .collect()
    }

    /// Every image the needed stages read, sorted and deduplicated.
    pub fn images(&self) -> Vec<String> {
        let set: BTreeSet<&str> = self
            .stages
            .iter()
            .filter(|s| s.needed)
            .flat_map(|s| s.deps.iter())
            .filter_map(|d| match &d.source {
                Source::Image(r) => Some(r.as_str()),
                _ => None,
            })
            .collect();
        set.into_iter().map(str::to_string).collect()
    }

    /// Graphviz `dot`: needed stages solid, skipped stages dashed and grey.
    pub fn to_dot(&self) -> String {
        let mut s = String::from("digraph stages {\n  rankdir=LR;\n  node [shape=box];\n");
        for img in self.all_images() {
            let _ = writeln!(
                s,
                "  {} [label={}, shape=ellipse];",
                dot_id(&img_id(&img)),
                dot_quote(&img)
            );
        }
        for n in &self.stages {
            let mut attrs = format!("label={}", dot_quote(&self.label(n)));
            if n.index == self.target {
                attrs.push_str(", penwidth=2");
            }
            if !n.needed {
                attrs.push_str(", style=dashed, color=grey, fontcolor=grey");
            }
            let _ = writeln!(s, "  {} [{attrs}];", dot_id(&stage_id(n.index)));
        }
        for n in &self.stages {
            for d in &n.deps {
                let Some(from) = source_id(&d.source) else {
                    continue;
                };
                let style = match d.kind {
                    DepKind::From => "",
                    DepKind::CopyFrom => " [style=dashed, label=\"copy\"]",
                    DepKind::MountFrom => " [style=dotted, label=\"mount\"]",
                };
                let _ = writeln!(
                    s,
                    "  {} -> {}{style};",
                    dot_id(&from),
                    dot_id(&stage_id(n.index))
                );
            }
        }
        s.push_str("}\n");
        s
    }

    /// A Mermaid flowchart, for Markdown renderers.
    pub fn to_mermaid(&self) -> String {
        let mut s = String::from("flowchart LR\n");
        for img in self.all_images() {
            let _ = writeln!(s, "  {}([\"{}\"])", img_id(&img), mermaid_text(&img));
        }
        for n in &self.stages {
            let _ = writeln!(
                s,
                "  {}[\"{}\"]",
                stage_id(n.index),
                mermaid_text(&self.label(n))
            );
        }
        for n in &self.stages {
            for d in &n.deps {
                let Some(from) = source_id(&d.source) else {
                    continue;
                };
                let arrow = match d.kind {
                    DepKind::From => "-->",
                    DepKind::CopyFrom => "-. copy .->",
                    DepKind::MountFrom => "-. mount .->",
                };
                let _ = writeln!(s, "  {from} {arrow} {}", stage_id(n.index));
            }
        }
        let skipped: Vec<String> = self.skipped().into_iter().map(stage_id).collect();
        if !skipped.is_empty() {
            s.push_str("  classDef skipped stroke-dasharray: 5 5,color:#888\n");
            let _ = writeln!(s, "  class {} skipped", skipped.join(","));
        }
        let _ = writeln!(s, "  style {} stroke-width:3px", stage_id(self.target));
        s
    }

    fn label(&self, n: &StageNode) -> String {
        let mut l = n.display_name();
        if n.index == self.target {
            l.push_str(" (target)");
        } else if !n.needed {
            l.push_str(" (skipped)");
        }
        l
    }

    fn all_images(&self) -> BTreeSet<String> {
        self.stages
            .iter()
            .flat_map(|s| s.deps.iter())
            .filter_map(|d| match &d.source {
                Source::Image(r) => Some(r.clone()),
                _ => None,
            })
            .collect()
    }
}

/// Add the stage or image dependencies one instruction creates.
fn instruction_deps(
    df: &Dockerfile,
    lex: &crate::expand::ShellLex,
    ins: &Instruction,
    deps: &mut Vec<Dep>,
) -> Result<()> {
    let at = |m: String| Error::new(m, ins.span.start);
    match &ins.command {
        Command::Copy(c) => {
            let Some(from) = &c.from else { return Ok(()) };
            let unexpanded = lex.process_word(from, &Vec::<(String, String)>::new()).ok();
            if unexpanded.as_deref() != Some(from.as_str()) {
                return Err(at("variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround".into()));
            }
            let source = match from.parse::<usize>() {
                Ok(i) if i < df.stages.len() => Source::Stage(i),
                Ok(i) => return Err(at(format!("invalid stage index {i}"))),
                Err(_) => match df.stage_by_name(from) {
                    Some(s) => Source::Stage(s.index),
                    None => Source::Image(from.clone()),
                },
            };
            deps.push(Dep {
                source,
                kind: DepKind::CopyFrom,
                pos: ins.span.start,
            });
        }
        Command::Run(r) => {
            for from in r.mount_sources() {
                let source = match df.stage_by_name(&from) {
                    Some(s) => Source::Stage(s.index),
                    None => Source::Image(from),
                };
                deps.push(Dep {
                    source,
                    kind: DepKind::MountFrom,
                    pos: ins.span.start,
                });
            }
        }
        _ => {}
    }
    Ok(())
}

/// Reject a cycle, naming the first stage found on it.
fn check_cycles(stages: &[StageNode]) -> Result<()> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    /// The position of the first edge, from `root`, of a path that closes
    /// a cycle (a depth-first search with an explicit stack, so a chain of
    /// any length fits).
    fn visit(stages: &[StageNode], root: usize, marks: &mut [Mark]) -> Option<Pos> {
        // (stage, index of its next dependency to look at)
        let mut stack = vec![(root, 0)];
        marks[root] = Mark::OnPath;
        while let Some((i, next)) = stack.last_mut() {
            let i = *i;
            let Some(d) = stages[i].deps.get(*next) else {
                marks[i] = Mark::Done;
                stack.pop();
                continue;
            };
            *next += 1;
            let Source::Stage(j) = d.source else { continue };
            match marks[j] {
                Mark::OnPath => {
                    let (_, root_next) = stack[0];
                    return Some(stages[root].deps[root_next - 1].pos);
                }
                Mark::New => {
                    marks[j] = Mark::OnPath;
                    stack.push((j, 0));
                }
                Mark::Done => {}
            }
        }
        None
    }
    let mut marks = vec![Mark::New; stages.len()];
    for i in 0..stages.len() {
        if marks[i] == Mark::New
            && let Some(pos) = visit(stages, i, &mut marks)
        {
            return Err(Error::new(
                format!(
                    "circular dependency detected on stage: {}",
                    stages[i].display_name()
                ),
                pos,
            ));
        }
    }
    Ok(())
}

fn stage_id(i: usize) -> String {
    format!("stage_{i}")
}

fn img_id(r: &str) -> String {
    let mut id = String::from("img_");
    id.extend(
        r.chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }),
    );
    id
}

fn source_id(s: &Source) -> Option<String> {
    match s {
        Source::Scratch => None,
        Source::Stage(i) => Some(stage_id(*i)),
        Source::Image(r) => Some(img_id(r)),
    }
}

fn dot_id(s: &str) -> String {
    dot_quote(s)
}

fn dot_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn mermaid_text(s: &str) -> String {
    s.replace('"', "#quot;")
}
