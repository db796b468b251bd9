//! The user-mode network stack of a [`Network::Private`] step: `pasta`
//! (Debian's `passt`) or `slirp4netns`, attached from outside to the step's
//! fresh network namespace (BuildKit's default network, without a bridge
//! or root on the host).
//!
//! ```text
//! sandbox process ─ fork ─▶ child: unshare(net), loopback up, waits
//!                  open /proc/CHILD/ns/net; the child exits
//!                  spawn the stack (still in the host's namespace), the fd as its fd 3
//!                  setns(the new one)
//!                  wait for "ready" (pasta: its pid written to the pipe on fd 4;
//!                  slirp4netns: --ready-fd 4), then unshare mnt/pid/… and fork pid 1
//!                  … after pid 1 exits: kill the stack and wait for it
//! ```
//!
//! The stack runs in the host's network namespace (and hoist's user
//! namespace, whose root owns the step's: rootless and root alike) and
//! opens sockets there for the step's connections; it is started before
//! the pid namespace, so it is not a process of the step. It dies with the
//! sandbox process (`PR_SET_PDEATHSIG`, and slirp4netns's `--exit-fd`) and
//! is killed when the step ends.
//!
//! What the step must not reach (ARCHITECTURE.md's issue: a root step read
//! host traffic with `AF_PACKET` and connected to the host's abstract
//! unix sockets) is left behind by the namespace itself: its own
//! interfaces, its own abstract socket names. The stacks' ways back to the
//! host's loopback are turned off: pasta `-T none -U none` (no forwarding
//! of the namespace's loopback ports to the host's), `--no-map-gw` (the
//! gateway address is not the host), `-t none -u none` (nothing of the
//! step is exposed on the host); slirp4netns `--disable-host-loopback`
//! (10.0.2.2 is not the host's 127.0.0.1).

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use rustix::pipe::PipeFlags;
use rustix::thread::{LinkNameSpaceType, UnshareFlags};
use serde::{Deserialize, Serialize};

use crate::{Context, SandboxError};

/// A user-mode network stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stack {
    /// `pasta` from passt: splices the step's TCP into host sockets.
    Pasta,
    /// `slirp4netns`: libslirp's TCP/IP stack.
    Slirp4netns,
}

/// Where pasta answers DNS for the host's first resolver
/// (`--dns-forward`; podman's address for the same).
pub const PASTA_DNS: &str = "169.254.1.1";
/// slirp4netns's built-in DNS forwarder.
pub const SLIRP_DNS: &str = "10.0.2.3";

impl Stack {
    /// In the order hoist prefers them (docs/network.md has the figures).
    pub const ALL: [Stack; 2] = [Stack::Pasta, Stack::Slirp4netns];

    pub fn name(self) -> &'static str {
        match self {
            Stack::Pasta => "pasta",
            Stack::Slirp4netns => "slirp4netns",
        }
    }

    pub fn from_name(name: &str) -> Option<Stack> {
        Stack::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The address the step's `/etc/resolv.conf` names for a host resolver
    /// it cannot reach itself (a stub on the host's loopback).
    pub fn dns_forwarder(self) -> &'static str {
        match self {
            Stack::Pasta => PASTA_DNS,
            Stack::Slirp4netns => SLIRP_DNS,
        }
    }

    /// The binary, from `PATH`.
    pub fn find(self) -> Option<PathBuf> {
        let path = std::env::var_os("PATH").unwrap_or_else(|| {
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into()
        });
        std::env::split_paths(&path)
            .map(|dir| dir.join(self.name()))
            .find(|p| {
                rustix::fs::access(p.as_path(), rustix::fs::Access::EXEC_OK).is_ok() && p.is_file()
            })
    }

    /// The first installed stack of `order`.
    pub fn installed(order: &[Stack]) -> Option<(Stack, PathBuf)> {
        order.iter().find_map(|&s| s.find().map(|p| (s, p)))
    }
}

/// A running stack, stopped by [`Attached::stop`] (or by the sandbox
/// process's death).
pub(crate) struct Attached {
    child: Child,
    /// Signals through it cannot reach another process once the stack is
    /// gone (the sandbox's `supervise` may have reaped it already).
    pidfd: Option<OwnedFd>,
    /// slirp4netns's `--exit-fd` write end: closing it stops it.
    exit: Option<OwnedFd>,
}

