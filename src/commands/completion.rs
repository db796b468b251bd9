//! Help generated from the clap definition in `main.rs`, so it cannot drift
//! from the flags: `hoist completion SHELL` prints a completion script,
//! `hoist man` writes roff man pages (hidden: a packaging step, not a
//! daily command), and the hidden `hoist docs-reference` writes the Markdown
//! pages in `docs/reference/` (see `docs_reference.rs`).
//!
//! `main.rs` flattens [`DocsCmd`] into its subcommands and hands over the
//! whole `Cli` as a [`clap::Command`].

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Command, Subcommand};
use clap_complete::Shell;

use super::docs_reference;

#[derive(Subcommand)]
pub enum DocsCmd {
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(
        long_about = "Print a shell completion script (bash, zsh, fish, elvish, powershell).\n\n\
                      bash: `hoist completion bash > /etc/bash_completion.d/hoist` (or \
                      `source <(hoist completion bash)` in ~/.bashrc).\n\n\
                      zsh: `hoist completion zsh > \"${fpath[1]}/_hoist\"`.\n\n\
                      fish: `hoist completion fish > ~/.config/fish/completions/hoist.fish`."
    )]
    Completion(CompletionArgs),
    /// Write man pages: hoist.1 and one page per subcommand (hoist-build.1, ...).
    #[command(hide = true)]
    Man(ManArgs),
    /// Write the Markdown command reference: hoist.md and one page per
    /// subcommand (hoist-build.md, ...).
    #[command(hide = true, name = "docs-reference")]
    DocsReference(ReferenceArgs),
}

#[derive(clap::Args)]
pub struct CompletionArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: Shell,
}

#[derive(clap::Args)]
pub struct ManArgs {
    /// Write hoist.1 and one page per subcommand into DIR (created if
    /// missing); without it, print hoist.1 to stdout.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct ReferenceArgs {
    /// Where the pages go; `hoist*.md` files there that the CLI no longer
    /// has are removed.
    #[arg(long, value_name = "DIR")]
    dir: PathBuf,
}

/// Runs one of the generating subcommands on `cli`, the whole command line.
pub fn run(cmd: DocsCmd, cli: Command) -> Result<()> {
    match cmd {
        DocsCmd::Completion(args) => completion(args.shell, cli),
        DocsCmd::Man(args) => man(args.dir.as_deref(), cli),
        DocsCmd::DocsReference(args) => docs_reference::write_dir(cli, &args.dir),
    }
}

fn completion(shell: Shell, mut cli: Command) -> Result<()> {
    let name = cli.get_name().to_owned();
    // Rendered into memory first: clap_complete panics on a failed write
    // (`hoist completion bash | head`), stdout's errors here are ours.
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cli, name, &mut script);
    write_stdout(&script)
}

fn man(dir: Option<&Path>, cli: Command) -> Result<()> {
    let Some(dir) = dir else {
        let mut page = Vec::new();
        // As generate_to does: no `help` subcommand, no hoist-help(1).
        clap_mangen::Man::new(cli.disable_help_subcommand(true))
            .render(&mut page)
            .context("cannot render the man page")?;
        return write_stdout(&page);
    };
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    clap_mangen::generate_to(cli, dir)
        .with_context(|| format!("cannot write man pages into {}", dir.display()))
}

fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .context("cannot write to stdout")
}
