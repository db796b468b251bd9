//! How isolated a build's `RUN` steps are (`hoist build --isolation`), and
//! what hoist does where the host or a container engine refuses something.
//!
//! The modes carry Buildah's names:
//!
//! | mode | hoist is | a step gets |
//! | --- | --- | --- |
//! | `oci` | root with `CAP_SYS_ADMIN` (no user namespace of its own) | mount, pid, ipc, uts namespaces, a fresh `/proc` |
//! | `rootless` | root of its own user namespace ([`crate::rootless`]) | the same, inside it |
//! | `chroot` | either, or root without any namespace | hoist's pid namespace and `/proc`; mount, ipc, uts namespaces where allowed, else none: a `chroot(2)` into a copy of the root |
//! | `auto` | whichever it is | the strongest of the above the host allows |
//!
//! `oci`, `rootless` and `chroot` are exact: what they need is either there
//! or the build fails saying why. `auto` (the default) takes `oci` or
//! `rootless`, and only where the kernel refuses a part of it, a weaker
//! form of that part:
//!
//! - a fresh `/proc` refused (a container engine masks parts of its own
//!   `/proc`, and the kernel then refuses a new one in a user namespace):
//!   hoist's own `/proc` bound recursively, its masks kept, Docker's
//!   protections added, and every process outside the step's pid namespace
//!   that exists when the step starts hidden behind an empty mount;
//! - a pid namespace refused: none (steps see and may signal hoist's
//!   processes).
//!
//! In every mode, where a seccomp profile refuses `sethostname` (podman's
//! and Docker's default ones do, to a container without `CAP_SYS_ADMIN`)
//! the step keeps its uts namespace and hoist's hostname instead of
//! BuildKit's `buildkitsandbox`.
//!
//! In every mode each step runs under Docker's default seccomp profile
//! ([`crate::seccomp`], compiled by the probe); where the kernel or a
//! container engine's profile refuses loading one, the steps run without
//! it and the line says so. A step without a pid namespace gets a Landlock
//! domain that keeps its signals and ptrace to its own processes; where
//! Landlock cannot scope signals it loses `CAP_KILL` instead, and the line
//! says which processes it can still reach.
//!
//! It never drops the mount namespace: a plain chroot only comes with
//! `--isolation=chroot`. Where overlayfs cannot be mounted the copying
//! snapshotter takes over in every mode (the engine's, `ops/run/copy.rs`).
//!
//! The engine probes once per build ([`crate::probe`]): the facts found
//! ([`Facts`]) and the mode give a [`Plan`] ([`decide`]), which every step
//! then must get exactly, and one line for the build's output ([`describe`]).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// `--isolation`: what a build's `RUN` steps must get.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The strongest the host allows, never a plain chroot.
    #[default]
    Auto,
    /// hoist as root with `CAP_SYS_ADMIN`: all namespaces, a fresh `/proc`.
    Oci,
    /// hoist as root of its own user namespace: all namespaces inside it.
    Rootless,
    /// No pid namespace; a mount namespace where allowed, else none.
    Chroot,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Auto => "auto",
            Mode::Oci => "oci",
            Mode::Rootless => "rootless",
            Mode::Chroot => "chroot",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An `--isolation` value that names no mode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown isolation {0:?} (auto, oci, rootless or chroot)")]
pub struct UnknownMode(pub String);

impl FromStr for Mode {
    type Err = UnknownMode;

    fn from_str(s: &str) -> Result<Mode, UnknownMode> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" | "" => Ok(Mode::Auto),
            "oci" => Ok(Mode::Oci),
            "rootless" => Ok(Mode::Rootless),
            "chroot" => Ok(Mode::Chroot),
            _ => Err(UnknownMode(s.to_owned())),
        }
    }
}

/// Where a step's `/proc` comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum ProcSource {
    /// A new proc mount of the step's pid namespace.
    #[default]
    Fresh,
    /// hoist's own `/proc`, bound recursively (with what masks it has).
    Bound,
    /// None (no mount namespace to put one in).
    Absent,
}

