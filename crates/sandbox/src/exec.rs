//! The step's own process, started by pid 1 inside the new root: the
//! image's user and groups, Docker's default capabilities (less
//! `SYS_CHROOT` and `MKNOD` in a plain chroot, less `KILL` without a pid
//! namespace or a Landlock signal scope), the step's environment and
//! working directory; without a pid namespace, its own session and the
//! Landlock scope (`landlock`); last before `setresuid` and `execve`,
//! Docker's seccomp profile (`seccomp`). `RUN --security=insecure` keeps
//! every capability and has no filter.

use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use nix::sys::signal::{SigSet, SigmaskHow, sigprocmask};
use nix::unistd::{Gid, Uid, setgroups, setresgid, setresuid};

use crate::spec::{RunSpec, Security};
use crate::{Context, SandboxError};

/// Start the command; its pid.
pub(crate) fn spawn(spec: &RunSpec) -> Result<u32, SandboxError> {
    let user = if spec.user.is_empty() {
        "0"
    } else {
        &spec.user
    };
    let db = crate::user::load(Path::new("/"));
    let (uid, gid) = db
        .exec_user(user)
        .map_err(|e| SandboxError::Spec(format!("USER {user}: {e}")))?;
    let groups: Vec<Gid> = db
        .supplementary(user)
        .into_iter()
        .map(Gid::from_raw)
        .collect();
    if crate::userns::in_user_namespace() {
        for (what, id, map) in [
            ("uid", uid, "/proc/self/uid_map"),
            ("gid", gid, "/proc/self/gid_map"),
        ] {
            if !mapped(id, map) {
                return Err(SandboxError::Spec(format!(
                    "USER {user}: {what} {id} is not mapped in hoist's user namespace (rootless \
                     with only your own id: add a range for your user to /etc/subuid and \
                     /etc/subgid, e.g. `usermod --add-subuids 100000-165535 --add-subgids \
                     100000-165535 $USER`)"
                )));
            }
        }
    }
    let Some((program, args)) = spec.args.split_first() else {
        return Err(SandboxError::Spec("RUN has no command".into()));
    };
    let cwd = if spec.cwd.is_empty() { "/" } else { &spec.cwd };
    // runc makes a missing working directory (as root, 0755).
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(cwd)
        .what(|| format!("mkdir {cwd}"))?;
    let last_cap = crate::caps::last_cap();
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .envs(
            spec.env
                .iter()
                .map(|kv| kv.split_once('=').unwrap_or((kv, ""))),
        )
        .current_dir(cwd)
        .stdin(empty_stdin()?);
    let rlimits = spec
        .limits
        .ulimits
        .iter()
        .map(|u| Ok((resource(&u.name)?, u.soft, u.hard)))
        .collect::<Result<Vec<_>, SandboxError>>()?;
    // With a single-id user namespace map, setgroups is denied (the map
    // was written without it): keep the groups we have, as crun does.
    let setgroups_denied = std::fs::read_to_string("/proc/self/setgroups")
        .map(|s| s.trim() == "deny")
        .unwrap_or(false);
    let plan = spec.isolation;
    let insecure = spec.security == Security::Insecure;
    // Made before fork: the child only enters them (`load`, `restrict_self`).
    let filter = match (&spec.seccomp, plan.seccomp && !insecure) {
        (_, false) => None,
        (Some(hex), true) => {
            Some(crate::seccomp::Program::from_hex(hex).map_err(SandboxError::Seccomp)?)
        }
        (None, true) => {
            return Err(SandboxError::Spec(
                "the build's isolation has a seccomp filter, and this step's spec none".into(),
            ));
        }
    };
    let scope = if plan.signal_scope && !plan.pid_ns {
        Some(crate::landlock::Scope::new().what(|| "a Landlock signal scope".into())?)
    } else {
        None
    };
    let nnp = !crate::seccomp::can_load_without_nnp();
    let keep_kill = plan.pid_ns || plan.signal_scope;
    let setup = move || -> std::io::Result<()> {
        if !plan.pid_ns {
            // Its own session, for `reap` to kill as a group; and death with
            // pid 1, which no pid namespace brings.
            rustix::process::setsid()?;
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))?;
        }
        for &(res, soft, hard) in &rlimits {
            nix::sys::resource::setrlimit(res, soft, hard)?;
        }
        // pid 1 blocks the signals it forwards; the step starts with none
        // blocked, and no descriptor of ours.
        sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)?;
        crate::sys::cloexec_from_3()?;
        if !setgroups_denied {
            setgroups(&groups)?;
        }
        setresgid(Gid::from_raw(gid), Gid::from_raw(gid), Gid::from_raw(gid))?;
        if !insecure {
            crate::caps::limit_bounding_set(last_cap, !plan.namespaces, keep_kill)?;
        }
        // Last, with the capabilities still held (as runc without
        // noNewPrivileges); with no_new_privs where they do not suffice.
        if let Some(scope) = &scope {
            scope.restrict_self(nnp)?;
        }
        if let Some(filter) = &filter {
            filter.load(nnp)?;
        }
        setresuid(Uid::from_raw(uid), Uid::from_raw(uid), Uid::from_raw(uid))?;
        Ok(())
    };
    // SAFETY: the closure runs in the forked child before exec. pid 1 is
    // single-threaded, so no lock can be held by a thread that vanished in
    // the fork; the closure makes only syscalls on data it owns.
    unsafe { cmd.pre_exec(setup) };
    let child = cmd
        .spawn()
        .map_err(|e| SandboxError::sys(format!("exec {program}"), e))?;
    Ok(child.id())
}

/// `/dev/null`; in a root without one (chroot without namespaces), a pipe
/// nobody writes to: reads see end of file either way.
fn empty_stdin() -> Result<Stdio, SandboxError> {
    if let Ok(null) = std::fs::File::open("/dev/null") {
        return Ok(Stdio::from(null));
    }
    let (read, write) = std::io::pipe().what(|| "pipe for stdin".into())?;
    drop(write);
    Ok(Stdio::from(read))
}

/// Docker's `--ulimit` names.
fn resource(name: &str) -> Result<nix::sys::resource::Resource, SandboxError> {
    use nix::sys::resource::Resource as R;
    Ok(match name {
        "core" => R::RLIMIT_CORE,
        "cpu" => R::RLIMIT_CPU,
        "data" => R::RLIMIT_DATA,
        "fsize" => R::RLIMIT_FSIZE,
        "locks" => R::RLIMIT_LOCKS,
        "memlock" => R::RLIMIT_MEMLOCK,
        "msgqueue" => R::RLIMIT_MSGQUEUE,
        "nice" => R::RLIMIT_NICE,
        "nofile" => R::RLIMIT_NOFILE,
        "nproc" => R::RLIMIT_NPROC,
        "rss" => R::RLIMIT_RSS,
        "rtprio" => R::RLIMIT_RTPRIO,
        "rttime" => R::RLIMIT_RTTIME,
        "sigpending" => R::RLIMIT_SIGPENDING,
        "stack" => R::RLIMIT_STACK,
        other => return Err(SandboxError::Spec(format!("unknown ulimit {other:?}"))),
    })
}

/// Whether `id` is inside one of the ranges of a uid_map/gid_map file.
fn mapped(id: u32, map: &str) -> bool {
    std::fs::read_to_string(map)
        .map(|m| {
            m.lines().any(|l| {
                let f: Vec<u64> = l
                    .split_whitespace()
                    .filter_map(|x| x.parse().ok())
                    .collect();
                f.len() == 3 && (id as u64) >= f[0] && (id as u64) < f[0] + f[2]
            })
        })
        .unwrap_or(true)
}
