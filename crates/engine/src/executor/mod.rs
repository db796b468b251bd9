//! The build half of the engine: the executor of a plan's ops.
//!
//! - [`solve`]: `build` (lower the Dockerfile with `crate::plan`, solve
//!   the step graph with `crate::solve`) and the executor of each op,
//!   steps cached by key; `run` (`RUN`), `copy` (`COPY`/`ADD`), `mkdir`
//!   (`WORKDIR`; `workdir`: what earlier `WORKDIR`s of a stage know of its
//!   directories).
//! - [`base`]: `FROM` (scratch, store, pull, earlier stage).
//! - [`config`]: what metadata instructions do to the image config and history.
//! - [`key`]: cache keys (versioned canonical encoding).
//! - [`snapshot`]: parent filesystems materialised by ChainID when a step needs one.
//! - [`state`]: the image after each step; [`time`]: RFC 3339 stamps.

pub mod base;
pub mod build;
pub mod entitlement;
mod exec_mounts;
mod exec_op;
mod file_op;
pub mod image_config;
pub mod key;
mod ledger;
mod mkdir_op;
mod records;
pub mod snapshot;
pub mod state;
pub mod time;
mod workdir;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use crate::ops::run::Isolation;
pub use crate::ops::run::{Limits as RunLimits, Network as RunNetwork, Ulimit as RunUlimit};
pub use build::{BuildResult, build, plan};
pub use entitlement::{Entitlement, Entitlements};

use crate::layer::Compression;

/// What a build is asked to do, beyond the Dockerfile.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The build context directory.
    pub context: PathBuf,
    /// The Dockerfile's path (for `<Dockerfile>.dockerignore`).
    pub dockerfile: Option<PathBuf>,
    /// Build args, platforms and `--target`.
    pub front: hoist_dockerfile::BuildOptions,
    pub no_cache: bool,
    /// `--label`s added to the image config.
    pub labels: BTreeMap<String, String>,
    /// `SOURCE_DATE_EPOCH`: clamps layer mtimes and sets `created`.
    pub source_date_epoch: Option<i64>,
    pub compression: Compression,
    pub compression_level: Option<i32>,
    /// `--build-context NAME=...`: replaces `FROM NAME`, `COPY --from=NAME`
    /// and a stage named NAME.
    pub named_contexts: BTreeMap<String, NamedContext>,
    /// The binary that runs `RUN` steps (`hoist` itself: its `main` calls
    /// `hoist_sandbox::dispatch` first); `None` refuses `RUN`.
    pub sandbox: Option<PathBuf>,
    /// `--network`: what `RUN` gets by default (`Private`, its own
    /// network namespace, unless told; docs/network.md).
    pub network: crate::ops::run::Network,
    /// `--allow` and the configuration file's `[build] allow`: `RUN
    /// --network=host` needs `network.host`.
    pub entitlements: Entitlements,
    /// `--secret id=...`: what `RUN --mount=type=secret` may read.
    pub secrets: BTreeMap<String, Secret>,
    /// `--ssh id[=socket]`: agent sockets `RUN --mount=type=ssh` may use.
    pub ssh: BTreeMap<String, PathBuf>,
    /// `--memory`, `--cpus`, `--shm-size`, `--ulimit` for every `RUN`.
    pub limits: crate::ops::run::Limits,
    /// `--isolation`: what every `RUN` must get (see docs/rootless.md).
    pub isolation: Isolation,
    /// Imported caches (`--cache-from`), consulted after the store's own.
    pub cache_from: Vec<std::sync::Arc<crate::cache::ImportedCache>>,
    /// Write the target stage's cache records into the image config
    /// (`--cache-to type=inline`).
    pub inline_cache: bool,
    /// `--add-host`: lines in every `RUN` step's `/etc/hosts` (keyed, as
    /// BuildKit keys an ExecOp's extra hosts; never in the image).
    pub extra_hosts: Vec<crate::ops::run::ExtraHost>,
    /// `--no-cache-filter`: stages (by their `AS` name, any case, as
    /// BuildKit matches them) whose steps run again; the others may hit.
    pub no_cache_filter: Vec<String>,
    /// The build's cancellation: the caller keeps a clone (Ctrl-C) and
    /// `cancel()` kills the running steps; later ones refuse to start.
    pub cancel: crate::ops::run::Cancel,
    /// The tokio runtime the build's network work (base image pulls,
    /// `ADD` of URLs, lazily fetched cache layers) runs on: the CLI's.
    pub runtime: crate::runtime::Handle,
    /// The build's isolation decision: probed once (by `Probe::check`
    /// before the build for an explicit `--isolation`, else by the first
    /// `RUN`), given to every step.
    pub probe: crate::ops::run::Probe,
    /// What runs `RUN` steps' processes: the sandbox unless told
    /// (`None`); tests give a fake.
    pub executor: Option<std::sync::Arc<dyn crate::ops::run::Executor>>,
}

