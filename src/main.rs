//! The `hoist` command line: flags in, library calls, errors out.
//! Flags follow `docker buildx build` where the two overlap.

mod commands;
mod report;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "hoist",
    version,
    about = "A daemonless container image builder for Dockerfiles"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Parse a Dockerfile and print its syntax tree or its typed stages.
    Parse(commands::parse::Args),
    /// Show the stage graph: what the target needs and what it skips.
    Graph(commands::graph::Args),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Parse(args) => commands::parse::run(args),
        Cmd::Graph(args) => commands::graph::run(args),
    };
    if let Err(err) = result {
        report::error(&err);
        std::process::exit(1);
    }
}