/// What every step of a build gets, decided once ([`decide`]) and then
/// required: a step that cannot get it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Mount, ipc and uts namespaces (and a network one for
    /// `--network=none`); false: no namespace at all, a `chroot(2)` into a
    /// copied root (`Rootfs::copy`).
    pub namespaces: bool,
    /// A pid namespace whose pid 1 is the sandbox's.
    pub pid_ns: bool,
    pub proc: ProcSource,
    /// The step's hostname is set in its uts namespace (a seccomp profile
    /// may refuse `sethostname` even there: the step then sees hoist's).
    pub hostname: bool,
    /// Docker's default seccomp profile on every step (not with
    /// `RUN --security=insecure`); false only where loading one was refused.
    #[serde(default)]
    pub seccomp: bool,
    /// Without a pid namespace: a Landlock domain that keeps the step's
    /// signals and ptrace to its own processes. Where Landlock cannot scope
    /// signals, steps lose `CAP_KILL` instead (and reach their own uid's).
    #[serde(default)]
    pub signal_scope: bool,
}

impl Default for Plan {
    /// The strongest: every namespace, a fresh `/proc`, the hostname.
    fn default() -> Plan {
        Plan {
            namespaces: true,
            pid_ns: true,
            proc: ProcSource::Fresh,
            hostname: true,
            seccomp: true,
            signal_scope: false,
        }
    }
}

impl Plan {
    /// Whether the step's `/proc` shows processes outside its pid
    /// namespace (then those present at its start are hidden).
    pub fn proc_shows_outside(&self) -> bool {
        self.proc != ProcSource::Absent && (self.proc == ProcSource::Bound || !self.pid_ns)
    }
}

/// Who hoist is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum UserNs {
    /// Root with `CAP_SYS_ADMIN`; `map` when that is in a user namespace
    /// someone else made (`podman unshare`, a privileged rootless container).
    Privileged { map: Option<String> },
    /// Root of hoist's own user namespace: how it was mapped, and the map.
    Own { kind: String, map: String },
    /// Without `CAP_SYS_ADMIN` and without a user namespace of its own:
    /// making one was refused (`why`).
    Refused { why: String, uid: u32 },
}

impl Default for UserNs {
    fn default() -> UserNs {
        UserNs::Privileged { map: None }
    }
}

/// The host's answer to one thing the probe tried (`unshare`, a mount,
/// `sethostname`, loading a filter): why it was refused, as the kernel (or
/// the probe, when it did not try) said it. Text, since it crosses from
/// the probe process as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(transparent)]
#[error("{0}")]
pub struct Refused(pub String);

impl From<&str> for Refused {
    fn from(why: &str) -> Refused {
        Refused(why.to_owned())
    }
}

impl From<String> for Refused {
    fn from(why: String) -> Refused {
        Refused(why)
    }
}

impl std::ops::Deref for Refused {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

/// What the host allowed, as the probe found it. Each `Err` is the
/// kernel's answer (or why it was not tried).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts {
    pub user: UserNs,
    /// `unshare` of mount, ipc and uts namespaces.
    pub namespaces: Result<(), Refused>,
    /// `unshare` of a pid namespace with them.
    pub pid_ns: Result<(), Refused>,
    /// A new proc mount (in the new pid namespace when there is one).
    pub fresh_proc: Result<(), Refused>,
    /// A recursive bind of hoist's own `/proc`.
    pub bound_proc: Result<(), Refused>,
    /// An overlay mount in the store's `tmp/`.
    pub overlay: Result<(), Refused>,
    /// `sethostname` in the new uts namespace.
    pub hostname: Result<(), Refused>,
    /// `CAP_SYS_CHROOT` (a chroot without namespaces needs it).
    pub chroot: bool,
    /// `mknod` of a character device works (for `/dev` without mounts).
    pub mknod: bool,
    /// Loading Docker's default seccomp filter (a container engine's own
    /// profile may refuse `seccomp`/`prctl`, or the kernel lack filters).
    #[serde(default = "ok")]
    pub seccomp: Result<(), Refused>,
    /// A Landlock domain scoping signals (Linux 6.12, Landlock enabled).
    #[serde(default = "ok")]
    pub signal_scope: Result<(), Refused>,
}

