//! `hoist graph`: the stage DAG for a target, as text, dot, mermaid or
//! JSON; with `--steps`, the plan's step graph (every step's op and
//! inputs, base images resolved as a build resolves them).

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
    /// Print the build's step graph (what `hoist build` runs: sources,
    /// exec, file, mkdir and metadata steps and their inputs) instead of
    /// the stage graph. Base images are read from the store, pulled when
    /// missing.
    #[arg(long)]
    steps: bool,
    /// With `--steps`: a named context, `NAME=DIR|docker-image://REF|oci-layout://DIR`,
    /// as `hoist build --build-context`.
    #[arg(long = "build-context", value_name = "NAME=VALUE")]
    build_contexts: Vec<String>,
    /// Where `--steps` resolves base images.
    #[command(flatten)]
    registry: super::registry::RegistryArgs,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Dot,
    Mermaid,
    Json,
}

pub fn run(args: Args, store: &dyn Fn() -> Result<hoist_engine::store::Store>) -> Result<()> {
    let src = input::read(args.file.as_deref())?;
    let ast = hoist_dockerfile::parse(&src.text).map_err(|e| src.error(e))?;
    src.warn(&ast.warnings);
    let df = hoist_dockerfile::Dockerfile::from_ast(&ast).map_err(|e| src.error(e))?;
    let mut opts = BuildOptions {
        build_args: input::build_args(&args.build_args)?,
        target: args.target.clone(),
        ..Default::default()
    };
    if let Some(p) = &args.platform {
        opts.target_platform = Platform::parse(p).map_err(anyhow::Error::msg)?;
    }
    let graph = StageGraph::build(&df, &opts).map_err(|e| src.error(e))?;
    if args.steps {
        return steps(&args, &src, &df, &opts, &store()?);
    }
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

/// `--steps`: the plan, drawn.
fn steps(
    args: &Args,
    src: &input::Source,
    df: &hoist_dockerfile::Dockerfile,
    front: &BuildOptions,
    store: &hoist_engine::store::Store,
) -> Result<()> {
    use hoist_engine::plan::render;
    let client = args.registry.client()?;
    let resolver = hoist_engine::executor::base::BaseResolver {
        store,
        client: Some((&client, super::registry::runtime()?.handle())),
        always_pull: false,
        lazy: true,
    };
    let named = super::build_flags::named_contexts(&args.build_contexts)?;
    let opts = hoist_engine::plan::PlanOptions {
        front,
        named_contexts: &named,
        network: hoist_engine::executor::RunNetwork::Private,
    };
    let plan = hoist_engine::executor::plan(store, resolver, df, opts)
        .map_err(|e| super::build::located(src, e))?;
    match args.format {
        Format::Text => crate::report::out!("{}", render::text(&plan)),
        Format::Dot => crate::report::out!("{}", render::dot(&plan)),
        Format::Mermaid => crate::report::out!("{}", render::mermaid(&plan)),
        Format::Json => anyhow::bail!("--steps prints text, dot or mermaid"),
    }
    Ok(())
}
