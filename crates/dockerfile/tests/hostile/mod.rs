//! Hostile Dockerfiles, generated, and the whole front end to run them
//! through: shared by `tests/bounds.rs`, `benches/hostile.rs` and
//! `examples/hostile.rs` (which include this file by path).

#![allow(dead_code)]

use hoist_dockerfile::{
    BuildOptions, Dockerfile, GlobalScope, Instruction, StageGraph, StageScope, load,
};

/// The instruction kinds a many-line Dockerfile repeats.
pub const KINDS: [&str; 4] = ["ENV", "ARG", "LABEL", "WORKDIR"];

/// `FROM scratch` then `n` lines of `kind`, each with its own name:
/// `ENV e7=v7`, `ARG a7=v7`, `LABEL l7=v7`, `WORKDIR w7` (relative, so
/// each adds to the one before in the engine).
pub fn many_lines(kind: &str, n: usize) -> String {
    let mut s = String::from("FROM scratch\n");
    for i in 0..n {
        let line = match kind {
            "ENV" => format!("ENV e{i}=v{i}\n"),
            "ARG" => format!("ARG a{i}=v{i}\n"),
            "LABEL" => format!("LABEL l{i}=v{i}\n"),
            "WORKDIR" => format!("WORKDIR w{i}\n"),
            other => panic!("no lines of {other}"),
        };
        s.push_str(&line);
    }
    s
}

/// `n` stages, each `FROM` the one before: `FROM s6 AS s7`.
pub fn chain(n: usize) -> String {
    let mut s = String::from("FROM scratch AS s0\n");
    for i in 1..n {
        s.push_str(&format!("FROM s{} AS s{i}\n", i - 1));
    }
    s
}

/// A chain for `--call=outline`: `globals` global ARGs, each made of the
/// one before, then `stages` stages, the first `FROM` an image named by the
/// last global, each other built on the one before, with an `ARG` made of a global and a `COPY --from` of the stage two back.
/// BuildKit's way (each stage copying its base's capture) is quadratic here.
pub fn outline_chain(stages: usize, globals: usize) -> String {
    let mut s = String::from("ARG G0=x\n");
    for i in 1..globals {
        s.push_str(&format!("ARG G{i}=v{i}${{G{}}}\n", i - 1));
    }
    s.push_str(&format!("FROM img${{G{}}} AS s0\n", globals - 1));
    for i in 1..stages {
        s.push_str(&format!(
            "FROM s{} AS s{i}\nARG A{i}=${{G{}}}\nCOPY --from=s{} /f /f{i}\n",
            i - 1,
            i % globals,
            i.saturating_sub(2)
        ));
    }
    s
}

/// The expansion bomb: `KW a0=xxxxxxxxxx`, then `levels` lines
/// `KW aN=${aN-1}` × 10, each ten times longer than the one before
/// (`keyword` is `ARG` or `ENV`). Line `N + 2` holds `aN`.
pub fn bomb(keyword: &str, levels: usize) -> String {
    let mut s = format!("FROM scratch\n{keyword} a0=xxxxxxxxxx\n");
    for i in 1..=levels {
        let word = format!("${{a{}}}", i - 1).repeat(10);
        s.push_str(&format!("{keyword} a{i}={word}\n"));
    }
    s
}

/// What the front end made of a Dockerfile.
pub struct Loaded {
    pub df: Dockerfile,
    pub graph: StageGraph,
    /// Every stage's instructions, expanded.
    pub expanded: Vec<Vec<Instruction>>,
    /// The last stage's variables, in order.
    pub vars: Vec<(String, String)>,
}

/// Everything the front end does with a Dockerfile before the engine:
/// load, the global scope, the stage graph, and each stage's scope over
/// its instructions.
pub fn front_end(text: &str) -> hoist_dockerfile::Result<Loaded> {
    let df = load(text)?;
    let opts = BuildOptions::default();
    let graph = StageGraph::build(&df, &opts)?;
    let globals = GlobalScope::new(&df, &opts)?;
    let mut expanded = Vec::new();
    let mut vars = Vec::new();
    for stage in &df.stages {
        hoist_dockerfile::stage::resolve_from(&df, stage, &globals)?;
        let mut scope = StageScope::new(&df, &globals, &opts, &[]);
        let mut out = Vec::with_capacity(stage.instructions.len());
        for ins in &stage.instructions {
            out.push(scope.apply(ins)?);
        }
        expanded.push(out);
        vars = scope.vars().to_vec();
    }
    Ok(Loaded {
        df,
        graph,
        expanded,
        vars,
    })
}
