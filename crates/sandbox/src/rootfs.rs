//! The sandbox's root: an overlay of the image's snapshots, `pivot_root`ed
//! into, with a `/proc` (`procfs`: fresh, or hoist's own bound where the
//! kernel refuses a fresh one), a minimal `/dev`, a read-only `/sys` and
//! the step's own mounts. Without namespaces, `chroot` builds it instead.
//!
//! Host paths (the overlay's directories, device nodes, bind sources) are
//! opened before `pivot_root`, as detached mount trees (`open_tree`). Every
//! mount target is resolved after it, inside the new root, so a symlink in
//! the image (`/etc/hosts -> /host/file`) can only ever point inside it.
//! A mount point hoist had to create (a "stub", as BuildKit calls it) is
//! removed again when the step succeeds, with its parent's times restored,
//! so it leaves nothing in the layer.

use std::ffi::CString;
use std::fs;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use rustix::fs::{CWD, Timestamps};
use rustix::mount::{
    FsMountFlags, FsOpenFlags, MountAttrFlags, MountFlags, MountPropagationFlags, MoveMountFlags,
    OpenTreeFlags, UnmountFlags,
};

use crate::spec::{MountKind, Network, Rootfs, RunSpec};
use crate::{Context, SandboxError};

/// A path hoist created to mount over, and its parent's times before.
#[derive(Debug)]
pub(crate) struct Stub {
    path: PathBuf,
    parent_times: Option<(i64, i64, i64, i64)>,
}

/// What pid 1 undoes after a successful step.
#[derive(Debug, Default)]
pub(crate) struct Assembled {
    /// Mount targets, in mount order.
    mounts: Vec<PathBuf>,
    stubs: Vec<Stub>,
    /// Files written in place of mounts (`chroot` without namespaces).
    pub(crate) replaced: Vec<(PathBuf, Original)>,
}

/// What a file written in place of a mount held: its bytes and times to
/// put back (`None`: it is a stub, emptied for removal).
pub(crate) type Original = Option<(Vec<u8>, Timestamps)>;

const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

