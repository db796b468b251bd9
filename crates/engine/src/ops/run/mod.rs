//! `RUN`: one process in the sandbox, over an overlay of the state so far.
//!
//! [`run`] lays out a step's scratch directory (overlay work dir, mount
//! point, generated `/etc/hosts`, `/etc/resolv.conf`, `/etc/hostname`, the
//! spec and the sandbox's report), starts the sandbox process (the `hoist`
//! binary again: see `hoist_sandbox`), streams its output line by line, and
//! returns the exit code with the last lines. The upper directory (the
//! step's changes) is the caller's: it becomes the layer.
//!
//! The root comes from a [`Snapshotter`] (`snapshotter`): overlayfs, or
//! where it cannot be mounted a plain copy of the lower dirs diffed into
//! the upper dir afterwards, in overlayfs's format. The build's
//! [`Snapshotters`] picks one.
//!
//! [`Executor`] is the seam between the build and the sandbox: the build
//! hands it a [`RunRequest`] and gets the exit code; [`SandboxExecutor`]
//! is the real one. This module is the only caller of `hoist_sandbox` in
//! the engine: the sandbox's value types the build and the plan carry
//! (network, security, limits, isolation mode) are re-exported from here,
//! and so are the process facts the engine asks of it
//! ([`in_user_namespace`], [`rootless_reexec`]) and the read-only views of
//! stages ([`ReadOnlyOverlay`]); `tests/invariants.rs` checks it.

mod cancel;
mod etc;
mod extra_host;
mod isolation;
mod network;
pub mod snapshotter;

pub use cancel::Cancel;
pub use extra_host::{ExtraHost, ExtraHostError, ExtraHostProblem};
pub use isolation::Probe;
pub use network::STACK_ENV;
pub use snapshotter::{
    CopySnapshotter, OverlaySnapshotter, SNAPSHOTTER_ENV, Snapshotter, SnapshotterKind,
    Snapshotters, prune_copy_ups,
};

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use hoist_sandbox::{Report, RunSpec};

pub use hoist_sandbox::{MountKind, MountSpec};

pub use hoist_sandbox::isolation::Mode as Isolation;
pub use hoist_sandbox::view::ReadOnlyOverlay;
pub use hoist_sandbox::{Limits, Network, Security, Ulimit};

/// Whether this process runs in a user namespace (rootless, or root of a
/// container).
pub fn in_user_namespace() -> bool {
    hoist_sandbox::userns::in_user_namespace()
}

/// Whether this process is hoist's rootless re-exec (an ordinary user
/// become root of a user namespace).
pub fn rootless_reexec() -> bool {
    std::env::var_os(hoist_sandbox::rootless::ENV).is_some()
}

/// What runs an exec op's process: the build's seam to the sandbox.
pub trait Executor: Send + Sync + std::fmt::Debug {
    /// Run `req`; `on_line` gets each line of output as it comes.
    fn run(&self, req: &RunRequest, on_line: &mut dyn FnMut(&str)) -> Result<RunOutcome, RunError>;
}

/// The real executor: the `hoist` binary again in the step's namespaces,
/// over the build's snapshotters (overlay until the host refuses it).
#[derive(Debug, Default)]
pub struct SandboxExecutor {
    snapshotters: Snapshotters,
}

impl Executor for SandboxExecutor {
    fn run(&self, req: &RunRequest, on_line: &mut dyn FnMut(&str)) -> Result<RunOutcome, RunError> {
        run(req, &self.snapshotters, on_line)
    }
}

/// How many lines of output a failure shows.
const TAIL_LINES: usize = 10;

/// The hostname a step sees (BuildKit's).
pub const HOSTNAME: &str = "buildkitsandbox";

/// One process to run.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// A binary whose `main` calls `hoist_sandbox::dispatch` first.
    pub sandbox_exe: PathBuf,
    /// The state's filesystem as overlay lower dirs, top first (empty: scratch).
    pub lower: Vec<PathBuf>,
    /// An empty directory (owned by the caller) that receives the changes.
    pub upper: PathBuf,
    /// Where the step's scratch files go (removed after).
    pub scratch_parent: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub user: String,
    pub network: Network,
    /// The step's `--mount`s, sources prepared by the caller.
    pub mounts: Vec<MountSpec>,
    /// `--memory`, `--cpus`, `--shm-size`, `--ulimit` (the cgroup name is set here).
    pub limits: hoist_sandbox::Limits,
    /// `--isolation`: probed once per process, the first step printing
    /// what it gave (`isolation`); `None` gives every namespace and a
    /// fresh `/proc`, or fails, without a probe or a line.
    pub isolation: Option<hoist_sandbox::isolation::Mode>,
    /// `RUN --security`: `Insecure` (granted by the caller's entitlement
    /// check) runs without the seccomp filter and with every capability.
    pub security: hoist_sandbox::Security,
    /// The step's hostname (`BUILDKIT_SANDBOX_HOSTNAME`); `None`: [`HOSTNAME`].
    pub hostname: Option<String>,
    /// `--add-host`: lines added to the step's `/etc/hosts`.
    pub extra_hosts: Vec<ExtraHost>,
    /// The build's cancellation: the step is killed when it fires.
    pub cancel: Cancel,
    /// The build's isolation decision (`isolation`), shared by its steps.
    pub probe: Probe,
}

