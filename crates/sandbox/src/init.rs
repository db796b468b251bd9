//! The two supervising processes of a sandbox.
//!
//! The sandbox process (started by the engine) unshares the namespaces the
//! step's [`Plan`](crate::isolation::Plan) has and forks pid 1 of the new
//! pid namespace (without one: a subreaper that kills what the step leaves
//! behind, `reap`). pid 1 assembles the root
//! (`rootfs`), starts the step's command (`exec`), reaps every child the
//! namespace leaves it, forwards signals to the command, and exits with the
//! command's status. Both die with their parent (`PR_SET_PDEATHSIG`).

use std::fs::File;
use std::os::fd::OwnedFd;
use std::os::unix::fs::FileExt;
use std::path::Path;

use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{ForkResult, Pid, fork, getppid};
use rustix::thread::UnshareFlags;

use crate::spec::{Network, Report, RunSpec};
use crate::{Context, SETUP_FAILED, SandboxError};

/// The signals pid 1 and the sandbox process pass on to their child.
const FORWARDED: [Signal; 6] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

#[allow(
    clippy::print_stderr,
    reason = "the entry point of a re-executed sandbox process: when its report file cannot be written, its stderr (the step's) is the only channel left"
)]
pub(crate) fn sandbox_main(spec_path: &Path) -> i32 {
    let spec: RunSpec = match std::fs::read(spec_path)
        .map_err(|e| format!("reading {}: {e}", spec_path.display()))
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| format!("bad run spec: {e}")))
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("hoist sandbox: {e}");
            return SETUP_FAILED;
        }
    };
    // Opened now: after pivot_root the host path is out of reach.
    let report = match std::fs::File::create(&spec.report) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("hoist sandbox: {}: {e}", spec.report.display());
            return SETUP_FAILED;
        }
    };
    match start(&spec, &report) {
        Ok(code) => code,
        Err(e) => {
            write_report(&report, &Report::error(e));
            SETUP_FAILED
        }
    }
}

#[allow(
    clippy::print_stderr,
    reason = "inside the sandbox process: the cgroup warning goes out with the step's own output, where the user reads it"
)]
fn start(spec: &RunSpec, report: &File) -> Result<i32, SandboxError> {
    crate::sys::cloexec_from_3().what(|| "close inherited descriptors".into())?;
    die_with_parent()?;
    // Neither this process nor pid 1 may be opened through a /proc a step sees.
    rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable)
        .what(|| "make the sandbox non-dumpable".into())?;
    let plan = spec.isolation;
    let mut flags = UnshareFlags::empty();
    if plan.namespaces {
        flags |= UnshareFlags::NEWNS | UnshareFlags::NEWIPC | UnshareFlags::NEWUTS;
        if plan.pid_ns {
            flags |= UnshareFlags::NEWPID;
        }
    }
    if spec.network != Network::Host && !plan.namespaces {
        return Err(SandboxError::Spec(format!(
            "--network={} needs a network namespace, and chroot isolation without namespaces \
             has none (--network=host with --allow network.host shares the host's)",
            if spec.network == Network::None {
                "none"
            } else {
                "default"
            }
        )));
    }
    if spec.network == Network::None {
        flags |= UnshareFlags::NEWNET;
    }
    // Before the pid namespace: the stack is not a process of the step.
    let stack = match (spec.network, spec.stack) {
        (Network::Private, Some(stack)) => Some(crate::stack::attach(
            stack,
            &spec.report.with_file_name("network-stack.log"),
        )?),
        (Network::Private, None) => {
            return Err(SandboxError::Spec(
                "a private network needs a network stack (pasta or slirp4netns)".into(),
            ));
        }
        _ => None,
    };
    if !flags.is_empty() {
        // SAFETY: this process is single-threaded (`dispatch` runs before any
        // thread starts), so no other thread shares the fs state or file table
        // that unsharing the mount namespace detaches.
        unsafe { rustix::thread::unshare_unsafe(flags) }.what(|| "unshare namespaces".into())?;
    }
    if spec.network == Network::None {
        crate::netns::loopback_up()?;
    }
    if let Some(name) = &spec.limits.cgroup
        && let Err(why) = crate::cgroup::enter(name, &spec.limits)
    {
        eprintln!(
            "hoist: --memory/--cpus are unavailable here ({why}): the step runs without them"
        );
    }
    let mask = block_signals()?;
    // pid 1 watches this pipe: when its write end closes, this process is gone.
    let (alive_r, alive_w) = rustix::pipe::pipe().what(|| "pipe".into())?;
    // SAFETY: single-threaded (see above), so the child may run any code.
    match unsafe { fork() }.what(|| "fork pid 1".into())? {
        ForkResult::Child => {
            drop(alive_w);
            let code = pid1(spec, report, &mask, &alive_r);
            std::process::exit(code);
        }
        ForkResult::Parent { child } => {
            drop(alive_r);
            let code = supervise(child, &mask);
            drop(alive_w);
            if let Some(stack) = stack {
                stack.stop();
            }
            Ok(code)
        }
    }
}