/// Build the root and enter it (this process's root becomes the overlay).
pub(crate) fn assemble(spec: &RunSpec) -> Result<Assembled, SandboxError> {
    if !spec.isolation.namespaces {
        return crate::chroot::assemble(spec);
    }
    rustix::mount::mount_change(
        "/",
        MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
    )
    .what(|| "make / private".into())?;
    if spec.rootfs.copy {
        // pivot_root needs a mount point: the copy, bound onto itself.
        rustix::mount::mount_bind(&spec.rootfs.merged, &spec.rootfs.merged)
            .what(|| format!("bind {}", spec.rootfs.merged.display()))?;
        // nodev, as the overlay root: a node a step makes cannot be opened.
        rustix::mount::mount_remount(
            &spec.rootfs.merged,
            MountFlags::BIND | MountFlags::NODEV,
            "",
        )
        .what(|| format!("make {} nodev", spec.rootfs.merged.display()))?;
    } else {
        mount_overlay(&spec.rootfs)?;
    }
    // Host trees to graft after pivot_root.
    let devices: Vec<(String, OwnedFd)> = DEVICES
        .iter()
        .filter_map(|d| {
            let fd = clone_tree(Path::new("/dev").join(d).as_path(), false).ok()?;
            Some((d.to_string(), fd))
        })
        .collect();
    let userxattr = crate::userns::in_user_namespace();
    let mut trees = Vec::new();
    for m in &spec.mounts {
        match &m.kind {
            MountKind::Bind { source, read_only } => {
                let fd = clone_tree(source, true)
                    .what(|| format!("open bind source {}", source.display()))?;
                // No device node or setuid file of the host works through
                // it, and read-only holds for every mount below it too.
                let mut attrs = libc::MOUNT_ATTR_NODEV | libc::MOUNT_ATTR_NOSUID;
                if *read_only {
                    attrs |= libc::MOUNT_ATTR_RDONLY;
                }
                crate::sys::set_tree_attrs(fd.as_fd(), attrs, 0)
                    .what(|| format!("mount attributes of {}", source.display()))?;
                trees.push((fd, source.is_dir()));
            }
            MountKind::Overlay { lower, upper, work } => {
                let fd = detached_overlay(lower, upper, work, userxattr)
                    .what(|| format!("overlay for {}", m.target))?;
                trees.push((fd, true));
            }
            MountKind::Tmpfs { .. } => {}
        }
    }
    // A mount with locked mounts on it (a container's /sys) clones only
    // with them.
    let sys = clone_tree(Path::new("/sys"), false)
        .or_else(|_| clone_tree(Path::new("/sys"), true))
        .ok();
    // A fresh proc is made now: in a user namespace the kernel refuses a
    // new proc mount once the old root (with its fully visible /proc) is gone.
    let procfs = crate::procfs::prepare(&spec.isolation)?;

    rustix::process::chdir(&spec.rootfs.merged)
        .what(|| format!("chdir {}", spec.rootfs.merged.display()))?;
    rustix::process::pivot_root(".", ".").what(|| "pivot_root".into())?;
    rustix::mount::unmount(".", UnmountFlags::DETACH).what(|| "detach the old root".into())?;
    rustix::process::chdir("/").what(|| "chdir /".into())?;

    let mut done = Assembled::default();
    if let Some(procfs) = &procfs {
        done.dir("/proc")?;
        graft(procfs, "/proc")?;
        done.mounts.push("/proc".into());
    }
    // /dev
    done.dir("/dev")?;
    // nodev: a node made here (mknod is a default capability) cannot be
    // opened; the nodes above are bind mounts of the host's, which can.
    mount_tmpfs(
        "/dev",
        "mode=755,size=65536k",
        MountFlags::NOSUID | MountFlags::NODEV | MountFlags::STRICTATIME,
    )?;
    done.mounts.push("/dev".into());
    for (name, fd) in devices {
        let target = format!("/dev/{name}");
        fs::write(&target, b"").what(|| format!("create {target}"))?;
        graft(&fd, &target)?;
    }
    fs::DirBuilder::new()
        .mode(0o755)
        .create("/dev/pts")
        .what(|| "mkdir /dev/pts".into())?;
    let pts = rustix::mount::mount(
        "devpts",
        "/dev/pts",
        "devpts",
        MountFlags::NOSUID | MountFlags::NOEXEC,
        Some(c"newinstance,ptmxmode=0666,mode=0620,gid=5"),
    )
    .or_else(|_| {
        // In a user namespace without gid 5 mapped.
        rustix::mount::mount(
            "devpts",
            "/dev/pts",
            "devpts",
            MountFlags::NOSUID | MountFlags::NOEXEC,
            Some(c"newinstance,ptmxmode=0666,mode=0620"),
        )
    });
    pts.what(|| "mount /dev/pts".into())?;
    fs::DirBuilder::new()
        .mode(0o1777)
        .create("/dev/shm")
        .what(|| "mkdir /dev/shm".into())?;
    let shm = format!(
        "mode=1777,size={}",
        spec.limits.shm_size.unwrap_or(64 << 20)
    );
    mount_tmpfs(
        "/dev/shm",
        &shm,
        MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
    )?;
    for (link, to) in [
        ("/dev/ptmx", "pts/ptmx"),
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ] {
        rustix::fs::symlink(to, link).what(|| format!("symlink {link}"))?;
    }
    // /sys, read-only: a fresh sysfs where allowed (it needs the network
    // namespace's owner), else the host's, bound read-only.
    done.dir("/sys")?;
    let ro = MountFlags::RDONLY | MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC;
    let fresh = spec.network != Network::Host || !crate::userns::in_user_namespace();
    if fresh && rustix::mount::mount("sysfs", "/sys", "sysfs", ro, None).is_ok() {
        done.mounts.push("/sys".into());
    } else if let Some(fd) = sys {
        crate::sys::set_tree_attrs(
            fd.as_fd(),
            libc::MOUNT_ATTR_RDONLY
                | libc::MOUNT_ATTR_NOSUID
                | libc::MOUNT_ATTR_NODEV
                | libc::MOUNT_ATTR_NOEXEC,
            0,
        )
        .what(|| "mount attributes of /sys".into())?;
        graft(&fd, "/sys")?;
        rustix::mount::mount_remount("/sys", MountFlags::BIND | ro, "")
            .what(|| "make /sys read-only".into())?;
        done.mounts.push("/sys".into());
    }
    crate::procfs::protect_proc_and_sys()?;
    if spec.isolation.proc_shows_outside() {
        crate::procfs::hide_other_processes()?;
    }
    // The step's mounts, in order.
    let mut trees = trees.into_iter();
    for m in &spec.mounts {
        // A symlink in the image is followed inside the root (as BuildKit
        // does): the mount lands where the link points, never outside.
        let target = resolve_in_root(Path::new(&m.target))?;
        match &m.kind {
            MountKind::Overlay { .. } => {
                let (fd, _) = trees
                    .next()
                    .ok_or_else(|| SandboxError::Spec("mount sources out of step".into()))?;
                done.dir(&target)?;
                graft(&fd, &target)?;
            }
            MountKind::Bind { .. } => {
                let (fd, is_dir) = trees
                    .next()
                    .ok_or_else(|| SandboxError::Spec("mount sources out of step".into()))?;
                if is_dir {
                    done.dir(&target)?;
                } else {
                    done.file(&target)?;
                }
                graft(&fd, &target)?;
            }
            MountKind::Tmpfs { size, mode } => {
                done.dir(&target)?;
                let mut data = format!("mode={:o}", mode.unwrap_or(0o1777));
                if let Some(size) = size {
                    data.push_str(&format!(",size={size}"));
                }
                mount_tmpfs(&target, &data, MountFlags::NOSUID | MountFlags::NODEV)?;
            }
        }
        done.mounts.push(target);
    }
    if !spec.hostname.is_empty() && spec.isolation.hostname {
        rustix::system::sethostname(spec.hostname.as_bytes()).what(|| "sethostname".into())?;
    }
    Ok(done)
}