fn ok() -> Result<(), Refused> {
    Ok(())
}

impl Default for Facts {
    /// Everything allowed (as for root of a host).
    fn default() -> Facts {
        Facts {
            user: UserNs::default(),
            namespaces: Ok(()),
            pid_ns: Ok(()),
            fresh_proc: Ok(()),
            bound_proc: Ok(()),
            overlay: Ok(()),
            hostname: Ok(()),
            chroot: true,
            mknod: true,
            seccomp: Ok(()),
            signal_scope: Ok(()),
        }
    }
}

const DOCS: &str = "see docs/rootless.md";

/// Why an isolation mode cannot be had on this host (what [`decide`]
/// refuses), saying what would do. Serialized: it crosses from the probe
/// process to the engine in [`crate::probe::ProbeReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Unavailable {
    /// `oci` asked of hoist in a user namespace of its own.
    #[error(
        "--isolation=oci needs hoist to run as root with CAP_SYS_ADMIN; this hoist runs as root \
         of its own user namespace ({kind}: {map}) because it was started by an ordinary user or \
         without CAP_SYS_ADMIN: use --isolation=rootless or auto"
    )]
    OciInOwnUserNs { kind: String, map: String },
    /// `oci` asked of an ordinary user who cannot make a user namespace.
    #[error(
        "--isolation=oci needs hoist to run as root with CAP_SYS_ADMIN; this hoist runs as uid \
         {uid} without it (and making a user namespace was refused: {why})"
    )]
    OciWithoutCaps { uid: u32, why: String },
    /// `rootless` asked of root with `CAP_SYS_ADMIN`.
    #[error(
        "--isolation=rootless is the user namespace hoist makes when an ordinary user (or root \
         without CAP_SYS_ADMIN) starts it; this hoist runs as root with CAP_SYS_ADMIN: use \
         --isolation=oci or auto"
    )]
    RootlessAsRoot,
    /// `rootless` where a user namespace cannot be made.
    #[error(
        "--isolation=rootless: making a user namespace was refused ({why}); {docs} for what the \
         host and the container engine must allow",
        docs = DOCS
    )]
    RootlessRefused { why: String },
    /// `chroot` without namespaces and without `CAP_SYS_CHROOT`.
    #[error(
        "--isolation=chroot without namespaces (making them was refused: {why}) needs \
         CAP_SYS_CHROOT, which this hoist does not have"
    )]
    ChrootWithoutCap { why: String },
    /// No mount namespace (any mode but `chroot`).
    #[error(
        "RUN needs a mount namespace, and making one was refused ({why}){}: a seccomp profile \
         (Docker's default refuses unshare) or the kernel's settings forbid it; {} ({docs})",
        user_refused_text(.user_refused),
        chroot_text(*.chroot),
        docs = DOCS
    )]
    NoMountNs {
        why: String,
        /// Why a user namespace was refused too, if it was.
        user_refused: Option<String>,
        /// Whether `--isolation=chroot` could run here.
        chroot: bool,
    },
    /// `oci` or `rootless` without a pid namespace.
    #[error(
        "--isolation={mode} needs a pid namespace, and making one was refused ({why}); \
         --isolation=auto runs steps in hoist's own"
    )]
    NoPidNs { mode: Mode, why: String },
    /// `chroot` could not bind hoist's `/proc`.
    #[error("--isolation=chroot: binding hoist's /proc failed: {why}")]
    ChrootProc { why: String },
    /// `oci` or `rootless` without a fresh `/proc`.
    #[error(
        "--isolation={mode} needs a fresh /proc, and mounting one was refused ({why}): container \
         engines mask parts of /proc, and the kernel then refuses a new one (podman run \
         --security-opt unmask=/proc/*, docker run --security-opt systempaths=unconfined lift \
         the masks); --isolation=auto binds hoist's own /proc instead"
    )]
    NoFreshProc { mode: Mode, why: String },
    /// Neither a fresh `/proc` nor a bind of hoist's.
    #[error("a fresh /proc was refused ({fresh}) and binding hoist's own failed ({bound})")]
    NoProc { fresh: String, bound: String },
}

