//! Builds that share a store, and builds killed mid-way: the next build
//! succeeds and `hoist store check` passes.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn context(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir.join("files")).unwrap();
    std::fs::write(dir.join("Dockerfile"), "FROM scratch AS a\nCOPY files/ /files/\nWORKDIR /w\nFROM scratch\nCOPY --from=a /files/ /copied/\nCOPY big.bin /\n").unwrap();
    for i in 0..n {
        std::fs::write(
            dir.join(format!("files/f{i}.txt")),
            format!("file {i}\n").repeat(50),
        )
        .unwrap();
    }
    let big: Vec<u8> = (0..(8u32 << 20))
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(dir.join("big.bin"), big).unwrap();
}

fn hoist(root: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hoist"));
    c.arg("--root").arg(root).env_remove("SOURCE_DATE_EPOCH");
    c
}

fn check(root: &Path) {
    let out = hoist(root).args(["store", "check"]).output().unwrap();
    assert!(
        out.status.success(),
        "store check: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn four_builds_at_once_share_one_store() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let mut children = Vec::new();
    for i in 0..4 {
        let ctx = dir.path().join(format!("ctx{i}"));
        context(&ctx, 20 + i);
        children.push(
            hoist(&root)
                .args(["build", "-q", "-t", &format!("img:{i}")])
                .arg(&ctx)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
    }
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    check(&root);
    let images = hoist(&root).args(["images", "-q"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&images.stdout).lines().count(), 4);
}

#[test]
fn builds_killed_at_any_point_leave_a_usable_store() {
    let dir = tempfile::tempdir().unwrap();
    let (root, ctx) = (dir.path().join("store"), dir.path().join("ctx"));
    context(&ctx, 200);
    for (i, delay_ms) in [30u64, 80, 150, 250, 400, 600].into_iter().enumerate() {
        // A fresh file each round so the build has work to do.
        std::fs::write(ctx.join(format!("files/round{i}.txt")), format!("{i}")).unwrap();
        let mut child = hoist(&root)
            .args(["build", "-q", "-t", "k:1"])
            .arg(&ctx)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        check(&root);
    }
    let out = hoist(&root)
        .args(["build", "-q", "-t", "k:1"])
        .arg(&ctx)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    check(&root);
    // GC after the kills removes their temp files and keeps the image.
    let out = hoist(&root).args(["prune", "--force"]).output().unwrap();
    assert!(out.status.success());
    check(&root);
    let export = dir.path().join("out");
    let out = hoist(&root)
        .args(["export", "k:1", "-o"])
        .arg(format!("type=local,dest={}", export.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(export.join("big.bin").exists() && export.join("copied/round5.txt").exists());
}
