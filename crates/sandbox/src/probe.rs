//! The isolation probe: a sandbox process that only finds out what the
//! host allows ([`Facts`]), as a step's sandbox would try it, and reports
//! the [`Plan`] a mode gives with the line that says so.
//!
//! ```text
//! engine ── spawn `hoist __hoist-isolation SPEC` ──▶ probe: who am I (env, caps), mknod?
//!                                                      unshare(mnt, pid, ipc, uts), else without pid
//!                                                      └─ fork ─▶ child (pid 1): hostname?
//!                                                                 / private, fresh proc?
//!                                                                 bind /proc? overlay?
//!                                                                 → facts file, exit
//!                                                      decide(mode, facts)
//!                                                      Landlock signal scope? (on itself)
//!                                                      compile Docker's seccomp profile for
//!                                                      the plan, load it? (on itself)
//!                                                      → plan, line, filter: report file
//! ```
//!
//! It mounts only in its own namespaces, in a scratch directory the engine
//! gives it and removes.

use std::fs;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork};
use rustix::fs::CWD;
use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags, MoveMountFlags};
use rustix::thread::UnshareFlags;
use serde::{Deserialize, Serialize};

use crate::SETUP_FAILED;
use crate::isolation::{Facts, Mode, Plan, Refused, Unavailable, UserNs, decide, describe};

/// The first argument that makes the `hoist` binary an isolation probe.
pub const PROBE_ARG: &str = "__hoist-isolation";

/// What the engine asks the probe.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProbeSpec {
    pub mode: Mode,
    /// An empty directory the probe may fill (on the store's filesystem,
    /// so the overlay is tried where steps will have it).
    pub scratch: PathBuf,
    /// Where the [`ProbeReport`] goes.
    pub report: PathBuf,
}

/// What the probe found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProbeReport {
    pub facts: Facts,
    /// The plan, or why the mode cannot be had.
    pub plan: Result<Plan, Unavailable>,
    /// The line for the build's output (`isolation: …`), when there is a plan.
    pub line: String,
    /// Docker's default seccomp profile compiled for the plan's
    /// capabilities on this host (hex BPF, for [`crate::RunSpec::seccomp`]),
    /// when the plan has one.
    #[serde(default)]
    pub seccomp: Option<String>,
}

/// The command that runs the probe described by the spec file at `spec`.
pub fn command(exe: &Path, spec: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(exe);
    cmd.arg(PROBE_ARG)
        .arg(spec)
        .stdin(std::process::Stdio::null());
    cmd
}

#[allow(
    clippy::print_stderr,
    reason = "the entry point of a re-executed sandbox process: when its report file cannot be written, its stderr (the step's) is the only channel left"
)]
pub(crate) fn probe_main(spec_path: &Path) -> i32 {
    let spec: ProbeSpec = match fs::read(spec_path)
        .map_err(|e| format!("reading {}: {e}", spec_path.display()))
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| format!("bad probe spec: {e}")))
    {
        Ok(s) => s,
        Err(e) => {
            eprintln!("hoist isolation probe: {e}");
            return SETUP_FAILED;
        }
    };
    let _ = crate::sys::cloexec_from_3();
    let _ = rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL));
    let mut facts = probe(&spec);
    let mut plan = decide(spec.mode, &facts);
    let mut filter = None;
    if plan.is_ok() {
        // Tried on this process itself, last (neither can be undone, and a
        // new pid namespace whose pid 1 has exited allows no more forks):
        // only the report is written after.
        facts.signal_scope = crate::landlock::Scope::new()
            .and_then(|s| s.restrict_self(nnp()))
            .map_err(err);
        // The filter depends on the capabilities the plan leaves a step.
        if let Ok(p) = decide(spec.mode, &facts) {
            facts.seccomp = crate::seccomp::compile_for(&p)
                .map_err(|e| Refused(e.to_string()))
                .and_then(|hex| {
                    let program = crate::seccomp::Program::from_hex(&hex)
                        .map_err(|e| Refused(e.to_string()))?;
                    program.load(nnp()).map_err(err)?;
                    filter = Some(hex);
                    Ok(())
                });
        }
        plan = decide(spec.mode, &facts);
    }
    let line = plan
        .as_ref()
        .map(|p| describe(spec.mode, &facts, p))
        .unwrap_or_default();
    let seccomp = filter.filter(|_| plan.as_ref().is_ok_and(|p| p.seccomp));
    let report = ProbeReport {
        facts,
        plan,
        line,
        seccomp,
    };
    let written = serde_json::to_vec(&report)
        .map_err(std::io::Error::other)
        .and_then(|b| fs::write(&spec.report, b));
    match written {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("hoist isolation probe: {}: {e}", spec.report.display());
            SETUP_FAILED
        }
    }
}

