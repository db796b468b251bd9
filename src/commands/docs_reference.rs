//! The Markdown command reference (`docs/reference/`), written from clap's
//! own view of the CLI: one page per visible subcommand (`hoist.md` is the
//! index, then `hoist-build.md`, `hoist-store-check.md`, ...), each with its
//! usage line, its arguments and options with help text, value names,
//! defaults, possible values and environment variables.
//!
//! The output depends on nothing but the `Command` (no terminal width, no
//! version number), so `tests/cli_docs.rs` can compare it byte for byte
//! with the committed pages.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use clap::{Arg, ArgAction, Command};

/// The command that rewrites `docs/reference/`, named on every page and by
/// the test that finds them stale.
pub const REGENERATE: &str = "cargo run -- docs-reference --dir docs/reference";

/// Every page for `cli`: (file name, Markdown), the index first.
pub fn pages(cli: Command) -> Vec<(String, String)> {
    let mut cli = cli.disable_help_subcommand(true);
    let name = cli.get_name().to_owned();
    cli.set_bin_name(name);
    cli.build();
    let globals: Vec<&Arg> = cli
        .get_arguments()
        .filter(|a| shown(a) && a.is_global_set())
        .collect();
    let mut out = Vec::new();
    collect(&cli, &globals, true, &mut out);
    out
}

/// Writes [`pages`] into `dir` and removes `hoist.md`/`hoist-*.md` files
/// there that are not among them (a subcommand that went away).
pub fn write_dir(cli: Command, dir: &Path) -> Result<()> {
    let pages = pages(cli);
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let ours = name == "hoist.md" || (name.starts_with("hoist-") && name.ends_with(".md"));
        if ours && !pages.iter().any(|(n, _)| *n == name) {
            let path = entry.path();
            std::fs::remove_file(&path)
                .with_context(|| format!("cannot remove {}", path.display()))?;
        }
    }
    for (name, text) in &pages {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

fn collect(cmd: &Command, globals: &[&Arg], root: bool, out: &mut Vec<(String, String)>) {
    out.push((format!("{}.md", file_stem(cmd)), page(cmd, globals, root)));
    for sub in visible_subcommands(cmd) {
        collect(sub, globals, false, out);
    }
}

/// `hoist`, `hoist-build`, `hoist-store-check` (clap's display name once
/// built, as clap_mangen names its pages).
fn file_stem(cmd: &Command) -> &str {
    cmd.get_display_name().unwrap_or_else(|| cmd.get_name())
}

/// `hoist store check`.
fn title(cmd: &Command) -> &str {
    cmd.get_bin_name().unwrap_or_else(|| cmd.get_name())
}

fn visible_subcommands(cmd: &Command) -> impl Iterator<Item = &Command> {
    cmd.get_subcommands().filter(|s| !s.is_hide_set())
}

/// Hidden arguments and clap's own `--help` stay out of the reference.
fn shown(arg: &Arg) -> bool {
    !arg.is_hide_set()
        && !matches!(
            arg.get_action(),
            ArgAction::Help | ArgAction::HelpShort | ArgAction::HelpLong
        )
}

fn page(cmd: &Command, globals: &[&Arg], root: bool) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "<!-- Generated from hoist's CLI definition; do not edit. Regenerate: {REGENERATE} -->\n"
    );
    let _ = writeln!(md, "# {}\n", title(cmd));
    if let Some(about) = cmd.get_long_about().or_else(|| cmd.get_about()) {
        let _ = writeln!(md, "{}\n", about.to_string().trim_end());
    }
    let usage = cmd.clone().render_usage().to_string();
    let usage = usage.strip_prefix("Usage: ").unwrap_or(&usage);
    let _ = writeln!(md, "```text\n{}\n```\n", usage.trim_end());

    let positionals: Vec<&Arg> = cmd.get_positionals().filter(|a| shown(a)).collect();
    if !positionals.is_empty() {
        md.push_str("## Arguments\n\n");
        for arg in positionals {
            describe(&mut md, arg);
        }
    }
    let options: Vec<&Arg> = cmd
        .get_arguments()
        .filter(|a| !a.is_positional() && shown(a) && (root || !a.is_global_set()))
        .collect();
    if !options.is_empty() {
        md.push_str("## Options\n\n");
        for arg in options {
            describe(&mut md, arg);
        }
    }
    if !root && !globals.is_empty() {
        let names: Vec<String> = globals.iter().map(|a| format!("`{}`", flag(a))).collect();
        let _ = writeln!(
            md,
            "## Global options\n\n{} (see [hoist](hoist.md#options)).\n",
            names.join(", ")
        );
    }
    let subs: Vec<&Command> = visible_subcommands(cmd).collect();
    if !subs.is_empty() {
        md.push_str("## Subcommands\n\n| command | what it does |\n| --- | --- |\n");
        for sub in subs {
            let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
            let _ = writeln!(
                md,
                "| [`{}`]({}.md) | {} |",
                title(sub),
                file_stem(sub),
                cell(&about)
            );
        }
        md.push('\n');
    }
    // One trailing newline, none of the blank lines the sections leave.
    let end = md.trim_end().len();
    md.truncate(end);
    md.push('\n');
    md
}

