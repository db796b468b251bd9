//! Typed instructions: each [`Node`] becomes an [`Instruction`] with its
//! flags checked and its arguments in named fields, as BuildKit's
//! `instructions` package does. Nothing is expanded here; see
//! [`crate::stage`] for `ARG`/`ENV` scoping and expansion.

use serde::Serialize;

use crate::ast::{Node, Span};
use crate::duration::DurationError;
use crate::duration::parse_interval;
use crate::error::{Error, Result};
use crate::expand::ExpandError;
use crate::flags::FlagError;
use crate::flags::{FlagKind, Flags};
use crate::mount::{Mount, MountError, parse_mount};

/// One instruction with where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Instruction {
    pub command: Command,
    pub span: Span,
    /// The text as written (continuations joined), for progress and history.
    pub original: String,
}

/// `KEY=VALUE` of `ENV` and `LABEL`; `legacy` for the `ENV KEY VALUE` form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
    pub legacy: bool,
}

/// One name of an `ARG`, with its default if it has one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArgDecl {
    pub key: String,
    pub default: Option<String>,
}

/// A heredoc body used as a file: a `RUN` script or a `COPY` source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InlineFile {
    pub name: String,
    pub data: String,
    /// Whether `$VAR`s in the body are expanded (unquoted marker).
    pub expand: bool,
    pub chomp: bool,
}

