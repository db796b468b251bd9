//! `hoist parse`: BuildKit's AST dump, or the typed stages as JSON.

use anyhow::Result;
use clap::ValueEnum;

use super::input;

#[derive(clap::Args)]
pub struct Args {
    /// The Dockerfile (`-` for stdin).
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<String>,
    /// `dump`: BuildKit's `Node.Dump()`; `json`: typed stages with spans.
    #[arg(long, value_enum, default_value_t = Format::Dump)]
    format: Format,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Dump,
    Json,
}

pub fn run(args: Args) -> Result<()> {
    let src = input::read(args.file.as_deref())?;
    let ast = hoist_dockerfile::parse(&src.text).map_err(|e| src.error(e))?;
    src.warn(&ast.warnings);
    match args.format {
        Format::Dump => crate::report::outln!("{}", ast.dump()),
        Format::Json => {
            let df = hoist_dockerfile::Dockerfile::from_ast(&ast).map_err(|e| src.error(e))?;
            crate::report::outln!("{}", serde_json::to_string_pretty(&df)?);
        }
    }
    Ok(())
}