/// One argument: a heading with its spellings and value, its help, then
/// what clap knows about its values.
fn describe(md: &mut String, arg: &Arg) {
    let _ = writeln!(md, "### `{}`\n", flag(arg));
    if let Some(help) = arg.get_long_help().or_else(|| arg.get_help()) {
        let _ = writeln!(md, "{}\n", help.to_string().trim_end());
    }
    let mut facts = Vec::new();
    let aliases: Vec<String> = arg
        .get_visible_aliases()
        .unwrap_or_default()
        .iter()
        .map(|a| format!("`--{a}`"))
        .chain(
            arg.get_visible_short_aliases()
                .unwrap_or_default()
                .iter()
                .map(|c| format!("`-{c}`")),
        )
        .collect();
    if !aliases.is_empty() {
        facts.push(format!("Aliases: {}", aliases.join(", ")));
    }
    if arg.is_global_set() {
        facts.push("Global: applies to every subcommand.".to_owned());
    }
    if arg.is_required_set() {
        facts.push("Required.".to_owned());
    }
    if repeatable(arg) {
        facts.push("Repeatable.".to_owned());
    }
    if takes_values(arg) {
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| format!("`{}`", v.to_string_lossy()))
            .collect();
        if !defaults.is_empty() && !arg.is_hide_default_value_set() {
            facts.push(format!("Default: {}", defaults.join(", ")));
        }
        if !arg.is_hide_possible_values_set() {
            let values: Vec<String> = arg
                .get_possible_values()
                .iter()
                .filter(|v| !v.is_hide_set())
                .map(|v| match v.get_help() {
                    Some(help) => format!("`{}` ({help})", v.get_name()),
                    None => format!("`{}`", v.get_name()),
                })
                .collect();
            if !values.is_empty() {
                facts.push(format!("Possible values: {}", values.join(", ")));
            }
        }
    }
    if let Some(env) = arg.get_env().filter(|_| !arg.is_hide_env_set()) {
        facts.push(format!("Environment: `{}`", env.to_string_lossy()));
    }
    for fact in &facts {
        let _ = writeln!(md, "- {fact}");
    }
    if !facts.is_empty() {
        md.push('\n');
    }
}

fn takes_values(arg: &Arg) -> bool {
    arg.get_num_args().is_some_and(|n| n.takes_values())
}

fn repeatable(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::Append | ArgAction::Count)
        || (arg.is_positional() && arg.get_num_args().is_some_and(|n| n.max_values() > 1))
}

/// `-t`, `--tag <TAG>` as one string: `-t, --tag <TAG>`; a positional as
/// `<NAME>` (required) or `[NAME]`.
fn flag(arg: &Arg) -> String {
    let names = value_names(arg);
    if arg.is_positional() {
        let dots = if repeatable(arg) { "..." } else { "" };
        return if arg.is_required_set() {
            format!("<{names}>{dots}")
        } else {
            format!("[{names}]{dots}")
        };
    }
    let mut spelled = Vec::new();
    if let Some(short) = arg.get_short() {
        spelled.push(format!("-{short}"));
    }
    if let Some(long) = arg.get_long() {
        spelled.push(format!("--{long}"));
    }
    let mut s = spelled.join(", ");
    if takes_values(arg) {
        let optional = arg.get_num_args().is_some_and(|n| n.min_values() == 0);
        let eq = if arg.is_require_equals_set() {
            "="
        } else {
            " "
        };
        if optional {
            let _ = write!(s, "[{eq}<{names}>]");
        } else {
            let _ = write!(s, "{eq}<{names}>");
        }
    }
    s
}

/// `VALUE_NAME` (or several, space-separated); clap's default is the id in
/// capitals.
fn value_names(arg: &Arg) -> String {
    match arg.get_value_names() {
        Some(names) if !names.is_empty() => names
            .iter()
            .map(|n| n.to_string())
            .collect::<Vec<_>>()
            .join("> <"),
        _ => arg.get_id().as_str().to_uppercase(),
    }
}

/// Text made safe for one Markdown table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}