/// The command of `RUN`, `CMD`, `ENTRYPOINT` and `HEALTHCHECK CMD`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommandLine {
    /// Exec form: the argv; shell form: one string for the shell.
    pub args: Vec<String>,
    /// True for shell form (`SHELL` is prepended when it runs).
    pub prepend_shell: bool,
    /// Heredoc bodies (`RUN <<EOF`).
    pub files: Vec<InlineFile>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    Default,
    None,
    Host,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Security {
    Sandbox,
    Insecure,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Run {
    pub command: CommandLine,
    /// `--mount` values as written; expanded and parsed per stage (see [`Run::mounts`]).
    pub mount_specs: Vec<String>,
    pub network: Network,
    pub security: Security,
}

impl Run {
    /// The mounts with each value passed through `expand` (the stage's
    /// variables), checked as BuildKit checks them.
    pub fn mounts(
        &self,
        expand: &mut dyn FnMut(&str) -> std::result::Result<String, ExpandError>,
    ) -> std::result::Result<Vec<Mount>, MountError> {
        self.mount_specs
            .iter()
            .map(|m| parse_mount(m, Some(&mut *expand)))
            .collect()
    }

    /// The `from=` of each mount, unexpanded (stage graph edges).
    pub fn mount_sources(&self) -> Vec<String> {
        self.mount_specs
            .iter()
            .filter_map(|m| parse_mount(m, None).ok())
            .filter_map(|m| m.from)
            .collect()
    }
}

/// Sources and destination of `COPY`/`ADD`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Files {
    pub sources: Vec<String>,
    /// Heredoc sources (`COPY <<EOF /dest`).
    pub inline: Vec<InlineFile>,
    pub dest: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Copy {
    pub files: Files,
    pub from: Option<String>,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub parents: bool,
    pub exclude: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Add {
    pub files: Files,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub keep_git_dir: Option<bool>,
    pub checksum: Option<String>,
    pub unpack: Option<bool>,
    pub exclude: Vec<String>,
}

/// `HEALTHCHECK`: durations in milliseconds (0 = inherit the default).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Healthcheck {
    None,
    Cmd {
        /// `["CMD", argv...]` or `["CMD-SHELL", "command"]`, as in the image config.
        test: Vec<String>,
        interval_ns: u64,
        timeout_ns: u64,
        start_period_ns: u64,
        start_interval_ns: u64,
        retries: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct From {
    /// The image or stage name, unexpanded.
    pub base: String,
    /// `AS name`, lower-cased.
    pub name: Option<String>,
    pub platform: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Onbuild {
    /// The trigger as written, without `ONBUILD` (stored in the image config).
    pub expression: String,
    /// The trigger, typed (checked now so errors point at this line).
    pub trigger: Box<Instruction>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "instruction", rename_all = "lowercase")]
pub enum Command {
    From(From),
    Run(Run),
    Cmd(CommandLine),
    Entrypoint(CommandLine),
    Shell { shell: Vec<String> },
    Label { labels: Vec<KeyValue> },
    Maintainer { maintainer: String },
    Expose { ports: Vec<String> },
    Env { env: Vec<KeyValue> },
    Add(Add),
    Copy(Copy),
    Volume { volumes: Vec<String> },
    User { user: String },
    Workdir { path: String },
    Arg { args: Vec<ArgDecl> },
    Onbuild(Onbuild),
    Stopsignal { signal: String },
    Healthcheck(Healthcheck),
}

impl Command {
    /// The instruction keyword, upper-case.
    pub fn keyword(&self) -> &'static str {
        match self {
            Command::From(_) => "FROM",
            Command::Run(_) => "RUN",
            Command::Cmd(_) => "CMD",
            Command::Entrypoint(_) => "ENTRYPOINT",
            Command::Shell { .. } => "SHELL",
            Command::Label { .. } => "LABEL",
            Command::Maintainer { .. } => "MAINTAINER",
            Command::Expose { .. } => "EXPOSE",
            Command::Env { .. } => "ENV",
            Command::Add(_) => "ADD",
            Command::Copy(_) => "COPY",
            Command::Volume { .. } => "VOLUME",
            Command::User { .. } => "USER",
            Command::Workdir { .. } => "WORKDIR",
            Command::Arg { .. } => "ARG",
            Command::Onbuild(_) => "ONBUILD",
            Command::Stopsignal { .. } => "STOPSIGNAL",
            Command::Healthcheck(_) => "HEALTHCHECK",
        }
    }
}

/// Type one parsed instruction.
pub fn from_node(node: &Node) -> Result<Instruction> {
    let at = |e: InstructionError| Error::new(e.to_string(), node.span.start);
    let command = typed(node).map_err(at)?;
    Ok(Instruction {
        command,
        span: node.span,
        original: node.original.clone(),
    })
}

type R<T> = std::result::Result<T, InstructionError>;

/// An instruction BuildKit would refuse, in its words (the position is
/// added by [`from_node`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InstructionError {
    /// A flag the instruction does not take, or a bad value for one.
    #[error(transparent)]
    Flag(#[from] FlagError),
    /// A `RUN --mount` checked at parse time.
    #[error(transparent)]
    Mount(#[from] MountError),
    /// A `HEALTHCHECK` interval.
    #[error(transparent)]
    Duration(#[from] DurationError),
    /// An `ONBUILD` trigger that is itself wrong.
    #[error("{}", .0.message)]
    Trigger(Box<Error>),
    /// An instruction without its argument.
    #[error("{0} requires at least one argument")]
    NoArgument(&'static str),
    /// An instruction with other than one argument.
    #[error("{0} requires exactly one argument")]
    NotOneArgument(&'static str),
    /// `FROM a AS b` with a stage name BuildKit refuses.
    #[error(
        "invalid name for build stage: {0:?}, name can't start with a number or contain symbols"
    )]
    StageName(String),
    /// `FROM` with two or more than three words.
    #[error("FROM requires either one or three arguments")]
    FromArguments,
    /// `RUN --network=` of no known mode.
    #[error("invalid network mode {0:?}")]
    NetworkMode(String),
    /// `RUN --security=` of no known mode.
    #[error("security {0:?} is not valid")]
    SecurityMode(String),
    /// `SHELL` in shell form.
    #[error("SHELL requires the arguments to be in JSON form, got: {0}")]
    ShellNotJson(String),
    /// `VOLUME ""`.
    #[error("VOLUME specified can not be an empty string")]
    EmptyVolume,
    /// `ARG =x`.
    #[error("ARG names can not be blank")]
    BlankArgName,
    /// `ONBUILD ONBUILD`.
    #[error("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")]
    ChainedOnbuild,
    /// `ONBUILD FROM`, `ONBUILD MAINTAINER`.
    #[error("{0} isn't allowed as an ONBUILD trigger")]
    NotATrigger(String),
    /// A keyword that is no instruction, upper-cased.
    #[error("unknown instruction: {0}")]
    Unknown(String),
    /// `HEALTHCHECK NONE x`.
    #[error("HEALTHCHECK NONE takes no arguments")]
    HealthcheckNoneArguments,
    /// `HEALTHCHECK X` for an `X` other than `CMD`/`NONE`.
    #[error("Unknown type {0:?} in HEALTHCHECK (try CMD)")]
    HealthcheckType(String),
    /// `HEALTHCHECK CMD` alone.
    #[error("Missing command after HEALTHCHECK CMD")]
    HealthcheckNoCommand,
    /// `--retries=` that is no number.
    #[error("invalid value for --retries: {0:?}")]
    Retries(String),
    /// `--retries=` below zero.
    #[error("--retries cannot be negative ({0})")]
    NegativeRetries(i64),
    /// `COPY`/`ADD` with one argument.
    #[error(
        "{0} requires at least two arguments, but only one was provided. Destination could not be determined"
    )]
    NoDestination(&'static str),
    /// `COPY <<EOF`-style destination.
    #[error("{0} cannot accept a heredoc as a destination")]
    HeredocDestination(&'static str),
    /// `LABEL`/`ENV` pairs that do not come in threes.
    #[error("Bad input to {0}, too many arguments")]
    TooManyArguments(&'static str),
    /// `LABEL =x`, `ENV =x`.
    #[error("{0} names can not be blank")]
    BlankName(&'static str),
}

fn flags(node: &Node, allowed: &[(&str, FlagKind)]) -> R<Flags> {
    Ok(Flags::parse(
        &node.keyword.to_uppercase(),
        &node.flags,
        allowed,
    )?)
}

fn typed(node: &Node) -> R<Command> {
    let args = &node.args;
    let kw = node.keyword.as_str();
    Ok(match kw {
        "from" => {
            let f = flags(node, &[("platform", FlagKind::String)])?;
            let name = match args.len() {
                1 => None,
                3 if args[1].eq_ignore_ascii_case("as") => {
                    let name = args[2].to_lowercase();
                    if !valid_stage_name(&name) {
                        return Err(InstructionError::StageName(args[2].clone()));
                    }
                    Some(name)
                }
                _ => return Err(InstructionError::FromArguments),
            };
            Command::From(From {
                base: args.first().cloned().unwrap_or_default(),
                name,
                platform: f.string("platform").map(str::to_string),
            })
        }
        "run" => {
            let f = flags(
                node,
                &[
                    ("mount", FlagKind::Strings),
                    ("network", FlagKind::String),
                    ("security", FlagKind::String),
                ],
            )?;
            let network = match f.string("network").unwrap_or("default") {
                "default" => Network::Default,
                "none" => Network::None,
                "host" => Network::Host,
                other => return Err(InstructionError::NetworkMode(other.to_owned())),
            };
            let security = match f.string("security").unwrap_or("sandbox") {
                "sandbox" => Security::Sandbox,
                "insecure" => Security::Insecure,
                other => return Err(InstructionError::SecurityMode(other.to_owned())),
            };
            let mount_specs = f.strings("mount");
            for m in &mount_specs {
                check_mount_early(m)?;
            }
            Command::Run(Run {
                command: command_line(node),
                mount_specs,
                network,
                security,
            })
        }
        "cmd" => {
            flags(node, &[])?;
            Command::Cmd(command_line(node))
        }
        "entrypoint" => {
            flags(node, &[])?;
            Command::Entrypoint(command_line(node))
        }
        "shell" => {
            flags(node, &[])?;
            if args.is_empty() {
                return Err(at_least_one("SHELL"));
            }
            if !node.json {
                return Err(InstructionError::ShellNotJson(node.original.clone()));
            }
            Command::Shell {
                shell: args.clone(),
            }
        }
        "label" => {
            flags(node, &[])?;
            Command::Label {
                labels: key_values(args, "LABEL")?,
            }
        }
        "env" => {
            flags(node, &[])?;
            Command::Env {
                env: key_values(args, "ENV")?,
            }
        }
        "maintainer" => {
            flags(node, &[])?;
            if args.len() != 1 {
                return Err(exactly_one("MAINTAINER"));
            }
            Command::Maintainer {
                maintainer: args[0].clone(),
            }
        }
        "expose" => {
            flags(node, &[])?;
            if args.is_empty() {
                return Err(at_least_one("EXPOSE"));
            }
            Command::Expose {
                ports: args.clone(),
            }
        }
        "copy" => {
            let f = flags(
                node,
                &[
                    ("chown", FlagKind::String),
                    ("from", FlagKind::String),
                    ("chmod", FlagKind::String),
                    ("link", FlagKind::Bool),
                    ("exclude", FlagKind::Strings),
                    ("parents", FlagKind::Bool),
                ],
            )?;
            let files = files(node, "COPY")?;
            let from = f.string("from").map(str::to_string);
            Command::Copy(Copy {
                files,
                from,
                chown: non_empty(f.string("chown")),
                chmod: non_empty(f.string("chmod")),
                link: f.bool("link").unwrap_or(false),
                parents: f.bool("parents").unwrap_or(false),
                exclude: f.strings("exclude"),
            })
        }
        "add" => {
            let f = flags(
                node,
                &[
                    ("chown", FlagKind::String),
                    ("chmod", FlagKind::String),
                    ("link", FlagKind::Bool),
                    ("keep-git-dir", FlagKind::Bool),
                    ("checksum", FlagKind::String),
                    ("unpack", FlagKind::Bool),
                    ("exclude", FlagKind::Strings),
                ],
            )?;
            Command::Add(Add {
                files: files(node, "ADD")?,
                chown: non_empty(f.string("chown")),
                chmod: non_empty(f.string("chmod")),
                link: f.bool("link").unwrap_or(false),
                keep_git_dir: f.bool("keep-git-dir"),
                checksum: non_empty(f.string("checksum")),
                unpack: f.bool("unpack"),
                exclude: f.strings("exclude"),
            })
        }
        "volume" => {
            flags(node, &[])?;
            if args.is_empty() {
                return Err(at_least_one("VOLUME"));
            }
            let mut volumes = Vec::new();
            for v in args {
                let v = v.trim();
                if v.is_empty() {
                    return Err(InstructionError::EmptyVolume);
                }
                volumes.push(v.to_string());
            }
            Command::Volume { volumes }
        }
        "user" => {
            flags(node, &[])?;
            if args.len() != 1 {
                return Err(exactly_one("USER"));
            }
            Command::User {
                user: args[0].clone(),
            }
        }
        "workdir" => {
            flags(node, &[])?;
            if args.len() != 1 {
                return Err(exactly_one("WORKDIR"));
            }
            Command::Workdir {
                path: args[0].clone(),
            }
        }
        "arg" => {
            flags(node, &[])?;
            if args.is_empty() {
                return Err(at_least_one("ARG"));
            }
            let mut decls = Vec::new();
            for a in args {
                let decl = match a.split_once('=') {
                    Some(("", _)) => return Err(InstructionError::BlankArgName),
                    Some((k, v)) => ArgDecl {
                        key: k.to_string(),
                        default: Some(v.to_string()),
                    },
                    None => ArgDecl {
                        key: a.clone(),
                        default: None,
                    },
                };
                decls.push(decl);
            }
            Command::Arg { args: decls }
        }
        "onbuild" => {
            flags(node, &[])?;
            let Some(sub) = &node.sub else {
                return Err(at_least_one("ONBUILD"));
            };
            let trigger = sub.keyword.to_uppercase();
            match trigger.as_str() {
                "ONBUILD" => {
                    return Err(InstructionError::ChainedOnbuild);
                }
                "MAINTAINER" | "FROM" => {
                    return Err(InstructionError::NotATrigger(trigger));
                }
                _ => {}
            }
            let typed_sub = from_node(sub).map_err(|e| InstructionError::Trigger(Box::new(e)))?;
            let mut expression = strip_keyword(&node.original, "onbuild").to_string();
            for h in &sub.heredocs {
                expression.push('\n');
                expression.push_str(&h.content);
                expression.push_str(&h.name);
            }
            Command::Onbuild(Onbuild {
                expression,
                trigger: Box::new(typed_sub),
            })
        }
        "stopsignal" => {
            flags(node, &[])?;
            if args.len() != 1 {
                return Err(exactly_one("STOPSIGNAL"));
            }
            Command::Stopsignal {
                signal: args[0].clone(),
            }
        }
        "healthcheck" => Command::Healthcheck(healthcheck(node)?),
        other => return Err(InstructionError::Unknown(other.to_uppercase())),
    })
}

fn healthcheck(node: &Node) -> R<Healthcheck> {
    let Some(typ) = node.args.first() else {
        return Err(at_least_one("HEALTHCHECK"));
    };
    let rest = &node.args[1..];
    if typ.eq_ignore_ascii_case("NONE") {
        if !rest.is_empty() {
            return Err(InstructionError::HealthcheckNoneArguments);
        }
        flags(node, &[])?;
        return Ok(Healthcheck::None);
    }
    let f = flags(
        node,
        &[
            ("interval", FlagKind::String),
            ("timeout", FlagKind::String),
            ("start-period", FlagKind::String),
            ("start-interval", FlagKind::String),
            ("retries", FlagKind::String),
        ],
    )?;
    if !typ.eq_ignore_ascii_case("CMD") {
        return Err(InstructionError::HealthcheckType(typ.to_owned()));
    }
    if rest.is_empty() {
        return Err(InstructionError::HealthcheckNoCommand);
    }
    let mut test = vec![if node.json { "CMD" } else { "CMD-SHELL" }.to_string()];
    if node.json {
        test.extend(rest.iter().cloned());
    } else {
        test.push(rest.join(" "));
    }
    let interval = |name: &str| parse_interval(name, f.string(name).unwrap_or(""));
    let retries = match f.string("retries").filter(|s| !s.is_empty()) {
        None => 0,
        Some(s) => {
            let n: i64 = s
                .parse()
                .map_err(|_| InstructionError::Retries(s.to_owned()))?;
            if n < 0 {
                return Err(InstructionError::NegativeRetries(n));
            }
            u32::try_from(n).map_err(|_| InstructionError::Retries(s.to_owned()))?
        }
    };
    Ok(Healthcheck::Cmd {
        test,
        interval_ns: interval("interval")?,
        timeout_ns: interval("timeout")?,
        start_period_ns: interval("start-period")?,
        start_interval_ns: interval("start-interval")?,
        retries,
    })
}

/// BuildKit's `^[a-z][a-z0-9-_.]*$`.
pub fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some('a'..='z'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '-' | '_' | '.'))
}

fn command_line(node: &Node) -> CommandLine {
    let args = if node.json || node.args.is_empty() {
        node.args.clone()
    } else {
        vec![node.args.join(" ")]
    };
    CommandLine {
        args,
        prepend_shell: !node.json,
        files: node
            .heredocs
            .iter()
            .map(|h| InlineFile {
                name: h.name.clone(),
                data: h.content.clone(),
                expand: h.expand,
                chomp: h.chomp,
            })
            .collect(),
    }
}

fn files(node: &Node, keyword: &'static str) -> R<Files> {
    let args = &node.args;
    if args.len() < 2 {
        return Err(InstructionError::NoDestination(keyword));
    }
    let (srcs, dest) = args.split_at(args.len() - 1);
    let dest = dest[0].clone();
    if heredoc_marker(&dest).is_some() {
        return Err(InstructionError::HeredocDestination(keyword));
    }
    let mut sources = Vec::new();
    let mut inline = Vec::new();
    for src in srcs {
        match heredoc_marker(src) {
            Some(name) => {
                let doc = node.heredocs.iter().find(|h| h.name == name);
                let (data, expand, chomp) = doc
                    .map(|h| (h.content.clone(), h.expand, h.chomp))
                    .unwrap_or_default();
                inline.push(InlineFile {
                    name,
                    data,
                    expand,
                    chomp,
                });
            }
            None => sources.push(src.clone()),
        }
    }
    Ok(Files {
        sources,
        inline,
        dest,
    })
}

/// The name in a `<<NAME`, `<<-NAME`, `<<"NAME"` word, if it is one
/// (BuildKit's `MustParseHeredoc`: a malformed marker is not a heredoc).
fn heredoc_marker(word: &str) -> Option<String> {
    crate::heredoc::parse_heredoc(word)
        .ok()
        .flatten()
        .map(|h| h.name)
}

fn key_values(args: &[String], keyword: &'static str) -> R<Vec<KeyValue>> {
    if args.is_empty() {
        return Err(at_least_one(keyword));
    }
    if !args.len().is_multiple_of(3) {
        return Err(InstructionError::TooManyArguments(keyword));
    }
    let mut out = Vec::new();
    for t in args.chunks(3) {
        if t[0].is_empty() {
            return Err(InstructionError::BlankName(keyword));
        }
        out.push(KeyValue {
            key: t[0].clone(),
            value: t[1].clone(),
            legacy: t[2].is_empty(),
        });
    }
    Ok(out)
}

/// Parse-time mount check: `from=` takes no variables; a spec with no `$`
/// at all is checked fully now so its error points at this line.
fn check_mount_early(spec: &str) -> R<()> {
    parse_mount(spec, None)?;
    if !spec.contains('$') {
        let mut same = |v: &str| Ok(v.to_string());
        parse_mount(spec, Some(&mut same))?;
    }
    Ok(())
}

fn strip_keyword<'a>(original: &'a str, keyword: &str) -> &'a str {
    let t = original.trim_start();
    match t.get(..keyword.len()) {
        Some(head) if head.eq_ignore_ascii_case(keyword) => t[keyword.len()..].trim_start(),
        _ => t,
    }
}

fn non_empty(v: Option<&str>) -> Option<String> {
    v.filter(|s| !s.is_empty()).map(str::to_string)
}

fn at_least_one(keyword: &'static str) -> InstructionError {
    InstructionError::NoArgument(keyword)
}

fn exactly_one(keyword: &'static str) -> InstructionError {
    InstructionError::NotOneArgument(keyword)
}