impl Attached {
    /// Stop the stack and reap it (the step is over).
    pub(crate) fn stop(mut self) {
        drop(self.exit.take());
        match &self.pidfd {
            Some(pidfd) => {
                let _ = rustix::process::pidfd_send_signal(pidfd, rustix::process::Signal::KILL);
            }
            None => {
                let _ = self.child.kill();
            }
        }
        // ECHILD when `supervise` reaped it first.
        let _ = self.child.wait();
    }
}

/// Move this (single-threaded) process into a new network namespace
/// connected by `stack`; returns when the namespace's interface is up.
/// `log` receives the stack's messages (pasta warns on every start where
/// the host's resolver is a loopback stub, which the step's output need
/// not repeat); they are shown when it fails to start.
pub(crate) fn attach(stack: Stack, log: &Path) -> Result<Attached, SandboxError> {
    let exe = stack.find().ok_or_else(|| {
        SandboxError::Spec(format!(
            "{} is not installed (apt-get install {})",
            stack.name(),
            match stack {
                Stack::Pasta => "passt",
                Stack::Slirp4netns => "slirp4netns",
            }
        ))
    })?;
    let ns = new_netns()?;
    let started = spawn(stack, &exe, &ns, log)?;
    rustix::thread::move_into_link_name_space(ns.as_fd(), Some(LinkNameSpaceType::Network))
        .what(|| "enter the step's network namespace".into())?;
    Ok(started)
}

/// A new network namespace, loopback up, made by a short-lived child:
/// this process stays in the host's, where the stack must start (a
/// rootless hoist could not return to it: the host's network namespace
/// belongs to the initial user namespace).
fn new_netns() -> Result<OwnedFd, SandboxError> {
    let (said_r, said_w) = rustix::pipe::pipe_with(PipeFlags::CLOEXEC).what(|| "pipe".into())?;
    let (hold_r, hold_w) = rustix::pipe::pipe_with(PipeFlags::CLOEXEC).what(|| "pipe".into())?;
    // SAFETY: single-threaded (`dispatch` runs before any thread starts),
    // so the child may run any code; it leaves with `_exit`.
    match unsafe { nix::unistd::fork() }.what(|| "fork".into())? {
        nix::unistd::ForkResult::Child => {
            drop(said_r);
            drop(hold_w);
            // SAFETY: as above, single-threaded.
            let made = unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWNET) }
                .map_err(|e| e.raw_os_error())
                .and_then(|()| crate::netns::loopback_up().map_err(|e| errno_of(&e)));
            let msg = match made {
                Ok(()) => [0u8; 4],
                Err(errno) => errno.max(1).to_ne_bytes(),
            };
            let _ = rustix::io::write(&said_w, &msg);
            // Held until the parent has opened the namespace (or is gone).
            let _ = rustix::io::read(&hold_r, &mut [0u8; 1]);
            // SAFETY: _exit ends the child without running the parent's
            // exit handlers or destructors twice.
            unsafe { libc::_exit(0) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(said_w);
            drop(hold_r);
            let mut msg = [0u8; 4];
            let got = std::fs::File::from(said_r).read_exact(&mut msg);
            let opened = match got {
                Ok(()) if msg == [0; 4] => std::fs::File::open(format!("/proc/{child}/ns/net"))
                    .map(OwnedFd::from)
                    .what(|| "open the step's network namespace".into()),
                Ok(()) => Err(SandboxError::sys(
                    "make a network namespace",
                    std::io::Error::from_raw_os_error(i32::from_ne_bytes(msg)),
                )),
                Err(e) => Err(SandboxError::sys("make a network namespace", e)),
            };
            drop(hold_w);
            let _ = nix::sys::wait::waitpid(child, None);
            opened
        }
    }
}

fn errno_of(e: &SandboxError) -> i32 {
    match e {
        SandboxError::Sys { source, .. } => source.raw_os_error().unwrap_or(libc::EIO),
        SandboxError::Spec(_) | SandboxError::Seccomp(_) => libc::EIO,
    }
}

