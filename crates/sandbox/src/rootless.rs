//! Rootless hoist: an ordinary user runs hoist as root of its own user
//! namespace, as `buildah unshare` does; so does root without
//! `CAP_SYS_ADMIN` (root of a container), which cannot mount otherwise.
//!
//! [`enter_if_unprivileged`], called first thing in `main`, re-executes
//! hoist when the effective uid is not 0 or `CAP_SYS_ADMIN` is missing:
//!
//! ```text
//! hoist (the user) ── spawn /proc/self/exe, HOIST_IN_USERNS=pending:FD ──▶ hoist (child)
//!                                                   unshare(user, mount) │
//!      ◀──────────────────────────── "u" on the socket FD ───────────────┘
//!   newuidmap PID 0 UID 1 1 START COUNT …
//!   newgidmap PID 0 GID 1 1 START COUNT …
//!      ─────────────────────────── "m" + kind ───────────────────────────▶ setresuid(0), setresgid(0),
//!   waits; forwards SIGINT, SIGTERM,                                       / private, dies with the
//!   SIGHUP, SIGQUIT; exits with the child's code                           parent; runs the command
//! ```
//!
//! Inside, container id 0 is the user and ids 1..=N are the user's ranges
//! in `/etc/subuid` and `/etc/subgid`, so everything hoist writes (the
//! store, unpacked layers, the `RUN` sandbox) is owned on the host by the
//! user or by their subordinate ids. A user without ranges (or without
//! `newuidmap`) gets a single-id map (0 = the user), written directly after
//! `setgroups` is denied, and a one-line warning. Root without
//! `CAP_SYS_ADMIN` maps every id it has one to one ([`crate::idmap`]). The
//! child unshares itself after exec (a `pre_exec` unshare could not be
//! mapped: `spawn` returns only after exec), while it is still
//! single-threaded, and records the map's kind in [`KIND_ENV`].
//!
//! The child's default store is the user's (`$XDG_DATA_HOME/hoist` or
//! `~/.local/share/hoist`), passed as `HOIST_ROOT`: inside, the euid is 0
//! and the engine would otherwise pick `/var/lib/hoist`. Root keeps root's
//! defaults: its child drops [`ENV`] once mapped, so it is told apart from
//! a user's (`hoist_engine::config`) as root.
//! Where user namespaces are not allowed at all, the child carries on as it
//! was (a user is warned) and records why in [`REFUSED_ENV`]: `RUN` then
//! says so (`crate::isolation`).
//!
//! Every hoist process outside a step is made non-dumpable, so a step that
//! sees them (a `/proc` bound from the host) cannot open their
//! `/proc/PID/root` or memory: that needs `CAP_SYS_PTRACE`, which steps
//! never have.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{Gid, Pid, Uid, User, setresgid, setresuid};
use rustix::io::{FdFlags, fcntl_setfd};
use rustix::mount::MountPropagationFlags;
use rustix::thread::UnshareFlags;

use crate::SETUP_FAILED;
use crate::idmap::{Kind, MapKind, write_container_maps, write_map};

/// Marks a hoist process started by [`enter_if_unprivileged`]:
/// `pending:FD` until its namespace is set up, then `1`. Set to `1` by
/// hand, it keeps hoist out of a user namespace.
pub const ENV: &str = "HOIST_IN_USERNS";

/// In hoist's own user namespace: how it was mapped ([`MapKind::name`]).
pub const KIND_ENV: &str = "HOIST_USERNS_MAP";

/// Set when hoist could not make its user namespace: the kernel's answer.
pub const REFUSED_ENV: &str = "HOIST_USERNS_REFUSED";

pub use crate::idmap::{Range, parse_subids};

/// The signals the waiting parent passes on to the child.
const FORWARDED: [Signal; 4] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
];