/// Whether a step's process would set `no_new_privs` to confine itself.
fn nnp() -> bool {
    !crate::seccomp::can_load_without_nnp()
}

/// Who hoist is: from what the rootless re-exec recorded, and the caps.
pub(crate) fn user() -> UserNs {
    let map = || {
        let map = fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
        crate::idmap::describe_map(&map)
    };
    if let Some(kind) = std::env::var_os(crate::rootless::KIND_ENV) {
        return UserNs::Own {
            kind: kind.to_string_lossy().into_owned(),
            map: map(),
        };
    }
    let uid = rustix::process::geteuid().as_raw();
    if let Some(why) = std::env::var_os(crate::rootless::REFUSED_ENV) {
        return UserNs::Refused {
            why: why.to_string_lossy().into_owned(),
            uid,
        };
    }
    if crate::rootless::privileged() {
        return UserNs::Privileged {
            map: crate::userns::in_user_namespace().then(map),
        };
    }
    UserNs::Refused {
        why: format!(
            "not tried: {} is set (it keeps hoist out of a user namespace)",
            crate::rootless::ENV
        ),
        uid,
    }
}

fn probe(spec: &ProbeSpec) -> Facts {
    let caps = rustix::thread::capabilities(None).map(|c| c.effective);
    let mut facts = Facts {
        user: user(),
        chroot: caps.is_ok_and(|c| c.contains(rustix::thread::CapabilitySet::SYS_CHROOT)),
        mknod: mknod_works(&spec.scratch),
        ..Facts::default()
    };
    let base = UnshareFlags::NEWNS | UnshareFlags::NEWIPC | UnshareFlags::NEWUTS;
    if spec.mode == Mode::Chroot {
        facts.pid_ns = Err("not used by chroot isolation".into());
        facts.namespaces = unshare(base);
    } else if let Err(e) = unshare(base | UnshareFlags::NEWPID) {
        facts.pid_ns = Err(e);
        facts.namespaces = unshare(base);
    }
    if facts.namespaces.is_err() {
        // The line gives the kernel's answer once, for the namespaces.
        let no = Err(Refused::from("no mount namespace"));
        facts.fresh_proc = no.clone();
        facts.bound_proc = no.clone();
        facts.hostname = no.clone();
        facts.overlay = no;
        return facts;
    }
    // The mounts are tried in a child: pid 1 of the new pid namespace.
    let found = spec.scratch.join("facts.json");
    // SAFETY: single-threaded (see above), so the child may run any code.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            let mounts = try_mounts(spec.mode, &spec.scratch);
            let code = serde_json::to_vec(&mounts)
                .ok()
                .and_then(|b| fs::write(&found, b).ok())
                .map_or(1, |()| 0);
            std::process::exit(code);
        }
        Ok(ForkResult::Parent { child }) => {
            let done = loop {
                match waitpid(child, None) {
                    Err(nix::errno::Errno::EINTR) => continue,
                    other => break other,
                }
            };
            let read = fs::read(&found)
                .ok()
                .and_then(|b| serde_json::from_slice::<Mounts>(&b).ok());
            match (done, read) {
                (Ok(WaitStatus::Exited(_, 0)), Some(m)) => {
                    facts.fresh_proc = m.fresh_proc;
                    facts.bound_proc = m.bound_proc;
                    facts.overlay = m.overlay;
                    facts.hostname = m.hostname;
                }
                (done, _) => {
                    let why = Err(Refused(format!("the probe's child failed: {done:?}")));
                    facts.fresh_proc = why.clone();
                    facts.bound_proc = why.clone();
                    facts.hostname = why.clone();
                    facts.overlay = why;
                }
            }
        }
        Err(e) => {
            let why = Err(Refused(format!("fork: {e}")));
            facts.fresh_proc = why.clone();
            facts.bound_proc = why.clone();
            facts.hostname = why.clone();
            facts.overlay = why;
        }
    }
    facts
}

