//! podman with every bit of its state (storage, run root, temp files)
//! under a folder of the test's: nothing of the host's podman store is
//! read or written, and several tests can run at once.

use std::path::Path;
use std::process::Command;

/// `podman --root DIR/root --runroot DIR/run --tmpdir DIR/tmp
/// --storage-driver DRIVER` (Debian's podman); the caller adds the rest.
pub fn in_dir(dir: &Path, driver: &str) -> Command {
    let mut cmd = Command::new("podman");
    cmd.arg("--root")
        .arg(dir.join("root"))
        .arg("--runroot")
        .arg(dir.join("run"))
        .arg("--tmpdir")
        .arg(dir.join("tmp"))
        .args(["--storage-driver", driver]);
    cmd
}
