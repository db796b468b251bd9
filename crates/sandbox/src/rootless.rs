//! Rootless hoist: an ordinary user runs hoist as root of its own user
//! namespace, as `buildah unshare` does.
//!
//! [`enter_if_unprivileged`], called first thing in `main`, re-executes
//! hoist when the effective uid is not 0:
//!
//! ```text
//! hoist (the user) ── spawn /proc/self/exe, HOIST_IN_USERNS=pending:FD ──▶ hoist (child)
//!                                                   unshare(user, mount) │
//!      ◀──────────────────────────── "u" on the socket FD ───────────────┘
//!   newuidmap PID 0 UID 1 1 START COUNT …
//!   newgidmap PID 0 GID 1 1 START COUNT …
//!      ─────────────────────────── "m" ──────────────────────────────────▶ setresuid(0), setresgid(0),
//!   waits; forwards SIGINT, SIGTERM,                                       / private, dies with the
//!   SIGHUP, SIGQUIT; exits with the child's code                           parent; runs the command
//! ```
//!
//! Inside, container id 0 is the user and ids 1..=N are the user's ranges
//! in `/etc/subuid` and `/etc/subgid`, so everything hoist writes (the
//! store, unpacked layers, the `RUN` sandbox) is owned on the host by the
//! user or by their subordinate ids. A user without ranges (or without
//! `newuidmap`) gets a single-id map (0 = the user), written directly after
//! `setgroups` is denied, and a one-line warning. The child unshares
//! itself after exec (a `pre_exec` unshare could not be mapped: `spawn`
//! returns only after exec), while it is still single-threaded.
//!
//! The child's default store is the user's (`$XDG_DATA_HOME/hoist` or
//! `~/.local/share/hoist`), passed as `HOIST_ROOT`: inside, the euid is 0
//! and the engine would otherwise pick `/var/lib/hoist`. Where user
//! namespaces are not allowed at all, the child says so and carries on as
//! the user, unprivileged.

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

/// Marks a hoist process started by [`enter_if_unprivileged`]:
/// `pending:FD` until its namespace is set up, then `1`. Set to `1` by
/// hand, it keeps hoist out of a user namespace.
pub const ENV: &str = "HOIST_IN_USERNS";

/// The signals the waiting parent passes on to the child.
const FORWARDED: [Signal; 4] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
];

/// Called first thing in `main` (after the sandbox's `dispatch`), while the
/// process is single-threaded. Running as a user (euid != 0): re-executes
/// hoist in a new user and mount namespace where it is root, waits for it
/// and returns its exit code (`Some`; 128 + signal when killed). In that
/// re-executed child, sets the namespace up and returns `None`, as it does
/// for root. The caller exits with a returned code.
pub fn enter_if_unprivileged() -> Option<i32> {
    if let Some(state) = std::env::var_os(ENV) {
        let fd = state.to_str()?.strip_prefix("pending:")?.parse().ok();
        return child(fd);
    }
    if rustix::process::geteuid().is_root() {
        return None;
    }
    Some(parent())
}

/// A range of subordinate ids: host ids `start..start + count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub start: u32,
    pub count: u32,
}

/// The ranges of `/etc/subuid` or `/etc/subgid` (`contents`) for the user
/// `name` or `id` (shadow accepts either in the first field), in file
/// order. Blank, `#` and malformed lines are skipped.
pub fn parse_subids(contents: &str, name: Option<&str>, id: u32) -> Vec<Range> {
    let id = id.to_string();
    contents
        .lines()
        .filter_map(|line| {
            let line = line.trim();
            if line.starts_with('#') {
                return None;
            }
            let mut fields = line.split(':');
            let (owner, start, count) = (fields.next()?, fields.next()?, fields.next()?);
            if fields.next().is_some() || (Some(owner) != name && owner != id) {
                return None;
            }
            let (start, count) = (start.trim().parse().ok()?, count.trim().parse().ok()?);
            let range = Range { start, count };
            // The kernel refuses a range that wraps past 2^32 - 1.
            (count > 0 && start.checked_add(count).is_some()).then_some(range)
        })
        .collect()
}

/// The id map arguments for newuidmap/newgidmap: `0 ID 1`, then the
/// ranges from container id 1 on (stopping where container ids would pass
/// 2^32 - 2, the last valid id). A range overlapping the user's id or an
/// earlier range is left out: the kernel refuses the whole map otherwise.
fn map_args(id: u32, ranges: &[Range]) -> Vec<String> {
    let mut args = vec!["0".to_string(), id.to_string(), "1".to_string()];
    let mut used = vec![(u64::from(id), 1u64)];
    let mut next: u32 = 1;
    for r in ranges {
        let (start, end) = (u64::from(r.start), u64::from(r.start) + u64::from(r.count));
        if used.iter().any(|&(s, n)| start < s + n && s < end) {
            continue;
        }
        used.push((start, u64::from(r.count)));
        let count = r.count.min(u32::MAX - next);
        if count == 0 {
            break;
        }
        args.extend([next.to_string(), r.start.to_string(), count.to_string()]);
        next += count;
    }
    args
}