/// What the child found.
#[derive(Debug, Serialize, Deserialize)]
struct Mounts {
    fresh_proc: Result<(), Refused>,
    bound_proc: Result<(), Refused>,
    overlay: Result<(), Refused>,
    hostname: Result<(), Refused>,
}

fn try_mounts(mode: Mode, scratch: &Path) -> Mounts {
    let hostname = rustix::system::sethostname(b"buildkitsandbox").map_err(err);
    let private = rustix::mount::mount_change(
        "/",
        rustix::mount::MountPropagationFlags::PRIVATE | rustix::mount::MountPropagationFlags::REC,
    );
    if let Err(e) = private {
        let why = Err(Refused(format!("make / private: {}", err(e))));
        return Mounts {
            fresh_proc: why.clone(),
            bound_proc: why.clone(),
            overlay: why,
            hostname,
        };
    }
    let fresh_proc = if mode == Mode::Chroot {
        Err("not used by chroot isolation".into())
    } else {
        fresh_proc()
    };
    let bound_proc = bound_proc(&scratch.join("proc"));
    Mounts {
        fresh_proc,
        bound_proc,
        overlay: overlay(scratch),
        hostname,
    }
}

/// A new proc mount, as the sandbox makes it (`rootfs`).
fn fresh_proc() -> Result<(), Refused> {
    let fs = rustix::mount::fsopen("proc", FsOpenFlags::FSOPEN_CLOEXEC).map_err(err)?;
    rustix::mount::fsconfig_create(&fs).map_err(err)?;
    rustix::mount::fsmount(
        &fs,
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::MOUNT_ATTR_NOSUID
            | MountAttrFlags::MOUNT_ATTR_NODEV
            | MountAttrFlags::MOUNT_ATTR_NOEXEC,
    )
    .map_err(err)?;
    Ok(())
}

/// hoist's `/proc` bound recursively at `target`.
fn bound_proc(target: &Path) -> Result<(), Refused> {
    fs::create_dir(target).map_err(|e| Refused(format!("mkdir {}: {e}", target.display())))?;
    let tree = crate::procfs::clone_proc().map_err(err)?;
    rustix::mount::move_mount(
        tree.as_fd(),
        "",
        CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(err)
}

/// An overlay of scratch directories, as a step's root is mounted.
fn overlay(scratch: &Path) -> Result<(), Refused> {
    let dirs: Vec<PathBuf> = ["lower", "upper", "work", "merged"]
        .iter()
        .map(|d| scratch.join(d))
        .collect();
    for d in &dirs {
        fs::create_dir(d).map_err(|e| Refused(format!("mkdir {}: {e}", d.display())))?;
    }
    let userxattr = crate::userns::in_user_namespace();
    let mnt =
        crate::rootfs::detached_overlay(&dirs[..1], &dirs[1], &dirs[2], userxattr).map_err(err)?;
    rustix::mount::move_mount(
        mnt.as_fd(),
        "",
        CWD,
        &dirs[3],
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .map_err(err)
}

/// Whether a character device (`/dev/null`'s numbers) can be made here.
fn mknod_works(scratch: &Path) -> bool {
    let node = scratch.join("null");
    let made = rustix::fs::mknodat(
        CWD,
        &node,
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::from_raw_mode(0o666),
        rustix::fs::makedev(1, 3),
    )
    .is_ok();
    let _ = fs::remove_file(&node);
    made
}

fn unshare(flags: UnshareFlags) -> Result<(), Refused> {
    // SAFETY: the probe is single-threaded (`dispatch` runs before any
    // thread starts), so no other thread shares the fs state that
    // unsharing the mount namespace detaches.
    unsafe { rustix::thread::unshare_unsafe(flags) }.map_err(err)
}

fn err(e: impl Into<std::io::Error>) -> Refused {
    Refused(e.into().to_string())
}