/// Called first thing in `main` (after the sandbox's `dispatch`), while the
/// process is single-threaded. Running as a user (euid != 0), or as root
/// without `CAP_SYS_ADMIN`: re-executes hoist in a new user and mount
/// namespace where it is root, waits for it and returns its exit code
/// (`Some`; 128 + signal when killed). In that re-executed child, sets the
/// namespace up and returns `None`, as it does for privileged root. The
/// caller exits with a returned code.
///
/// What the set-up has to tell the user goes to `notify` as a [`Notice`]
/// (the caller words and prints it): this crate prints nothing itself.
pub fn enter_if_unprivileged(notify: &dyn Fn(&Notice)) -> Option<i32> {
    if let Some(state) = std::env::var_os(ENV) {
        let code = match state.to_str().and_then(|s| s.strip_prefix("pending:")) {
            Some(fd) => child(fd.parse().ok(), notify),
            None => None,
        };
        if code.is_none() {
            not_dumpable();
        }
        return code;
    }
    if privileged() {
        not_dumpable();
        return None;
    }
    not_dumpable();
    Some(parent(notify))
}

/// What entering the user namespace has to tell the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// Only the user's own id could be mapped (no sub-ids, or newuidmap
    /// refused): builds needing other ids fail or lose file ownership.
    SingleIdMapped { why: String },
    /// No user namespace could be made: hoist goes on as the user,
    /// without file ownership or `RUN`.
    NoUserNamespace { error: String },
    /// The set-up failed at `what`; hoist exits.
    Failed { what: String },
}

impl Notice {
    /// A warning (hoist goes on) rather than the reason it stops.
    pub fn is_warning(&self) -> bool {
        !matches!(self, Notice::Failed { .. })
    }
}

impl std::fmt::Display for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Notice::SingleIdMapped { why } => write!(
                f,
                "only your own id is mapped in the user namespace ({why}); builds needing \
                 other ids will fail or lose file ownership"
            ),
            Notice::NoUserNamespace { error } => write!(
                f,
                "cannot create a user namespace ({error}); running as your own user, without \
                 file ownership or RUN"
            ),
            Notice::Failed { what } => write!(f, "rootless: {what}"),
        }
    }
}

/// Root with `CAP_SYS_ADMIN`: hoist mounts and unshares as it is.
pub fn privileged() -> bool {
    rustix::process::geteuid().is_root()
        && rustix::thread::capabilities(None).is_ok_and(|c| {
            c.effective
                .contains(rustix::thread::CapabilitySet::SYS_ADMIN)
        })
}

/// Best effort: a process that cannot be made non-dumpable is still
/// protected from steps by their pid namespace and fresh `/proc`.
fn not_dumpable() {
    let _ = rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable);
}

/// The user's default store, as the engine's `default_root` picks it for
/// a non-root user; `None` when `HOIST_ROOT` is set or nothing applies.
fn default_root() -> Option<PathBuf> {
    let set = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    if set("HOIST_ROOT").is_some() {
        return None;
    }
    if let Some(data) = set("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
    {
        return Some(data.join("hoist"));
    }
    Some(PathBuf::from(set("HOME")?).join(".local/share/hoist"))
}

/// The user's side: start the child, map its ids, wait for it.
fn parent(notify: &dyn Fn(&Notice)) -> i32 {
    let (uid, gid) = (
        rustix::process::geteuid().as_raw(),
        rustix::process::getegid().as_raw(),
    );
    let name = User::from_uid(Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name);
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let uid_ranges = parse_subids(&read(Kind::Uid.subid_file()), name.as_deref(), uid);
    let gid_ranges = parse_subids(&read(Kind::Gid.subid_file()), name.as_deref(), uid);

    let (ours, theirs) = match UnixStream::pair() {
        Ok(pair) => pair,
        Err(e) => return fail(notify, format!("socketpair: {e}")),
    };
    if let Err(e) = fcntl_setfd(&theirs, FdFlags::empty()) {
        return fail(notify, format!("socketpair: {e}"));
    }
    let mask = match block_signals() {
        Ok(mask) => mask,
        Err(e) => return fail(notify, format!("blocking signals: {e}")),
    };
    let mut args = std::env::args_os();
    let mut cmd = Command::new("/proc/self/exe");
    cmd.arg0(args.next().unwrap_or_else(|| OsString::from("hoist")))
        .args(args)
        .env(ENV, format!("pending:{}", theirs.as_raw_fd()));
    // Root (of a container) keeps root's store, /var/lib/hoist.
    if uid != 0
        && let Some(root) = default_root()
    {
        cmd.env("HOIST_ROOT", root);
    }
    let child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => return fail(notify, format!("re-executing hoist: {e}")),
    };
    drop(theirs);
    let pid = child.id();
    if handshake(ours, pid, (uid, &uid_ranges), (gid, &gid_ranges), notify).is_err() {
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
    }
    wait(Pid::from_raw(pid as i32), &mask, notify)
}