/// `path` with every symlink among its existing components followed,
/// relative to the current root (the sandbox's, after `pivot_root`, so
/// `..` and absolute links stay inside it).
pub(crate) fn resolve_in_root(path: &Path) -> Result<PathBuf, SandboxError> {
    let mut todo: Vec<std::ffi::OsString> = path
        .components()
        .rev()
        .filter_map(|c| match c {
            std::path::Component::Normal(n) => Some(n.to_os_string()),
            std::path::Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut out = PathBuf::from("/");
    let mut hops = 0;
    while let Some(part) = todo.pop() {
        if part == ".." {
            out.pop();
            continue;
        }
        let next = out.join(&part);
        match fs::read_link(&next) {
            Ok(link) => {
                hops += 1;
                if hops > 40 {
                    return Err(SandboxError::Spec(format!(
                        "mount target {}: too many levels of symbolic links",
                        path.display()
                    )));
                }
                if link.is_absolute() {
                    out = PathBuf::from("/");
                }
                for c in link.components().rev() {
                    match c {
                        std::path::Component::Normal(n) => todo.push(n.to_os_string()),
                        std::path::Component::ParentDir => todo.push("..".into()),
                        _ => {}
                    }
                }
            }
            Err(_) => out = next,
        }
    }
    Ok(out)
}

impl Assembled {
    /// Make `path` a directory, recording each component created.
    pub(crate) fn dir(&mut self, path: impl AsRef<Path>) -> Result<(), SandboxError> {
        self.make(path.as_ref(), true)
    }

    /// Make `path` a file (its parents directories), recording what was created.
    pub(crate) fn file(&mut self, path: impl AsRef<Path>) -> Result<(), SandboxError> {
        self.make(path.as_ref(), false)
    }

    fn make(&mut self, path: &Path, dir: bool) -> Result<(), SandboxError> {
        self.make_with(path, |p| {
            if dir {
                fs::DirBuilder::new().mode(0o755).create(p)
            } else {
                fs::write(p, b"")
            }
        })
    }

    /// Make `path` with `create` (its parents directories), recording what
    /// was created; nothing when it exists.
    pub(crate) fn make_with(
        &mut self,
        path: &Path,
        create: impl FnOnce(&Path) -> std::io::Result<()>,
    ) -> Result<(), SandboxError> {
        if fs::symlink_metadata(path).is_ok() {
            return Ok(());
        }
        if let Some(parent) = path.parent()
            && parent != Path::new("/")
        {
            self.make(parent, true)?;
        }
        let parent_times = path
            .parent()
            .and_then(|p| fs::metadata(p).ok())
            .map(|m| (m.atime(), m.atime_nsec(), m.mtime(), m.mtime_nsec()));
        create(path).what(|| format!("create {}", path.display()))?;
        self.stubs.push(Stub {
            path: path.to_path_buf(),
            parent_times,
        });
        Ok(())
    }

    /// After a successful step: unmount what was mounted and remove the
    /// stubs that are still empty, restoring their parents' times.
    pub(crate) fn undo(self) {
        for target in self.mounts.iter().rev() {
            let _ = rustix::mount::unmount(target, UnmountFlags::DETACH);
        }
        for (path, original) in self.replaced.iter().rev() {
            match original {
                Some((bytes, times)) => {
                    if fs::write(path, bytes).is_ok() {
                        let _ =
                            rustix::fs::utimensat(CWD, path, times, rustix::fs::AtFlags::empty());
                    }
                }
                // Emptied, the stub goes below.
                None => {
                    let _ = fs::write(path, b"");
                }
            }
        }
        for stub in self.stubs.iter().rev() {
            let Ok(meta) = fs::symlink_metadata(&stub.path) else {
                continue;
            };
            let removed = if meta.is_dir() {
                fs::remove_dir(&stub.path).is_ok()
            } else {
                let node = meta.file_type().is_char_device();
                (node || meta.is_file() && meta.len() == 0) && fs::remove_file(&stub.path).is_ok()
            };
            if let (true, Some((a, an, m, mn)), Some(parent)) =
                (removed, stub.parent_times, stub.path.parent())
            {
                let times = Timestamps {
                    last_access: rustix::fs::Timespec {
                        tv_sec: a,
                        tv_nsec: an,
                    },
                    last_modification: rustix::fs::Timespec {
                        tv_sec: m,
                        tv_nsec: mn,
                    },
                };
                let _ = rustix::fs::utimensat(CWD, parent, &times, rustix::fs::AtFlags::empty());
            }
        }
    }
}

/// The overlay at `merged`: lower dirs one by one (`lowerdir+`, no length
/// limit), else the classic option string.
/// Mount the overlay `r` describes at `r.merged` (`nodev`), in this
/// process's mount namespace: the sandbox's root (and the engine's
/// snapshotter test suite's, which runs steps without a sandbox).
pub fn mount_overlay(r: &Rootfs) -> Result<(), SandboxError> {
    if r.lower.is_empty() {
        return Err(SandboxError::Spec(
            "an overlay needs a lower directory".into(),
        ));
    }
    let userxattr = crate::userns::in_user_namespace();
    let fresh = || -> rustix::io::Result<()> {
        let mnt = detached_overlay(&r.lower, &r.upper, &r.work, userxattr)?;
        rustix::mount::move_mount(
            mnt.as_fd(),
            "",
            CWD,
            &r.merged,
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    let first = match fresh() {
        Ok(()) => return Ok(()),
        Err(e) => e,
    };
    let lower: Vec<String> = r.lower.iter().map(|p| escape(p)).collect();
    let mut data = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        escape(&r.upper),
        escape(&r.work)
    );
    if userxattr {
        data.push_str(",userxattr");
    }
    let data = CString::new(data).map_err(|e| SandboxError::Spec(e.to_string()))?;
    rustix::mount::mount(
        "overlay",
        &r.merged,
        "overlay",
        MountFlags::NODEV,
        Some(data.as_c_str()),
    )
    .map_err(|e| {
        SandboxError::Spec(format!(
            "{OVERLAY_UNAVAILABLE}: mounting the overlay at {}: {} (new mount API: {first})",
            r.merged.display(),
            std::io::Error::from(e)
        ))
    })
}

/// How a set-up error starts when this host cannot mount the overlay root
/// (the engine then falls back to the copying snapshotter).
pub const OVERLAY_UNAVAILABLE: &str = "overlay unavailable";

/// An overlay mount not attached anywhere yet (the new mount API, with
/// `lowerdir+` one directory at a time: no length limit, no escaping).
pub(crate) fn detached_overlay(
    lower: &[PathBuf],
    upper: &Path,
    work: &Path,
    userxattr: bool,
) -> rustix::io::Result<OwnedFd> {
    let fs_fd = rustix::mount::fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)?;
    for dir in lower {
        rustix::mount::fsconfig_set_string(fs_fd.as_fd(), "lowerdir+", dir)?;
    }
    rustix::mount::fsconfig_set_string(fs_fd.as_fd(), "upperdir", upper)?;
    rustix::mount::fsconfig_set_string(fs_fd.as_fd(), "workdir", work)?;
    if userxattr {
        rustix::mount::fsconfig_set_flag(fs_fd.as_fd(), "userxattr")?;
    }
    rustix::mount::fsconfig_create(fs_fd.as_fd())?;
    // nodev: a device node a step makes (it may, as in Docker) goes into
    // the layer but cannot be opened to reach a host device.
    rustix::mount::fsmount(
        fs_fd.as_fd(),
        FsMountFlags::FSMOUNT_CLOEXEC,
        MountAttrFlags::MOUNT_ATTR_NODEV,
    )
}

/// Overlay's option syntax: `:` and `,` escaped with `\`.
fn escape(p: &Path) -> String {
    p.display()
        .to_string()
        .replace('\\', "\\\\")
        .replace(':', "\\:")
        .replace(',', "\\,")
}

pub(crate) fn clone_tree(path: &Path, recursive: bool) -> std::io::Result<OwnedFd> {
    let mut flags = OpenTreeFlags::OPEN_TREE_CLONE | OpenTreeFlags::OPEN_TREE_CLOEXEC;
    if recursive {
        flags |= OpenTreeFlags::AT_RECURSIVE;
    }
    Ok(rustix::mount::open_tree(CWD, path, flags)?)
}

/// Attach a detached tree at `target` (resolved in the current root).
pub(crate) fn graft(fd: &OwnedFd, target: impl AsRef<Path>) -> Result<(), SandboxError> {
    let target = target.as_ref();
    rustix::mount::move_mount(
        fd.as_fd(),
        "",
        CWD,
        target,
        MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
    )
    .what(|| format!("mount at {}", target.display()))
}

fn mount_tmpfs(
    target: impl AsRef<Path>,
    data: &str,
    flags: MountFlags,
) -> Result<(), SandboxError> {
    let target = target.as_ref();
    let data = CString::new(data).map_err(|e| SandboxError::Spec(e.to_string()))?;
    rustix::mount::mount("tmpfs", target, "tmpfs", flags, Some(data.as_c_str()))
        .what(|| format!("mount tmpfs at {}", target.display()))
}
