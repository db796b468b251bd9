//! `hoist graph`: the stage DAG for a target, as text, dot, mermaid or JSON.

use anyhow::Result;
use clap::ValueEnum;
use hoist_dockerfile::graph::Source;
use hoist_dockerfile::{BuildOptions, Platform, StageGraph};

use super::input;

#[derive(clap::Args)]
pub struct Args {
    /// The Dockerfile (`-` for stdin).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<String>,
    /// The stage to build (default: the last).
    #[arg(long)]
    target: Option<String>,
    /// A build arg, `K=V`, or `K` to take it from the environment.
    #[arg(long = "build-arg", value_name = "K=V")]
    build_args: Vec<String>,
    /// The target platform (default: this machine's).
    #[arg(long)]
    platform: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Dot,
    Mermaid,
    Json,
}

pub fn run(args: Args) -> Result<()> {
    let src = input::read(args.file.as_deref())?;
    let ast = hoist_dockerfile::parse(&src.text).map_err(|e| src.error(e))?;
    src.warn(&ast.warnings);
    let df = hoist_dockerfile::Dockerfile::from_ast(&ast).map_err(|e| src.error(e))?;
    let mut opts = BuildOptions {
        build_args: input::build_args(&args.build_args)?,
        target: args.target,
        ..Default::default()
    };
    if let Some(p) = &args.platform {
        opts.target_platform = Platform::parse(p).map_err(anyhow::Error::msg)?;
    }
    let graph = StageGraph::build(&df, &opts).map_err(|e| src.error(e))?;
    match args.format {
        Format::Text => crate::report::out!("{}", text(&graph)),
        Format::Dot => crate::report::out!("{}", graph.to_dot()),
        Format::Mermaid => crate::report::out!("{}", graph.to_mermaid()),
        Format::Json => crate::report::outln!("{}", serde_json::to_string_pretty(&graph)?),
    }
    Ok(())
}

fn text(g: &StageGraph) -> String {
    let mut out = String::new();
    let order = g.needed_order();
    out.push_str(&format!("target: {}\n", g.stages[g.target].display_name()));
    out.push_str("build order:\n");
    for i in &order {
        let s = &g.stages[*i];
        let base = match s.base() {
            Source::Scratch => "scratch".to_string(),
            Source::Stage(j) => format!("stage {}", g.stages[*j].display_name()),
            Source::Image(r) => format!("image {r}"),
        };
        out.push_str(&format!("  {} (from {base})\n", s.display_name()));
        for d in s.deps.iter().skip(1) {
            let what = match &d.source {
                Source::Scratch => continue,
                Source::Stage(j) => format!("stage {}", g.stages[*j].display_name()),
                Source::Image(r) => format!("image {r}"),
            };
            out.push_str(&format!("    uses {what} (line {})\n", d.pos.line));
        }
    }
    let skipped = g.skipped();
    if !skipped.is_empty() {
        let names: Vec<String> = skipped
            .iter()
            .map(|i| g.stages[*i].display_name())
            .collect();
        out.push_str(&format!("skipped: {}\n", names.join(", ")));
    }
    out
}
