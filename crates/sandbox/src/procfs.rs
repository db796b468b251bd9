//! A step's `/proc`: made (or cloned) before `pivot_root`, attached after
//! it, then given Docker's protections; and, when it shows processes
//! outside the step, those present at the step's start hidden.
//!
//! - [`ProcSource::Fresh`]: a new proc mount of the step's pid namespace,
//!   made before `pivot_root` (in a user namespace the kernel refuses it
//!   once the old root, with its fully visible `/proc`, is gone).
//! - [`ProcSource::Bound`]: hoist's own `/proc`, cloned recursively, so the
//!   masks a container engine put on it stay (the kernel refuses a
//!   non-recursive clone of a mount with locked mounts on it anyway).
//!
//! Over either, Docker's read-only paths and masks. A bound `/proc` (or a
//! fresh one without a pid namespace) lists processes outside the step:
//! every `/proc/PID` there but the sandbox's own is covered by an empty
//! read-only tmpfs before the step starts. Processes that start later, and
//! threads looked up by id, stay visible; hoist's own processes are not
//! dumpable, so a step cannot open their `/proc/PID/root` either way.

use std::fs;
use std::os::fd::OwnedFd;

use rustix::fs::CWD;
use rustix::mount::{FsMountFlags, FsOpenFlags, MountAttrFlags, MountFlags, OpenTreeFlags};

use crate::isolation::{Plan, ProcSource};
use crate::{Context, SandboxError};

/// The tree to attach at `/proc` after `pivot_root` (`None`: no `/proc`).
pub(crate) fn prepare(plan: &Plan) -> Result<Option<OwnedFd>, SandboxError> {
    match plan.proc {
        ProcSource::Fresh => {
            let fs = rustix::mount::fsopen("proc", FsOpenFlags::FSOPEN_CLOEXEC)
                .what(|| "fsopen proc".into())?;
            rustix::mount::fsconfig_create(&fs).what(|| "create proc".into())?;
            let mnt = rustix::mount::fsmount(
                &fs,
                FsMountFlags::FSMOUNT_CLOEXEC,
                MountAttrFlags::MOUNT_ATTR_NOSUID
                    | MountAttrFlags::MOUNT_ATTR_NODEV
                    | MountAttrFlags::MOUNT_ATTR_NOEXEC,
            )
            .what(|| "mount proc".into())?;
            Ok(Some(mnt))
        }
        ProcSource::Bound => {
            let tree = clone_proc().what(|| "bind hoist's /proc".into())?;
            crate::sys::set_tree_attrs(
                std::os::fd::AsFd::as_fd(&tree),
                libc::MOUNT_ATTR_NOSUID | libc::MOUNT_ATTR_NODEV | libc::MOUNT_ATTR_NOEXEC,
                0,
            )
            .what(|| "mount attributes of the bound /proc".into())?;
            Ok(Some(tree))
        }
        ProcSource::Absent => Ok(None),
    }
}

/// A detached recursive copy of hoist's own `/proc` mount (the isolation
/// probe tries the same call).
pub(crate) fn clone_proc() -> rustix::io::Result<OwnedFd> {
    rustix::mount::open_tree(
        CWD,
        "/proc",
        OpenTreeFlags::OPEN_TREE_CLONE
            | OpenTreeFlags::OPEN_TREE_CLOEXEC
            | OpenTreeFlags::AT_RECURSIVE,
    )
}

/// Docker's read-only `/proc` paths (kernel knobs: `core_pattern` alone
/// would let root in a step run a program on the host).
const READ_ONLY: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Docker's masked paths: hidden behind an empty read-only tmpfs (a
/// directory) or `/dev/null` (a file).
const MASKED: [&str; 11] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Docker's protections over the attached `/proc` and `/sys`.
pub(crate) fn protect_proc_and_sys() -> Result<(), SandboxError> {
    for p in READ_ONLY {
        if fs::symlink_metadata(p).is_err() {
            continue;
        }
        // A path with locked mounts below it (a bound /proc) needs them along.
        rustix::mount::mount_bind(p, p)
            .or_else(|_| rustix::mount::mount_bind_recursive(p, p))
            .what(|| format!("bind {p}"))?;
        rustix::mount::mount_remount(
            p,
            MountFlags::BIND
                | MountFlags::RDONLY
                | MountFlags::NOSUID
                | MountFlags::NODEV
                | MountFlags::NOEXEC,
            "",
        )
        .what(|| format!("make {p} read-only"))?;
    }
    for p in MASKED {
        let Ok(meta) = fs::symlink_metadata(p) else {
            continue;
        };
        let masked = if meta.is_dir() {
            rustix::mount::mount("tmpfs", p, "tmpfs", MountFlags::RDONLY, Some(c"size=0"))
        } else {
            rustix::mount::mount_bind("/dev/null", p)
        };
        masked.what(|| format!("mask {p}"))?;
    }
    Ok(())
}

/// Cover every `/proc/PID` but this process's own with an empty read-only
/// tmpfs. A process that exits meanwhile is skipped.
pub(crate) fn hide_other_processes() -> Result<usize, SandboxError> {
    let own = fs::read_link("/proc/self").what(|| "readlink /proc/self".into())?;
    let mut hidden = 0;
    for entry in fs::read_dir("/proc").what(|| "read /proc".into())? {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name();
        let is_pid = name
            .to_str()
            .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()));
        if !is_pid || name == own.as_os_str() {
            continue;
        }
        let target = entry.path();
        match rustix::mount::mount(
            "tmpfs",
            &target,
            "tmpfs",
            MountFlags::RDONLY | MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
            Some(c"size=0,mode=555"),
        ) {
            Ok(()) => hidden += 1,
            // Gone since the listing.
            Err(rustix::io::Errno::NOENT) | Err(rustix::io::Errno::SRCH) => {}
            Err(e) => {
                return Err(SandboxError::sys(
                    format!("hide {} from the step", target.display()),
                    e,
                ));
            }
        }
    }
    Ok(hidden)
}
