//! Files hoist reads whole from hostile input (the Dockerfile from a file
//! or stdin, `.dockerignore`, `<Dockerfile>.dockerignore`) are bounded
//! (`hoist_dockerfile::limits::MAX_FILE_BYTES`): one past the limit is
//! refused by name before it is read into memory, on every way in.
//! (Before: a 200 MB Dockerfile of comments took 480 MB and built.)

use std::path::Path;
use std::process::{Command, Stdio};

const LIMIT: u64 = hoist_dockerfile::limits::MAX_FILE_BYTES as u64;

/// A file of `LIMIT + 1` bytes starting with `head` (sparse: no disk).
fn huge(path: &Path, head: &str) {
    std::fs::write(path, head).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(LIMIT + 1)
        .unwrap();
}

fn refused(root: &Path, args: &[&str], stdin: Option<&Path>, what: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_hoist"))
        .arg("--root")
        .arg(root)
        .args(args)
        .stdin(stdin.map_or(Stdio::null(), |p| {
            Stdio::from(std::fs::File::open(p).unwrap())
        }))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{what}: refused");
    assert!(
        err.contains("larger than 64 MiB (the limit on a Dockerfile or ignore file)"),
        "{what}: {err}"
    );
}

#[test]
fn every_file_read_whole_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let ctx = dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    let c = ctx.to_str().unwrap();
    let big = dir.path().join("big.Dockerfile");
    huge(&big, "FROM scratch\n#");
    let b = big.to_str().unwrap();
    refused(&root, &["build", "-f", b, c], None, "-f FILE");
    refused(&root, &["build", "-f", "-", c], Some(&big), "-f - (stdin)");
    refused(
        &root,
        &["build", "-"],
        Some(&big),
        "hoist build - (a Dockerfile on stdin)",
    );
    refused(&root, &["parse", "-f", b], None, "hoist parse");
    refused(&root, &["graph", "-f", b], None, "hoist graph");
    refused(
        &root,
        &["graph", "--steps", "-f", b],
        None,
        "hoist graph --steps",
    );
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\n").unwrap();
    huge(&ctx.join(".dockerignore"), "*.tmp\n");
    refused(&root, &["build", c], None, ".dockerignore");
    std::fs::remove_file(ctx.join(".dockerignore")).unwrap();
    huge(&ctx.join("Dockerfile.dockerignore"), "*.tmp\n");
    refused(&root, &["build", c], None, "<Dockerfile>.dockerignore");
}