/// uid or gid: the helper, the `/proc` file, the sub-id file.
#[derive(Clone, Copy)]
enum Kind {
    Uid,
    Gid,
}

impl Kind {
    fn tool(self) -> &'static str {
        match self {
            Kind::Uid => "newuidmap",
            Kind::Gid => "newgidmap",
        }
    }
    fn proc_file(self) -> &'static str {
        match self {
            Kind::Uid => "uid_map",
            Kind::Gid => "gid_map",
        }
    }
    fn subid_file(self) -> &'static str {
        match self {
            Kind::Uid => "/etc/subuid",
            Kind::Gid => "/etc/subgid",
        }
    }
}

/// The map of one kind, applied to the child `pid`: through the setuid
/// helper when there are ranges, else (or when it fails) the single id
/// written directly. `Ok(Some(why))` when only the single id is mapped.
fn write_map(kind: Kind, pid: u32, id: u32, ranges: &[Range]) -> Result<Option<String>, String> {
    let why = if ranges.is_empty() {
        format!("no ranges in {}", kind.subid_file())
    } else {
        match Command::new(kind.tool())
            .arg(pid.to_string())
            .args(map_args(id, ranges))
            .output()
        {
            Ok(out) if out.status.success() => return Ok(None),
            Ok(out) => format!(
                "{} failed: {}",
                kind.tool(),
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                format!("{} not found (Debian package uidmap)", kind.tool())
            }
            Err(e) => format!("{}: {e}", kind.tool()),
        }
    };
    let proc = PathBuf::from(format!("/proc/{pid}"));
    if let Kind::Gid = kind {
        // An unprivileged gid map needs setgroups(2) denied first.
        let path = proc.join("setgroups");
        std::fs::write(&path, "deny").map_err(|e| format!("{}: {e}", path.display()))?;
    }
    let path = proc.join(kind.proc_file());
    std::fs::write(&path, format!("0 {id} 1\n")).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Some(why))
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
fn parent() -> i32 {
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
        Err(e) => return fail(format!("socketpair: {e}")),
    };
    if let Err(e) = fcntl_setfd(&theirs, FdFlags::empty()) {
        return fail(format!("socketpair: {e}"));
    }
    let mask = match block_signals() {
        Ok(mask) => mask,
        Err(e) => return fail(format!("blocking signals: {e}")),
    };
    let mut args = std::env::args_os();
    let mut cmd = Command::new("/proc/self/exe");
    cmd.arg0(args.next().unwrap_or_else(|| OsString::from("hoist")))
        .args(args)
        .env(ENV, format!("pending:{}", theirs.as_raw_fd()));
    if let Some(root) = default_root() {
        cmd.env("HOIST_ROOT", root);
    }
    let child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => return fail(format!("re-executing hoist: {e}")),
    };
    drop(theirs);
    let pid = child.id();
    if handshake(ours, pid, (uid, &uid_ranges), (gid, &gid_ranges)).is_err() {
        let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
    }
    wait(Pid::from_raw(pid as i32), &mask)
}

/// Waits for the child's "unshared", writes its maps and answers "mapped".
/// `Err` when the maps could not be written (the reason is printed).
fn handshake(
    mut sock: UnixStream,
    pid: u32,
    (uid, uid_ranges): (u32, &[Range]),
    (gid, gid_ranges): (u32, &[Range]),
) -> Result<(), ()> {
    let mut said = [0u8];
    match sock.read(&mut said) {
        Ok(1) if said[0] == b'u' => {}
        // "x": the child could not unshare and carries on unprivileged; or it
        // is gone already. Either way there is nothing to map.
        _ => return Ok(()),
    }
    let result = write_map(Kind::Uid, pid, uid, uid_ranges)
        .and_then(|u| Ok((u, write_map(Kind::Gid, pid, gid, gid_ranges)?)));
    match result {
        Ok((single_uid, single_gid)) => {
            if let Some(why) = single_uid.or(single_gid) {
                eprintln!(
                    "hoist: warning: only your own id is mapped in the user namespace ({why}); \
                     builds needing other ids will fail or lose file ownership"
                );
            }
            // The child reads EOF if this fails, and gives up.
            let _ = sock.write_all(b"m");
            Ok(())
        }
        Err(e) => {
            eprintln!("hoist: cannot map ids into the user namespace: {e}");
            Err(())
        }
    }
}