impl BuildOptions {
    /// A build of `context` with `docker buildx build`'s defaults: no
    /// build args, the host's platform, its own network, `--isolation
    /// auto`, layers stored uncompressed, `RUN` refused until `sandbox`
    /// is set.
    pub fn new(context: PathBuf, runtime: crate::runtime::Handle) -> BuildOptions {
        BuildOptions {
            context,
            dockerfile: None,
            front: hoist_dockerfile::BuildOptions::default(),
            no_cache: false,
            labels: BTreeMap::new(),
            source_date_epoch: None,
            compression: Compression::None,
            compression_level: None,
            named_contexts: BTreeMap::new(),
            sandbox: None,
            network: crate::ops::run::Network::Private,
            entitlements: Entitlements::default(),
            secrets: BTreeMap::new(),
            ssh: BTreeMap::new(),
            limits: crate::ops::run::Limits::default(),
            isolation: Isolation::Auto,
            cache_from: Vec::new(),
            inline_cache: false,
            extra_hosts: Vec::new(),
            no_cache_filter: Vec::new(),
            cancel: crate::ops::run::Cancel::new(),
            runtime,
            probe: crate::ops::run::Probe::default(),
            executor: None,
        }
    }
}

/// Where a `--secret` comes from (read when a step needs it, never stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Secret {
    File(PathBuf),
    Env(String),
}

/// What a `--build-context` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NamedContext {
    /// A local directory (for `COPY --from=NAME`).
    Dir(PathBuf),
    /// `docker-image://REF`: an image from the store or a registry.
    Image(String),
    /// `oci-layout://DIR[:TAG|@DIGEST]`: an image in an OCI layout.
    OciLayout {
        dir: PathBuf,
        reference: Option<String>,
    },
}

impl NamedContext {
    /// Parse the value of `--build-context NAME=VALUE`.
    pub fn parse(value: &str) -> Result<NamedContext, UnsupportedContext> {
        if let Some(r) = value.strip_prefix("docker-image://") {
            return Ok(NamedContext::Image(r.to_string()));
        }
        if let Some(rest) = value.strip_prefix("oci-layout://") {
            let (dir, reference) = match rest.rsplit_once('@') {
                Some((d, digest)) => (d, Some(digest.to_string())),
                None => match rest.rsplit_once(':') {
                    Some((d, tag)) if !tag.contains('/') => (d, Some(tag.to_string())),
                    _ => (rest, None),
                },
            };
            return Ok(NamedContext::OciLayout {
                dir: PathBuf::from(dir),
                reference,
            });
        }
        if value.contains("://") {
            return Err(UnsupportedContext(value.to_string()));
        }
        Ok(NamedContext::Dir(PathBuf::from(value)))
    }
}

/// A `--build-context` value of a kind hoist does not take.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported build context {0:?} (DIR, docker-image://REF or oci-layout://DIR)")]
pub struct UnsupportedContext(pub String);

