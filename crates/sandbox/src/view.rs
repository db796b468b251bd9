//! Mounts hoist makes in its own process (not in a step's sandbox): a
//! read-only overlay of a state's lower directories, so `COPY --from` and
//! `RUN --mount=from=` read a stage's filesystem without unpacking it.
//!
//! They live in hoist's private mount namespace ([`private_mount_namespace`],
//! entered first thing in `main`), so none outlives the process, whatever
//! ends it.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use rustix::fs::CWD;
use rustix::mount::{
    FsMountFlags, FsOpenFlags, MountAttrFlags, MountPropagationFlags, MoveMountFlags, UnmountFlags,
};

/// Give this process its own mount namespace, with every mount private.
/// Must run while the process has one thread (the kernel refuses with
/// EINVAL otherwise); `main` calls it before anything starts.
pub fn private_mount_namespace() -> std::io::Result<()> {
    // SAFETY: unsharing the mount namespace only changes which mounts this
    // process sees; with a single thread no other thread's view of the
    // filesystem changes under it (and the kernel refuses otherwise).
    unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWNS) }?;
    rustix::mount::mount_change(
        "/",
        MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
    )?;
    Ok(())
}

/// A read-only overlay of `lower` (top first) at a directory; unmounted
/// when dropped.
#[derive(Debug)]
pub struct ReadOnlyOverlay {
    target: PathBuf,
}

impl ReadOnlyOverlay {
    /// Mount `lower` (at least two directories, top first) at `target`.
    pub fn mount(lower: &[PathBuf], target: &Path) -> std::io::Result<ReadOnlyOverlay> {
        let fs = rustix::mount::fsopen("overlay", FsOpenFlags::FSOPEN_CLOEXEC)?;
        for dir in lower {
            rustix::mount::fsconfig_set_string(fs.as_fd(), "lowerdir+", dir)?;
        }
        if crate::userns::in_user_namespace() {
            rustix::mount::fsconfig_set_flag(fs.as_fd(), "userxattr")?;
        }
        rustix::mount::fsconfig_create(fs.as_fd())?;
        let mnt = rustix::mount::fsmount(
            fs.as_fd(),
            FsMountFlags::FSMOUNT_CLOEXEC,
            MountAttrFlags::MOUNT_ATTR_RDONLY
                | MountAttrFlags::MOUNT_ATTR_NODEV
                | MountAttrFlags::MOUNT_ATTR_NOSUID,
        )?;
        rustix::mount::move_mount(
            mnt.as_fd(),
            "",
            CWD,
            target,
            MoveMountFlags::MOVE_MOUNT_F_EMPTY_PATH,
        )?;
        Ok(ReadOnlyOverlay {
            target: target.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.target
    }
}

impl Drop for ReadOnlyOverlay {
    fn drop(&mut self) {
        let _ = rustix::mount::unmount(&self.target, UnmountFlags::DETACH);
    }
}
