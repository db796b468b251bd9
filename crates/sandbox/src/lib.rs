//! The `RUN` sandbox: a process in its own mount, pid, ipc, uts (and
//! optionally network) namespaces, rooted in an overlay of the image so far.
//!
//! The engine never forks from its own (threaded, async) process. It starts
//! the `hoist` binary again with [`SANDBOX_ARG`] and a [`RunSpec`] file
//! ([`command`]); that fresh, single-threaded process ([`dispatch`], called
//! first thing in `main`) builds the sandbox:
//!
//! ```text
//! hoist (engine) ── spawn ──▶ sandbox process: unshare(mnt, pid, ipc, uts[, net])
//!                                  └─ fork ─▶ pid 1: overlay, /proc, /dev, /sys, mounts,
//!                                                    pivot_root, hostname
//!                                                └─ spawn ─▶ the step's command (user, caps, env, cwd)
//! ```
//!
//! pid 1 reaps orphans and forwards signals; each process dies with its
//! parent (`PR_SET_PDEATHSIG`), and when pid 1 exits the kernel kills the
//! rest of the pid namespace. Every mount lives in the sandbox's own mount
//! namespace, so nothing is left on the host whatever happens.
//!
//! Modules: [`spec`] (what the engine asks), [`user`] (`USER` → ids, pure),
//! `init` (the two supervising processes), `rootfs` (mounts, pivot_root),
//! `procfs` (`/proc`: fresh or bound, protected), `chroot` (a root without
//! namespaces), `reap` (leftovers without a pid namespace), `exec` (the
//! step's process: ids, capabilities, then `landlock` and [`seccomp`]),
//! `netns` (loopback), [`stack`] (the user-mode network stack of a private
//! network: pasta or slirp4netns), [`userns`]
//! (where hoist runs: root, or root of a user namespace), [`rootless`] and
//! [`idmap`] (hoist's own user namespace), [`isolation`] (`--isolation`:
//! modes, facts, the plan and its line) and [`probe`] (finding the facts).

// Only the CLI prints: library code reports through values (errors,
// progress events, notices). Checked by clippy (`-D warnings`).
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod idmap;
pub mod isolation;
pub mod probe;
pub mod rootless;
pub mod seccomp;
pub mod spec;
pub mod stack;
pub mod user;
pub mod userns;
pub mod view;

mod caps;
pub mod cgroup;
mod chroot;
mod exec;
mod file_error;
mod init;
mod landlock;
mod netns;
mod procfs;
mod reap;
mod rootfs;
mod sys;

use std::path::Path;

pub use spec::{Limits, MountKind, MountSpec, Network, Report, Rootfs, RunSpec, Security, Ulimit};
pub use stack::Stack;

/// The first argument that makes the `hoist` binary a sandbox process.
pub const SANDBOX_ARG: &str = "__hoist-sandbox";

/// The engine's pid, so the sandbox process can tell whether its parent is
/// still the one that started it.
pub(crate) const PARENT_ENV: &str = "HOIST_SANDBOX_PARENT";

pub use rootfs::{OVERLAY_UNAVAILABLE, mount_overlay};

/// Exit status of a sandbox that failed before the step's process ran
/// (the [`Report`] says why).
pub const SETUP_FAILED: i32 = 125;

/// The command that runs `spec_path` in a sandbox, through `exe` (a binary
/// whose `main` calls [`dispatch`] first). Its stdin is `/dev/null`; set
/// stdout and stderr to collect the step's output.
pub fn command(exe: &Path, spec_path: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(exe);
    cmd.arg(SANDBOX_ARG)
        .arg(spec_path)
        .env(PARENT_ENV, std::process::id().to_string())
        .stdin(std::process::Stdio::null());
    cmd
}

/// Called first thing in `main`, before any thread or runtime starts: when
/// the arguments say this process is a sandbox, runs it and returns its
/// exit code (the caller exits with it); otherwise `None`.
#[allow(
    clippy::print_stderr,
    reason = "the entry point of a re-executed sandbox process: when its report file cannot be written, its stderr (the step's) is the only channel left"
)]
pub fn dispatch() -> Option<i32> {
    let mut args = std::env::args_os().skip(1);
    let first = args.next()?;
    let probe = first == probe::PROBE_ARG;
    if first != SANDBOX_ARG && !probe {
        return None;
    }
    let Some(spec) = args.next() else {
        eprintln!("hoist: {} needs a spec file", first.to_string_lossy());
        return Some(SETUP_FAILED);
    };
    if probe {
        return Some(probe::probe_main(Path::new(&spec)));
    }
    Some(init::sandbox_main(Path::new(&spec)))
}

/// Errors of the sandbox's set-up, each naming what it was doing.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("{what}: {source}")]
    Sys {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Spec(String),
    #[error(transparent)]
    Seccomp(#[from] seccomp::SeccompError),
}

impl SandboxError {
    pub(crate) fn sys(what: impl Into<String>, source: impl Into<std::io::Error>) -> SandboxError {
        SandboxError::Sys {
            what: what.into(),
            source: source.into(),
        }
    }
}

pub(crate) trait Context<T> {
    fn what(self, what: impl FnOnce() -> String) -> Result<T, SandboxError>;
}

impl<T, E: Into<std::io::Error>> Context<T> for Result<T, E> {
    fn what(self, what: impl FnOnce() -> String) -> Result<T, SandboxError> {
        self.map_err(|e| SandboxError::sys(what(), e))
    }
}