fn fail(what: String) -> i32 {
    eprintln!("hoist: rootless: {what}");
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
fn wait(child: Pid, mask: &SigSet) -> i32 {
    loop {
        match waitpid(child, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => return code,
            Ok(WaitStatus::Signaled(_, sig, _)) => return 128 + sig as i32,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return fail(format!("waiting for the child: {e}")),
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
fn child(fd: Option<RawFd>) -> Option<i32> {
    // SAFETY: single-threaded (called first thing in `main`), so nothing
    // reads the environment concurrently. Set first: whatever happens
    // below, nothing this process starts re-enters a namespace.
    unsafe { std::env::set_var(ENV, "1") };
    // The parent's mask, inherited: the signals it passes on must act here.
    if let Err(e) = sigprocmask(SigmaskHow::SIG_UNBLOCK, Some(&waited_signals()), None) {
        eprintln!("hoist: rootless: unblocking signals: {e}");
        return Some(SETUP_FAILED);
    }
    let Some(mut sock) = fd.and_then(take_socket) else {
        eprintln!("hoist: {ENV} names no socket from a parent hoist");
        return Some(SETUP_FAILED);
    };
    let parent = rustix::process::getppid();
    // SAFETY: single-threaded (see above): no other thread shares the
    // credentials or the fs state that the new namespaces detach.
    let unshared =
        unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWUSER | UnshareFlags::NEWNS) };
    if let Err(e) = unshared {
        let _ = sock.write_all(b"x");
        eprintln!(
            "hoist: warning: cannot create a user namespace ({e}); running as your own user, \
             without file ownership or RUN"
        );
        return None;
    }
    let mut answer = [0u8];
    if sock.write_all(b"u").is_err() || sock.read_exact(&mut answer).is_err() || answer != *b"m" {
        // The parent printed why, or is gone.
        return Some(SETUP_FAILED);
    }
    drop(sock);
    match become_root(parent) {
        Ok(()) => None,
        Err(e) => {
            eprintln!("hoist: rootless: {e}");
            Some(SETUP_FAILED)
        }
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

/// In the mapped namespace: ids 0, death with the parent, private mounts.
fn become_root(parent: Option<rustix::process::Pid>) -> Result<(), String> {
    let root = (Gid::from_raw(0), Uid::from_raw(0));
    setresgid(root.0, root.0, root.0).map_err(|e| format!("setresgid 0: {e}"))?;
    setresuid(root.1, root.1, root.1).map_err(|e| format!("setresuid 0: {e}"))?;
    // After the id changes, which clear it.
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .map_err(|e| format!("parent-death signal: {e}"))?;
    if rustix::process::getppid() != parent {
        return Err("the parent hoist is gone".into());
    }
    rustix::mount::mount_change(
        "/",
        MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
    )
    .map_err(|e| format!("making / private: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
# a comment
alice:100000:65536
1001:300000:1000
bob:165536:65536
alice:500000:10

alice:bad:5
alice:1:0
alice:4294967295:2
alice:1:2:3
";

    #[test]
    fn subids_by_name_and_by_uid_in_file_order() {
        let alice = parse_subids(FILE, Some("alice"), 1001);
        assert_eq!(
            alice,
            vec![
                Range {
                    start: 100000,
                    count: 65536
                },
                Range {
                    start: 300000,
                    count: 1000
                },
                Range {
                    start: 500000,
                    count: 10
                },
            ],
            "name lines and uid lines both count; bad, empty and overflowing ranges are skipped"
        );
        assert_eq!(
            parse_subids(FILE, Some("bob"), 1002),
            vec![Range {
                start: 165536,
                count: 65536
            }]
        );
        assert_eq!(parse_subids(FILE, None, 1001).len(), 1, "by uid only");
        assert!(parse_subids(FILE, Some("carol"), 1003).is_empty());
        assert!(parse_subids("", Some("alice"), 1001).is_empty());
    }

    #[test]
    fn map_args_put_the_user_at_0_and_ranges_from_1() {
        let ranges = [
            Range {
                start: 100000,
                count: 65536,
            },
            Range {
                start: 300000,
                count: 10,
            },
        ];
        assert_eq!(
            map_args(1000, &ranges),
            [
                "0", "1000", "1", "1", "100000", "65536", "65537", "300000", "10"
            ]
        );
        assert_eq!(map_args(1000, &[]), ["0", "1000", "1"]);
        let overlapping = [
            ranges[0],
            Range {
                start: 165535,
                count: 65536,
            },
            Range {
                start: 999,
                count: 2,
            },
            ranges[1],
        ];
        assert_eq!(
            map_args(1000, &overlapping),
            map_args(1000, &ranges),
            "ranges overlapping an earlier one or the user's own id are left out"
        );
        // Every host id but the user's: container ids 1..=4294967294 (the
        // last valid one), nothing more.
        let all = [
            Range { start: 0, count: 7 },
            Range {
                start: 8,
                count: u32::MAX - 8,
            },
        ];
        assert_eq!(
            map_args(7, &all),
            [
                "0",
                "7",
                "1",
                "1",
                "0",
                "7",
                "8",
                "8",
                &(u32::MAX - 8).to_string()
            ],
        );
    }
}