/// Start `exe` for the namespace `ns` (given to it as fd 3) and wait until
/// it says it is ready on fd 4.
fn spawn(stack: Stack, exe: &Path, ns: &OwnedFd, log: &Path) -> Result<Attached, SandboxError> {
    let (ready_r, ready_w) = rustix::pipe::pipe_with(PipeFlags::CLOEXEC).what(|| "pipe".into())?;
    let mut exit = None;
    let mut cmd = Command::new(exe);
    match stack {
        Stack::Pasta => {
            cmd.args([
                // Foreground: a child of this process, so it dies with it.
                "--foreground",
                "--quiet",
                // pasta drops to "nobody" when started as root, and nobody
                // may be unmapped in hoist's user namespace; it still
                // drops every capability but the network ones.
                "--runas",
                "0",
                "--config-net",
                "--netns",
                "/proc/self/fd/3",
                // Its pid, written once the namespace is configured.
                "--pid",
                "/proc/self/fd/4",
                // Nothing of the host's loopback or of the step is mapped
                // across: no port forwarding either way, the gateway is
                // the gateway.
                "-t",
                "none",
                "-u",
                "none",
                "-T",
                "none",
                "-U",
                "none",
                "--no-map-gw",
                "--dns-forward",
                PASTA_DNS,
            ]);
        }
        Stack::Slirp4netns => {
            let (exit_r, exit_w) =
                rustix::pipe::pipe_with(PipeFlags::CLOEXEC).what(|| "pipe".into())?;
            cmd.args([
                "--configure",
                "--mtu=65520",
                "--disable-host-loopback",
                // Its own mount namespace without the host's files, every
                // capability dropped but CAP_NET_BIND_SERVICE, and a
                // seccomp filter (as rootless podman runs it); pasta does
                // the like of its own accord.
                "--enable-sandbox",
                "--enable-seccomp",
                "--netns-type=path",
                "--ready-fd=4",
                "--exit-fd=5",
                "/proc/self/fd/3",
                "tap0",
            ]);
            exit = Some((exit_r, exit_w));
        }
    }
    let fds = [
        ns.as_raw_fd(),
        ready_w.as_raw_fd(),
        exit.as_ref().map_or(-1, |(r, _)| r.as_raw_fd()),
    ];
    let messages = std::fs::File::create(log).what(|| format!("create {}", log.display()))?;
    cmd.stdin(Stdio::null())
        .stdout(messages.try_clone().what(|| "dup".into())?)
        .stderr(messages);
    // SAFETY: the closure runs in the forked child before exec and only
    // makes async-signal-safe system calls (dup2 and prctl) on descriptors
    // this process owns; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            // dup2 clears close-on-exec on the copy: fds 3, 4 (and 5) are
            // all the stack inherits besides stdio.
            for (to, from) in (3..).zip(fds) {
                if from >= 0 && libc::dup2(from, to) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().what(|| format!("start {}", exe.display()))?;
    drop(ready_w);
    let exit = exit.map(|(r, w)| {
        drop(r);
        w
    });
    // pasta writes its pid and a newline; slirp4netns writes "1". EOF
    // before that: it failed (and said why on stderr, the step's output).
    let mut said = Vec::new();
    let mut ready = std::fs::File::from(ready_r);
    let mut byte = [0u8; 1];
    let ok = loop {
        match ready.read(&mut byte) {
            Ok(0) => break false,
            Ok(_) => {
                said.push(byte[0]);
                if stack == Stack::Slirp4netns || byte[0] == b'\n' {
                    break true;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break false,
        }
    };
    if !ok {
        let _ = child.kill();
        let status = child.wait();
        let said = std::fs::read_to_string(log).unwrap_or_default();
        let said: Vec<&str> = said
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("Failed to send"))
            .collect();
        return Err(SandboxError::Spec(format!(
            "{} could not connect the step's network namespace ({}): {}",
            stack.name(),
            status.map_or_else(|e| e.to_string(), |s| s.to_string()),
            said.join("; ")
        )));
    }
    let pidfd = rustix::process::Pid::from_child(&child);
    let pidfd = rustix::process::pidfd_open(pidfd, rustix::process::PidfdFlags::empty()).ok();
    Ok(Attached { child, pidfd, exit })
}
