//! What the engine asks of one sandboxed process: [`RunSpec`], written as
//! JSON for the sandbox process to read, and the [`Report`] it writes back.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// One `RUN` step: the root filesystem to assemble, the process to start in
/// it, and what to mount around it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunSpec {
    pub rootfs: Rootfs,
    /// argv; `args[0]` is looked up in the `PATH` of `env` when it has no `/`.
    pub args: Vec<String>,
    /// `KEY=value` strings: the whole environment of the process.
    pub env: Vec<String>,
    /// The working directory inside the root (made if missing, as runc does).
    pub cwd: String,
    /// `USER` as written (`name`, `uid`, `name:group`, `uid:gid`); empty is
    /// root. Resolved inside the sandbox against the image's own
    /// `/etc/passwd` and `/etc/group`.
    pub user: String,
    pub hostname: String,
    pub network: Network,
    /// The user-mode network stack that connects a [`Network::Private`]
    /// namespace (the engine found it installed).
    #[serde(default)]
    pub stack: Option<crate::stack::Stack>,
    /// Mounted in order, after the standard ones (`/proc`, `/dev`, `/sys`).
    pub mounts: Vec<MountSpec>,
    /// Where the sandbox writes its [`Report`].
    pub report: PathBuf,
    /// Resource limits (`--memory`, `--cpus`, `--shm-size`, `--ulimit`).
    #[serde(default)]
    pub limits: Limits,
    /// The namespaces and `/proc` the step gets (the engine's probe
    /// decided them for the build; the default is every one, fresh).
    #[serde(default)]
    pub isolation: crate::isolation::Plan,
    /// `RUN --security`.
    #[serde(default)]
    pub security: Security,
    /// The seccomp filter the plan's steps get (`crate::seccomp::compile_for`,
    /// hex BPF); required when `isolation.seccomp` and `security` is
    /// `Sandbox`, ignored otherwise.
    #[serde(default)]
    pub seccomp: Option<String>,
}

/// `RUN --security` (BuildKit's): `Sandbox` has Docker's default
/// capabilities and seccomp profile; `Insecure` (granted only with
/// `--allow security.insecure`) has neither filter nor capability limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Security {
    #[default]
    Sandbox,
    Insecure,
}

/// What a step may use. Memory and CPU need a writable cgroup (root on a
/// cgroup v1 or v2 host); where there is none the step runs without them
/// and says so on its output.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Bytes of memory (`memory.max` / `memory.limit_in_bytes`).
    pub memory: Option<u64>,
    /// CPUs, fractional (`cpu.max` / CFS quota over a 100 ms period).
    pub cpus: Option<f64>,
    /// Size of `/dev/shm` in bytes (default 64 MiB, as Docker).
    pub shm_size: Option<u64>,
    /// `setrlimit`s for the step: (resource name as Docker spells it, soft, hard).
    pub ulimits: Vec<Ulimit>,
    /// The cgroup's name (unique per step), under a `hoist` parent.
    pub cgroup: Option<String>,
}

/// One `--ulimit NAME=SOFT[:HARD]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    pub name: String,
    pub soft: u64,
    pub hard: u64,
}

/// An overlay: `lower` (top first) under a writable `upper`, merged at `merged`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rootfs {
    pub lower: Vec<PathBuf>,
    pub upper: PathBuf,
    pub work: PathBuf,
    pub merged: PathBuf,
    /// The copying snapshotter (no overlay on this host): `merged` is a
    /// plain directory holding a copy of the image, used as the root as it
    /// is; `lower`, `upper` and `work` are ignored. The engine diffs it.
    #[serde(default)]
    pub copy: bool,
}

/// The network a step sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Network {
    /// The host's network namespace (BuildKit's and Buildah's `host`).
    Host,
    /// A fresh network namespace with only loopback, up.
    None,
    /// A fresh network namespace with outbound access through a user-mode
    /// network stack ([`RunSpec::stack`], `crate::stack`) started outside
    /// it; the host's loopback, abstract sockets and interfaces are out of
    /// reach (BuildKit's default).
    Private,
}

/// One mount inside the root.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MountSpec {
    /// Absolute path inside the root.
    pub target: String,
    pub kind: MountKind,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum MountKind {
    /// A file or directory of the host (the engine's own: a cache directory,
    /// a context or stage tree, a generated `/etc/hosts`).
    Bind { source: PathBuf, read_only: bool },
    /// A fresh tmpfs.
    Tmpfs {
        size: Option<u64>,
        mode: Option<u32>,
    },
    /// Host directories seen through an overlay (top first), writes going
    /// to `upper` (the engine's scratch, thrown away): a writable view of a
    /// tree that must not change, such as `RUN --mount=type=bind,rw`.
    Overlay {
        lower: Vec<PathBuf>,
        upper: PathBuf,
        work: PathBuf,
    },
}

/// What the sandbox tells the engine besides the exit status.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    /// Set when the sandbox could not be set up (the process never ran).
    pub error: Option<String>,
}
