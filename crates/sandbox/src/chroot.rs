//! A step's root without any namespace (`--isolation=chroot` where the
//! kernel refuses even a mount namespace: root of a Docker container under
//! its default seccomp profile): a `chroot(2)` into the copying
//! snapshotter's plain copy of the image, nothing mounted.
//!
//! - No `/proc`, no `/sys`; `/dev` holds only the nodes `mknod` may make
//!   (`null`, `zero`, `full`, `random`, `urandom`, `tty`), removed after.
//! - A file the step would have had bound (`/etc/hosts`, `/etc/resolv.conf`,
//!   a secret, a heredoc script) is written in place and its own bytes and
//!   times put back after; any other `RUN --mount` is an error.
//! - The step's capabilities lose `CAP_SYS_CHROOT` and `CAP_MKNOD` (`exec`):
//!   with the first, root leaves a chroot; with the second, it makes nodes
//!   on a filesystem no `nodev` protects.
//!
//! The step shares hoist's processes, network, hostname and mounts: this
//! is the weakest isolation hoist has, and it says so.

use std::fs;
use std::path::{Path, PathBuf};

use rustix::fs::{CWD, FileType, Mode, Timestamps};

use crate::rootfs::{Assembled, OVERLAY_UNAVAILABLE, resolve_in_root};
use crate::spec::{MountKind, RunSpec};
use crate::{Context, SandboxError};

/// `/dev` nodes: name, major, minor (as Docker's `/dev`).
const NODES: [(&str, u32, u32); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

/// Enter the copied root with `chroot`; its stubs and replaced files.
pub(crate) fn assemble(spec: &RunSpec) -> Result<Assembled, SandboxError> {
    if !spec.rootfs.copy {
        return Err(SandboxError::Spec(format!(
            "{OVERLAY_UNAVAILABLE}: chroot isolation without namespaces mounts nothing"
        )));
    }
    // Read before the chroot: afterwards the sources are out of reach.
    let mut files: Vec<(&str, Vec<u8>)> = Vec::new();
    for m in &spec.mounts {
        match &m.kind {
            MountKind::Bind { source, .. } if source.is_file() => {
                let bytes = fs::read(source).what(|| format!("read {}", source.display()))?;
                files.push((&m.target, bytes));
            }
            _ => {
                return Err(SandboxError::Spec(format!(
                    "a mount at {}: chroot isolation without namespaces cannot mount anything \
                     (only files are copied in)",
                    m.target
                )));
            }
        }
    }
    rustix::process::chroot(&spec.rootfs.merged)
        .what(|| format!("chroot {}", spec.rootfs.merged.display()))?;
    rustix::process::chdir("/").what(|| "chdir /".into())?;

    let mut done = Assembled::default();
    for (name, major, minor) in NODES {
        let path = PathBuf::from(format!("/dev/{name}"));
        // Without CAP_MKNOD (or in a user namespace) there are none.
        let _ = done.make_with(&path, |p| {
            rustix::fs::mknodat(
                CWD,
                p,
                FileType::CharacterDevice,
                Mode::from_raw_mode(0o666),
                rustix::fs::makedev(major, minor),
            )
            .map_err(Into::into)
        });
    }
    for (target, bytes) in files {
        let path = resolve_in_root(Path::new(target))?;
        replace(&mut done, &path, &bytes)?;
    }
    Ok(done)
}

/// Put `bytes` at `path`: in place of the image's file (kept to restore),
/// or in a new stub.
fn replace(done: &mut Assembled, path: &Path, bytes: &[u8]) -> Result<(), SandboxError> {
    let original = match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_file() => {
            use std::os::unix::fs::MetadataExt;
            let old = fs::read(path).what(|| format!("read {}", path.display()))?;
            let times = Timestamps {
                last_access: rustix::fs::Timespec {
                    tv_sec: meta.atime(),
                    tv_nsec: meta.atime_nsec(),
                },
                last_modification: rustix::fs::Timespec {
                    tv_sec: meta.mtime(),
                    tv_nsec: meta.mtime_nsec(),
                },
            };
            Some((old, times))
        }
        Ok(_) => {
            return Err(SandboxError::Spec(format!(
                "{} is not a file: chroot isolation cannot put one there",
                path.display()
            )));
        }
        Err(_) => {
            done.file(path)?;
            None
        }
    };
    fs::write(path, bytes).what(|| format!("write {}", path.display()))?;
    done.replaced.push((path.to_path_buf(), original));
    Ok(())
}