fn user_refused_text(why: &Option<String>) -> String {
    why.as_ref()
        .map(|why| format!(", and making a user namespace was refused ({why})"))
        .unwrap_or_default()
}

fn chroot_text(chroot: bool) -> &'static str {
    if chroot {
        "--isolation=chroot runs steps in a plain chroot without any namespace, which isolates \
         far less"
    } else {
        "--isolation=chroot, a plain chroot without namespaces, would need root with \
         CAP_SYS_CHROOT"
    }
}

/// The plan `mode` gives on a host with `facts`, or why it cannot be had.
pub fn decide(mode: Mode, f: &Facts) -> Result<Plan, Unavailable> {
    match (mode, &f.user) {
        (Mode::Oci, UserNs::Own { kind, map }) => {
            return Err(Unavailable::OciInOwnUserNs {
                kind: kind.clone(),
                map: map.clone(),
            });
        }
        (Mode::Oci, UserNs::Refused { why, uid }) => {
            return Err(Unavailable::OciWithoutCaps {
                uid: *uid,
                why: why.clone(),
            });
        }
        (Mode::Rootless, UserNs::Privileged { .. }) => {
            return Err(Unavailable::RootlessAsRoot);
        }
        (Mode::Rootless, UserNs::Refused { why, .. }) => {
            return Err(Unavailable::RootlessRefused { why: why.clone() });
        }
        _ => {}
    }
    let namespaces = match &f.namespaces {
        Ok(()) => true,
        Err(why) if mode == Mode::Chroot => {
            if !f.chroot {
                return Err(Unavailable::ChrootWithoutCap {
                    why: why.to_string(),
                });
            }
            false
        }
        Err(why) => {
            let user_refused = match &f.user {
                UserNs::Refused { why, .. } => Some(why.clone()),
                _ => None,
            };
            return Err(Unavailable::NoMountNs {
                why: why.to_string(),
                user_refused,
                chroot: f.chroot,
            });
        }
    };
    let pid_ns = match (mode, &f.pid_ns) {
        _ if !namespaces || mode == Mode::Chroot => false,
        (_, Ok(())) => true,
        (Mode::Auto, Err(_)) => false,
        (_, Err(why)) => {
            return Err(Unavailable::NoPidNs {
                mode,
                why: why.to_string(),
            });
        }
    };
    let proc = if !namespaces {
        ProcSource::Absent
    } else if mode == Mode::Chroot {
        // Never a new proc for hoist's own pid namespace: it would drop
        // the masks a container engine put on its /proc.
        f.bound_proc
            .clone()
            .map(|()| ProcSource::Bound)
            .map_err(|why| Unavailable::ChrootProc { why: why.0 })?
    } else {
        match (&f.fresh_proc, &f.bound_proc) {
            (Ok(()), _) => ProcSource::Fresh,
            (Err(why), _) if mode != Mode::Auto => {
                return Err(Unavailable::NoFreshProc {
                    mode,
                    why: why.to_string(),
                });
            }
            (Err(_), Ok(())) => ProcSource::Bound,
            (Err(why), Err(bound)) => {
                return Err(Unavailable::NoProc {
                    fresh: why.to_string(),
                    bound: bound.to_string(),
                });
            }
        }
    };
    Ok(Plan {
        namespaces,
        pid_ns,
        proc,
        // Not isolation (the uts namespace is the step's either way), so no
        // mode insists: BuildKit's hostname where it can be set.
        hostname: namespaces && f.hostname.is_ok(),
        // A filter hoist could not load is said in the line (in every mode:
        // a container engine's profile is not the namespaces a mode names).
        seccomp: f.seccomp.is_ok(),
        signal_scope: !pid_ns && f.signal_scope.is_ok(),
    })
}

