//! The harness hoist's CLI tests share (a dev-dependency of the root
//! package, never published): [`lab`], a throw-away store with a busybox
//! base image and the image read back from `hoist save`; [`dockerd`], a
//! private Docker engine; [`podman`], podman on a private store;
//! [`users`], real unprivileged users with sub-ids; [`registry`], a
//! `docker-registry` with htpasswd auth.
//!
//! A separate crate cannot name the `hoist` binary (`CARGO_BIN_EXE_hoist`
//! is set only when the root package's tests compile), so the tests pass it
//! in with [`bin!`]: `Lab::new(bin!())`.

pub mod dockerd;
pub mod lab;
pub mod podman;
pub mod registry;
pub mod sources;
pub mod users;

/// Lazily unmount every mount at or under `dir` (deepest first), as a
/// private dockerd or podman may leave them; errors ignored (it runs in
/// `Drop`, maybe while a failed test unwinds).
pub fn unmount_under(dir: &std::path::Path) {
    let _ = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "grep -o ' {0}[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l",
            dir.display()
        ))
        .status();
}

/// The path of the `hoist` binary under test, `env!("CARGO_BIN_EXE_hoist")`
/// expanded in the calling test (where cargo sets it).
#[macro_export]
macro_rules! bin {
    () => {
        env!("CARGO_BIN_EXE_hoist")
    };
}