/// What the solver reports as it goes (progress views render these).
#[derive(Debug, Clone, PartialEq)]
pub enum BuildEvent {
    Step {
        id: usize,
        stage: String,
        text: String,
    },
    Cached {
        id: usize,
    },
    /// The cached step came from an imported cache (`--cache-from`).
    Imported {
        id: usize,
        from: String,
    },
    Explain {
        id: usize,
        reason: String,
    },
    Done {
        id: usize,
        seconds: f64,
    },
    /// A line a `RUN` step printed.
    Output {
        id: usize,
        line: String,
    },
    /// A build check BuildKit also warns about (e.g.
    /// `InvalidBaseImagePlatform`), at a Dockerfile line.
    Warning(hoist_dockerfile::Warning),
}

pub trait BuildProgress: Sync {
    fn event(&self, event: BuildEvent);
}

/// Why a build failed; `line` is the Dockerfile line when known.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("{0}")]
    Dockerfile(hoist_dockerfile::Error),
    #[error("base image {name}: {reason}")]
    Base { name: String, reason: String },
    #[error("{0}")]
    Unsupported(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Image(#[from] crate::image::ImageError),
    #[error(transparent)]
    Layer(#[from] crate::layer::LayerError),
    #[error(transparent)]
    Context(#[from] crate::context::ContextError),
    #[error(transparent)]
    FileOp(Box<crate::ops::file::FileOpError>),
    /// An error at a place in the Dockerfile: an instruction's lines, and
    /// the step it became (none for a stage's `FROM`).
    #[error("line {}: {source}", .at.range.line)]
    At {
        at: Box<ErrorPlace>,
        #[source]
        source: Box<BuildError>,
    },
    #[error("{0}")]
    Run(String),
    #[error("process \"{command}\" did not complete successfully: exit code: {code}{}", tail_text(.tail))]
    RunFailed {
        command: String,
        code: i32,
        tail: Vec<String>,
    },
    /// A `COPY --from` source missing from where it was taken: `place` is
    /// `stage NAME`, `image NAME` or `build context NAME`.
    #[error("{path:?}: not found in {place}")]
    SourceNotFound { path: String, place: String },
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<crate::ops::file::FileOpError> for BuildError {
    fn from(e: crate::ops::file::FileOpError) -> BuildError {
        BuildError::FileOp(Box::new(e))
    }
}

impl BuildError {
    /// The error with the place in the Dockerfile it belongs to (kept
    /// when it has one already).
    pub fn at(self, range: SourceRange) -> BuildError {
        self.place(ErrorPlace { range, step: None })
    }

    /// The error of a step: its instruction's place and its name as
    /// progress shows it (`[stage] TEXT`).
    pub fn at_step(self, range: SourceRange, stage: &str, text: &str) -> BuildError {
        let name = format!("[{stage}] {}", text.lines().next().unwrap_or_default());
        self.place(ErrorPlace {
            range,
            step: Some(name),
        })
    }

    fn place(self, at: ErrorPlace) -> BuildError {
        match self {
            e @ (BuildError::At { .. } | BuildError::Dockerfile(_)) => e,
            e => BuildError::At {
                at: Box::new(at),
                source: Box::new(e),
            },
        }
    }

    /// Where in the Dockerfile the error is, when known.
    pub fn place_of(&self) -> Option<&ErrorPlace> {
        match self {
            BuildError::At { at, .. } => Some(at),
            _ => None,
        }
    }
}

/// Lines of the Dockerfile: an instruction's, from its first line and
/// column to its last line (continuations and heredocs included).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SourceRange {
    /// 1-based; 0 for no line.
    pub line: usize,
    /// 1-based column of the instruction's first character.
    pub column: usize,
    /// The instruction's last line.
    pub end_line: usize,
}

impl std::fmt::Display for SourceRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.end_line > self.line {
            write!(f, "{}:{}-{}", self.line, self.column, self.end_line)
        } else {
            write!(f, "{}:{}", self.line, self.column)
        }
    }
}

/// Where a build error belongs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorPlace {
    pub range: SourceRange,
    /// The step as progress names it, `[stage] TEXT`.
    pub step: Option<String>,
}

fn tail_text(tail: &[String]) -> String {
    if tail.is_empty() {
        return String::new();
    }
    let mut s = String::from("\nlast lines of output:");
    for l in tail {
        s.push_str("\n  ");
        s.push_str(l);
    }
    s
}
