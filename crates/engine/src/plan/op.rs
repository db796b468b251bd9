//! The plan's ops: plain values with everything the Dockerfile says already
//! worked out (variables expanded, `SHELL` and heredocs turned into argv,
//! `--mount` specs parsed, stage names turned into step inputs, history
//! text written). The executor runs them without knowing where they came
//! from; BuildKit's LLB ops play this part.

use std::path::PathBuf;

use crate::executor::SourceRange;
use crate::executor::state::ImageState;
use crate::image::{HealthConfig, Platform};

/// One step of a plan: an op and where it came from.
#[derive(Debug, Clone)]
pub struct Step {
    pub op: Op,
    /// The stage's display name (progress, `--no-cache-filter`, `--explain`).
    pub stage: String,
    /// The instruction's lines in the Dockerfile (line 0: none).
    pub range: SourceRange,
    /// What a progress view calls the step (expanded, as BuildKit names it).
    pub text: String,
}

impl Step {
    /// The 1-based line of its instruction (0: none).
    pub fn line(&self) -> usize {
        self.range.line
    }
}

/// What a step does.
#[derive(Debug, Clone)]
pub enum Op {
    /// Where a stage starts (or an image `COPY --from` reads).
    Source(SourceOp),
    /// A `RUN`.
    Exec(ExecOp),
    /// A `COPY` or `ADD`.
    File(FileOp),
    /// A `WORKDIR`: the directories it needs, and the config's working dir.
    Mkdir(MkdirOp),
    /// Metadata instructions in a row: config changes and their history
    /// lines (one step, so a stage of many `ENV`s costs one copy of the
    /// config, not one per line).
    Meta(Vec<MetaOp>),
}

impl Op {
    /// The op's kind, as `hoist graph` names it.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Source(_) => "source",
            Op::Exec(_) => "exec",
            Op::File(_) => "file",
            Op::Mkdir(_) => "mkdir",
            Op::Meta(_) => "meta",
        }
    }
}

/// A filesystem to start from, already resolved by the planner (BuildKit
/// resolves an image's config before it lowers the stage, too).
#[derive(Debug, Clone)]
pub struct SourceOp {
    /// What it is, as progress shows it: `scratch`, `docker.io/library/x:1`,
    /// `oci-layout://DIR`.
    pub name: String,
    pub platform: Platform,
    /// The image: its layers, config and key.
    pub state: Box<ImageState>,
}

/// Where a `COPY --from` or a bind mount reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FromInput {
    /// The build context.
    Context,
    /// A named local context (`--build-context NAME=DIR`), read with its
    /// own `.dockerignore`.
    Dir(PathBuf),
    /// The step's input of this index (a stage or an image), read as a
    /// filesystem.
    Input(usize),
}

/// A `RUN --mount`, parsed and expanded, with what its `from=` names.
#[derive(Debug, Clone)]
pub struct ExecMount {
    pub spec: hoist_dockerfile::mount::Mount,
    pub from: FromInput,
}

/// A heredoc run as a script (`/dev/pipes/NAME`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    pub name: String,
    pub data: String,
}

/// A `RUN`: everything its process gets.
#[derive(Debug, Clone)]
pub struct ExecOp {
    pub args: Vec<String>,
    pub script: Option<Script>,
    /// `KEY=VALUE`: the image's env, then the stage's build args it does
    /// not set, and a default `PATH`.
    pub env: Vec<String>,
    /// Proxy build args: in the step's env, never in its key.
    pub proxy_env: Vec<(String, String)>,
    pub cwd: String,
    pub user: String,
    pub network: crate::ops::run::Network,
    pub security: crate::ops::run::Security,
    pub mounts: Vec<ExecMount>,
    /// `BUILDKIT_SANDBOX_HOSTNAME`.
    pub hostname: Option<String>,
    /// The history line (`RUN … # buildkit`).
    pub history: String,
}

/// An inline file (`COPY <<EOF`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inline {
    pub name: String,
    pub data: String,
    pub expand: bool,
    pub chomp: bool,
}

/// `ADD`'s own options.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AddOptions {
    pub keep_git_dir: Option<bool>,
    pub checksum: Option<String>,
    pub unpack: Option<bool>,
}

/// A `COPY` or `ADD`.
#[derive(Debug, Clone)]
pub struct FileOp {
    /// `Some` for `ADD`.
    pub add: Option<AddOptions>,
    pub sources: Vec<String>,
    pub inline: Vec<Inline>,
    pub dest: String,
    /// `--from=` as written (expanded): part of the key and of errors.
    pub from_name: Option<String>,
    /// What `--from` names: `stage NAME`, `image NAME`, `build context NAME`.
    pub from_place: Option<String>,
    pub from: FromInput,
    pub chown: Option<String>,
    pub chmod: Option<String>,
    pub link: bool,
    pub parents: bool,
    pub exclude: Vec<String>,
    /// The working directory the destination resolves against.
    pub workdir: String,
    /// The history line (`COPY … # buildkit`).
    pub history: String,
}

/// A `WORKDIR`.
#[derive(Debug, Clone)]
pub struct MkdirOp {
    /// The normalised absolute path.
    pub path: String,
    /// The `USER` in force: owner of the directories it makes.
    pub user: Option<String>,
}

/// A metadata instruction.
#[derive(Debug, Clone)]
pub struct MetaOp {
    pub change: ConfigChange,
    /// The history line; `None` for `ONBUILD` (BuildKit writes none).
    pub history: Option<String>,
}

/// What a metadata instruction does to the image config, as plain values.
#[derive(Debug, Clone, PartialEq)]
pub enum ConfigChange {
    /// `ARG`: nothing (a history line only).
    None,
    Env(Vec<(String, String)>),
    Labels(Vec<(String, String)>),
    Author(String),
    ExposedPorts(Vec<String>),
    User(String),
    Volumes(Vec<String>),
    StopSignal(String),
    Shell(Vec<String>),
    Cmd(Vec<String>),
    /// `clear_cmd`: the stage set no `CMD` before it, so an inherited one goes.
    Entrypoint {
        args: Vec<String>,
        clear_cmd: bool,
    },
    Healthcheck(HealthConfig),
    OnBuild(String),
    /// A stage's base had `ONBUILD` triggers: they ran, and are gone.
    ClearOnBuild,
}