/// The one line a build prints about its steps' isolation (without the
/// snapshotter, which the engine adds).
pub fn describe(mode: Mode, f: &Facts, plan: &Plan) -> String {
    let name = match (&f.user, plan.namespaces) {
        _ if mode == Mode::Chroot || !plan.namespaces => "chroot",
        (UserNs::Own { .. }, _) => "rootless",
        _ => "oci",
    };
    let user = match &f.user {
        UserNs::Privileged { map: None } => "root, no user namespace".to_string(),
        UserNs::Privileged { map: Some(map) } => {
            format!("root of the user namespace hoist was started in: {map}")
        }
        UserNs::Own { kind, map } => format!("user namespace, {kind}: {map}"),
        UserNs::Refused { why, uid } => {
            format!("uid {uid}, user namespace refused: {}", short(why))
        }
    };
    let mut parts = vec![format!("isolation: {name} ({user})")];
    if !plan.namespaces {
        let why = f.namespaces.as_ref().err().map_or("", |w| short(w));
        parts.push(format!(
            "no namespaces (refused: {why}): steps share hoist's mounts, network, IPC and \
             hostname, and {}",
            reach(f, plan)
        ));
    } else if plan.pid_ns {
        parts.push("mount/pid/ipc/uts namespaces".into());
    } else {
        let why = match (&f.pid_ns, mode) {
            (_, Mode::Chroot) => "chroot isolation".to_string(),
            (Err(why), _) => format!("refused: {}", short(why)),
            (Ok(()), _) => "not used".to_string(),
        };
        parts.push(format!(
            "mount/ipc/uts namespaces, no pid namespace ({why}): steps {}",
            reach(f, plan)
        ));
    }
    let hidden = if plan.proc_shows_outside() {
        "; other processes present at a step's start hidden"
    } else {
        ""
    };
    parts.push(match plan.proc {
        ProcSource::Fresh => format!("fresh /proc{hidden}"),
        ProcSource::Bound => match &f.fresh_proc {
            Err(why) if mode != Mode::Chroot => format!(
                "/proc bound from hoist's (fresh /proc refused: {}{hidden})",
                short(why)
            ),
            _ => format!(
                "/proc bound from hoist's ({})",
                hidden.trim_start_matches("; ")
            ),
        },
        ProcSource::Absent if f.mknod => "no /proc, /dev nodes made with mknod".into(),
        ProcSource::Absent => "no /proc, no /dev nodes".into(),
    });
    if let (true, false, Err(why)) = (plan.namespaces, plan.hostname, &f.hostname) {
        parts.push(format!(
            "hostname not set (sethostname refused: {})",
            short(why)
        ));
    }
    if let (false, Err(why)) = (plan.seccomp, &f.seccomp) {
        parts.push(format!(
            "no seccomp filter (loading Docker's default profile refused: {})",
            short(why)
        ));
    }
    parts.join(", ")
}

/// Which other processes a step without a pid namespace can signal and
/// ptrace (after "steps").
fn reach(f: &Facts, plan: &Plan) -> String {
    if plan.signal_scope {
        return "signal and ptrace only their own processes (Landlock scope)".into();
    }
    let why = f.signal_scope.as_ref().err().map_or("", |w| short(w));
    format!(
        "may signal and ptrace the processes running as their own uid, a root step \
         hoist's and every other process of hoist's uid (no Landlock signal scope: {why}; \
         CAP_KILL dropped)"
    )
}

/// `Operation not permitted (os error 1)` → `EPERM`, for the one line.
fn short(why: &str) -> &str {
    for (text, name) in [
        ("Operation not permitted", "EPERM"),
        ("Permission denied", "EACCES"),
        ("No space left on device", "ENOSPC"),
        ("Invalid argument", "EINVAL"),
        ("Too many users", "EUSERS"),
        ("Function not implemented", "ENOSYS"),
        ("Operation not supported", "EOPNOTSUPP"),
    ] {
        if why.starts_with(text) {
            return name;
        }
    }
    why
}

#[cfg(test)]
#[path = "isolation_tests.rs"]
mod tests;