/// How the process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutcome {
    /// The exit code (128 + n when killed by signal n).
    pub code: i32,
    /// The last lines of output.
    pub tail: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("sandbox: {0}")]
    Sandbox(String),
    /// `HOIST_NETWORK_STACK` names a stack that cannot serve.
    #[error("sandbox: {0}")]
    NetworkStack(#[source] network::StackError),
    /// Docker's seccomp profile could not be compiled for this host (once
    /// per process, hence shared).
    #[error("sandbox: {0}")]
    Seccomp(#[source] std::sync::Arc<hoist_sandbox::seccomp::SeccompError>),
    /// The `--isolation` asked cannot be had here (why, and what would do).
    #[error("{0}")]
    Isolation(#[source] hoist_sandbox::isolation::Unavailable),
    #[error("cancelled")]
    Cancelled,
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> RunError + use<> {
    let path = path.to_path_buf();
    move |source| RunError::Io { what, path, source }
}

/// Run `req`; `on_line` gets each line of output as it comes. Over an
/// overlay, or a copy where the host has none or `HOIST_SNAPSHOTTER=copy`
/// (`snapshotters`, the build's, remembers which).
pub fn run(
    req: &RunRequest,
    snapshotters: &Snapshotters,
    on_line: &mut dyn FnMut(&str),
) -> Result<RunOutcome, RunError> {
    // First: the probe may find overlayfs refused, and the copying
    // snapshotter must then take this step already.
    if let Some(mode) = req.isolation {
        req.probe.plan(req, mode, on_line)?;
        if req.probe.overlay_refused(mode) {
            snapshotters.overlay_refused();
        }
    }
    snapshotters.run(req, on_line)
}

/// Run `req` with the given snapshotter (no fallback).
pub fn run_with(
    req: &RunRequest,
    kind: SnapshotterKind,
    on_line: &mut dyn FnMut(&str),
) -> Result<RunOutcome, RunError> {
    match kind {
        SnapshotterKind::Overlay => run_on(req, &OverlaySnapshotter, on_line),
        SnapshotterKind::Copy => run_on(req, &CopySnapshotter, on_line),
    }
}

/// Run `req` over a root from `snapshotter`: its changes committed to
/// `req.upper` when it exits 0, the root cleaned up otherwise.
fn run_on<S: Snapshotter>(
    req: &RunRequest,
    snapshotter: &S,
    on_line: &mut dyn FnMut(&str),
) -> Result<RunOutcome, RunError> {
    let (plan, seccomp) = match req.isolation {
        Some(mode) => req.probe.plan(req, mode, on_line)?,
        None => isolation::default_plan()?,
    };
    let (network, stack) =
        network::resolve(req.probe.network(), req.network, plan.namespaces, on_line)
            .map_err(RunError::NetworkStack)?;
    if req.security == hoist_sandbox::Security::Insecure {
        on_line("RUN --security=insecure: no seccomp filter, every capability");
    }
    let scratch = tempfile::Builder::new()
        .prefix("run-")
        .tempdir_in(&req.scratch_parent)
        .map_err(io("create a scratch dir in", &req.scratch_parent))?;
    let dir = scratch.path();
    let prepared = snapshotter.prepare(&req.lower, &req.upper, dir)?;
    let setup = Setup {
        rootfs: prepared.rootfs.clone(),
        plan,
        seccomp,
        network,
        stack,
    };
    match sandbox(req, dir, setup, on_line) {
        Ok(outcome) if outcome.code == 0 => {
            snapshotter.commit(prepared)?;
            Ok(outcome)
        }
        other => {
            // The step's own error first; then the cleanup's.
            let cleaned = snapshotter.cleanup(prepared);
            let outcome = other?;
            cleaned?;
            Ok(outcome)
        }
    }
}

/// What the sandbox is started with besides the request.
struct Setup {
    rootfs: hoist_sandbox::Rootfs,
    plan: hoist_sandbox::isolation::Plan,
    seccomp: Option<String>,
    network: Network,
    stack: Option<hoist_sandbox::Stack>,
}

/// Start the sandbox over `setup.rootfs` with its files in `dir`; its
/// outcome (or why it could not run).
fn sandbox(
    req: &RunRequest,
    dir: &Path,
    setup: Setup,
    on_line: &mut dyn FnMut(&str),
) -> Result<RunOutcome, RunError> {
    let Setup {
        rootfs,
        plan,
        seccomp,
        network,
        stack,
    } = setup;
    let hostname = req.hostname.as_deref().unwrap_or(HOSTNAME);
    let mut mounts = etc::files(dir, network, stack, hostname, &req.extra_hosts)?;
    mounts.extend(req.mounts.iter().cloned());
    let report = dir.join("report.json");
    // Unique per step: the scratch dir's own random name.
    let cgroup = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| format!("run-{}", std::process::id()));
    let spec = RunSpec {
        rootfs,
        args: req.args.clone(),
        env: with_hostname(&req.env, hostname),
        cwd: req.cwd.clone(),
        user: req.user.clone(),
        hostname: hostname.to_string(),
        network,
        stack,
        mounts,
        report: report.clone(),
        limits: hoist_sandbox::Limits {
            cgroup: Some(cgroup.clone()),
            ..req.limits.clone()
        },
        isolation: plan,
        security: req.security,
        seccomp,
    };
    let spec_path = dir.join("spec.json");
    let bytes = serde_json::to_vec(&spec).map_err(|e| RunError::Sandbox(e.to_string()))?;
    std::fs::write(&spec_path, bytes).map_err(io("write", &spec_path))?;

    let (reader, writer) = std::io::pipe().map_err(io("pipe for", &spec_path))?;
    let mut cmd = hoist_sandbox::command(&req.sandbox_exe, &spec_path);
    cmd.stdout(writer.try_clone().map_err(io("pipe for", &spec_path))?)
        .stderr(writer);
    let mut child = req
        .cancel
        .start(|| {
            let child = cmd.spawn()?;
            let pid = child.id();
            Ok((child, pid))
        })
        .ok_or(RunError::Cancelled)?
        .map_err(io("start the sandbox", &req.sandbox_exe))?;
    // Our copies of the write end must go, or the read below never ends.
    drop(cmd);
    let mut tail = VecDeque::with_capacity(TAIL_LINES);
    let mut lines = BufReader::new(reader);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match lines.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(_) => {
                let line = String::from_utf8_lossy(&buf);
                let line = line.trim_end_matches(['\n', '\r']);
                on_line(line);
                if tail.len() == TAIL_LINES {
                    tail.pop_front();
                }
                tail.push_back(line.to_string());
            }
        }
    }
    let status = child
        .wait()
        .map_err(io("wait for the sandbox", &req.sandbox_exe))?;
    req.cancel.finished(child.id());
    hoist_sandbox::cgroup::remove(&cgroup);
    if req.cancel.is_cancelled() {
        return Err(RunError::Cancelled);
    }
    let code = status
        .code()
        .or_else(|| std::os::unix::process::ExitStatusExt::signal(&status).map(|s| 128 + s))
        .unwrap_or(1);
    let report: Report = std::fs::read(&report)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    if let Some(e) = report.error {
        return Err(RunError::Sandbox(e));
    }
    if code == hoist_sandbox::SETUP_FAILED
        && !std::fs::exists(dir.join("report.json")).unwrap_or(false)
    {
        return Err(RunError::Sandbox(
            tail.iter().cloned().collect::<Vec<_>>().join("\n"),
        ));
    }
    Ok(RunOutcome {
        code,
        tail: tail.into(),
    })
}

/// `env` with `HOSTNAME` set to the step's hostname unless it sets one,
/// as runc does for BuildKit's steps.
fn with_hostname(env: &[String], hostname: &str) -> Vec<String> {
    let mut env = env.to_vec();
    if !env
        .iter()
        .any(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == "HOSTNAME")
    {
        env.push(format!("HOSTNAME={hostname}"));
    }
    env
}

/// A bind mount of a host path.
pub fn bind(source: PathBuf, target: &str, read_only: bool) -> MountSpec {
    MountSpec {
        target: target.to_string(),
        kind: MountKind::Bind { source, read_only },
    }
}