/// Waits for the child's "unshared", writes its maps and answers "mapped".
/// `Err` when the maps could not be written (the reason goes to `notify`).
fn handshake(
    mut sock: UnixStream,
    pid: u32,
    (uid, uid_ranges): (u32, &[Range]),
    (gid, gid_ranges): (u32, &[Range]),
    notify: &dyn Fn(&Notice),
) -> Result<(), ()> {
    let mut said = [0u8];
    match sock.read(&mut said) {
        Ok(1) if said[0] == b'u' => {}
        // "x": the child could not unshare and carries on unprivileged; or it
        // is gone already. Either way there is nothing to map.
        _ => return Ok(()),
    }
    // Root without CAP_SYS_ADMIN: every id it has, if CAP_SETUID and
    // CAP_SETGID allow; else what a user would get.
    let container = uid == 0 && write_container_maps(pid).is_ok();
    let result = match container {
        true => Ok(MapKind::Container),
        false => write_map(Kind::Uid, pid, uid, uid_ranges)
            .and_then(|u| Ok((u, write_map(Kind::Gid, pid, gid, gid_ranges)?)))
            .map(|(single_uid, single_gid)| match single_uid.or(single_gid) {
                Some(why) => {
                    notify(&Notice::SingleIdMapped { why });
                    MapKind::Single
                }
                None => MapKind::Subids,
            }),
    };
    match result {
        Ok(kind) => {
            // The child reads EOF if this fails, and gives up.
            let _ = sock.write_all(&[b'm', kind.byte()]);
            Ok(())
        }
        Err(e) => {
            notify(&Notice::Failed {
                what: format!("cannot map ids into the user namespace: {e}"),
            });
            Err(())
        }
    }
}

fn fail(notify: &dyn Fn(&Notice), what: String) -> i32 {
    notify(&Notice::Failed { what });
    SETUP_FAILED
}

/// The forwarded signals and SIGCHLD.
fn waited_signals() -> SigSet {
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    for s in FORWARDED {
        set.add(s);
    }
    set
}

/// Block [`waited_signals`], to take them with `sigwait`. The child
/// inherits the mask (`std::process::Command` keeps it since Rust 1.66,
/// rust-lang/rust#101077) and unblocks them first thing.
fn block_signals() -> nix::Result<SigSet> {
    let set = waited_signals();
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)?;
    Ok(set)
}

/// Wait for `child`, passing on forwarded signals; its exit code.
fn wait(child: Pid, mask: &SigSet, notify: &dyn Fn(&Notice)) -> i32 {
    loop {
        match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => return code,
            Ok(WaitStatus::Signaled(_, sig, _)) => return 128 + sig as i32,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return fail(notify, format!("waiting for the child: {e}")),
        }
        match mask.wait() {
            Ok(Signal::SIGCHLD) | Err(_) => {}
            Ok(sig) => {
                let _ = kill(child, sig);
            }
        }
    }
}