/// pid 1 of the sandbox's pid namespace.
fn pid1(spec: &RunSpec, report: &File, mask: &SigSet, alive: &OwnedFd) -> i32 {
    if let Err(e) =
        rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
    {
        write_report(
            report,
            &Report::error(SandboxError::sys("set the parent-death signal", e)),
        );
        return SETUP_FAILED;
    }
    // The parent may have died before the line above: its pipe says so.
    let mut fds = [rustix::event::PollFd::new(
        alive,
        rustix::event::PollFlags::IN,
    )];
    if rustix::event::poll(&mut fds, Some(&rustix::event::Timespec::default())).unwrap_or(0) > 0 {
        return SETUP_FAILED;
    }
    let assembled = match crate::rootfs::assemble(spec) {
        Ok(a) => a,
        Err(e) => {
            write_report(report, &Report::error(e));
            return SETUP_FAILED;
        }
    };
    // Without a pid namespace, orphans of the step come here (and are
    // killed at its end) instead of going to the host's init.
    if !spec.isolation.pid_ns
        && let Err(e) = rustix::process::set_child_subreaper(Some(rustix::process::getpid()))
    {
        write_report(
            report,
            &Report::error(SandboxError::sys("become a subreaper", e)),
        );
        return SETUP_FAILED;
    }
    let child = match crate::exec::spawn(spec) {
        Ok(child) => child,
        Err(e) => {
            write_report(report, &Report::error(e));
            return SETUP_FAILED;
        }
    };
    write_report(report, &Report::default());
    let code = supervise(Pid::from_raw(child as i32), mask);
    if !spec.isolation.pid_ns {
        crate::reap::kill_descendants(child);
    }
    if code == 0 {
        assembled.undo();
    }
    code
}

impl Report {
    fn error(e: SandboxError) -> Report {
        Report {
            error: Some(e.to_string()),
        }
    }
}

/// Wait for `child`, reaping every other child too, passing on forwarded
/// signals; the child's exit code (128 + signal when killed).
fn supervise(child: Pid, mask: &SigSet) -> i32 {
    loop {
        // Reap everything that has exited.
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if pid == child => return code,
                Ok(WaitStatus::Signaled(pid, sig, _)) if pid == child => return 128 + sig as i32,
                Ok(WaitStatus::StillAlive) => break,
                Ok(_) => continue,
                // No children left at all: the child is gone.
                Err(nix::errno::Errno::ECHILD) => return SETUP_FAILED,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => break,
            }
        }
        match mask.wait() {
            Ok(Signal::SIGCHLD) | Err(_) => {}
            Ok(sig) => {
                let _ = kill(child, sig);
            }
        }
    }
}

/// Block SIGCHLD and the forwarded signals so `supervise` takes them with
/// `sigwait` (a blocked signal reaches even pid 1 of a namespace). The
/// step's process unblocks them before exec (`exec`).
fn block_signals() -> Result<SigSet, SandboxError> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGCHLD);
    for s in FORWARDED {
        set.add(s);
    }
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None).what(|| "block signals".into())?;
    Ok(set)
}

/// SIGKILL when the engine goes; if it already went (this process's parent
/// is no longer the pid the engine gave), go now.
fn die_with_parent() -> Result<(), SandboxError> {
    rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
        .what(|| "set the parent-death signal".into())?;
    let expected = std::env::var(crate::PARENT_ENV)
        .ok()
        .and_then(|p| p.parse::<i32>().ok());
    if let Some(pid) = expected
        && getppid() != Pid::from_raw(pid)
    {
        return Err(SandboxError::Spec(
            "the engine that started the sandbox is gone".into(),
        ));
    }
    Ok(())
}

fn write_report(file: &File, report: &Report) {
    if let Ok(bytes) = serde_json::to_vec(report) {
        let _ = file.set_len(0);
        let _ = file.write_all_at(&bytes, 0);
    }
}