/// The re-executed child: unshare, have the parent map us, become root.
/// `fd` is the socket to the parent.
fn child(fd: Option<RawFd>, notify: &dyn Fn(&Notice)) -> Option<i32> {
    // SAFETY: single-threaded (called first thing in `main`), so nothing
    // reads the environment concurrently. Set first: whatever happens
    // below, nothing this process starts re-enters a namespace.
    unsafe { std::env::set_var(ENV, "1") };
    // The parent's mask, inherited: the signals it passes on must act here.
    if let Err(e) = sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&waited_signals()), None) {
        return Some(fail(notify, format!("unblocking signals: {e}")));
    }
    let Some(mut sock) = fd.and_then(take_socket) else {
        return Some(fail(
            notify,
            format!("{ENV} names no socket from a parent hoist"),
        ));
    };
    let parent = rustix::process::getppid();
    // SAFETY: single-threaded (see above): no other thread shares the
    // credentials or the fs state that the new namespaces detach.
    let unshared =
        unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWUSER | UnshareFlags::NEWNS) };
    if let Err(e) = unshared {
        let _ = sock.write_all(b"x");
        // SAFETY: single-threaded (see above).
        unsafe { std::env::set_var(REFUSED_ENV, e.to_string()) };
        // Root carries on as root, with root's defaults (store,
        // configuration): only RUN needs the namespace, and says so.
        if rustix::process::geteuid().is_root() {
            // SAFETY: single-threaded (see above).
            unsafe { std::env::remove_var(ENV) };
        } else {
            notify(&Notice::NoUserNamespace {
                error: e.to_string(),
            });
        }
        return None;
    }
    let mut answer = [0u8; 2];
    if sock.write_all(b"u").is_err() || sock.read_exact(&mut answer).is_err() || answer[0] != b'm' {
        // The parent printed why, or is gone.
        return Some(SETUP_FAILED);
    }
    if let Some(kind) = MapKind::from_byte(answer[1]) {
        // SAFETY: single-threaded (see above).
        unsafe { std::env::set_var(KIND_ENV, kind.name()) };
        if kind == MapKind::Container {
            // Root with every id it had, and now CAP_SYS_ADMIN: root's
            // defaults (store, configuration) hold, not a user's.
            // SAFETY: single-threaded (see above).
            unsafe { std::env::remove_var(ENV) };
        }
    }
    drop(sock);
    match become_root(parent) {
        Ok(()) => None,
        Err(e) => Some(fail(notify, e.to_string())),
    }
}

/// The socket named by `fd`, if it is one this process may own.
fn take_socket(fd: RawFd) -> Option<UnixStream> {
    if fd < 3 {
        return None;
    }
    // SAFETY: F_GETFD takes an integer and touches no memory; it tells
    // whether `fd` is open before anything takes ownership of it.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
        return None;
    }
    // SAFETY: the fd is open (checked above) and was left to this process
    // by the parent hoist for this handshake alone: nothing else owns it.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let is_socket = rustix::fs::fstat(&owned)
        .map(|st| rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::Socket)
        .unwrap_or(false);
    if !is_socket {
        // Not ours to close.
        std::mem::forget(owned);
        return None;
    }
    Some(UnixStream::from(owned))
}

/// Why the re-executed child could not become root of its namespace.
#[derive(Debug, thiserror::Error)]
enum BecomeRootError {
    #[error("setresgid 0: {0}")]
    Gid(#[source] nix::Error),
    #[error("setresuid 0: {0}")]
    Uid(#[source] nix::Error),
    #[error("parent-death signal: {0}")]
    DeathSignal(#[source] rustix::io::Errno),
    #[error("the parent hoist is gone")]
    ParentGone,
    #[error("making / private: {0}")]
    Private(#[source] rustix::io::Errno),
}

/// In the mapped namespace: ids 0, death with the parent, private mounts.
fn become_root(parent: Option<rustix::process::Pid>) -> Result<(), BecomeRootError> {
    let root = (Gid::from_raw(0), Uid::from_raw(0));
    setresgid(root.0, root.0, root.0).map_err(BecomeRootError::Gid)?;
    setresuid(root.1, root.1, root.1).map_err(BecomeRootError::Uid)?;
    // After the id changes, which clear it.
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .map_err(BecomeRootError::DeathSignal)?;
    if rustix::process::getppid() != parent {
        return Err(BecomeRootError::ParentGone);
    }
    rustix::mount::mount_change(
        "/",
        MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
    )
    .map_err(BecomeRootError::Private)
}
