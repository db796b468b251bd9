//! Issue 11 item 2: nothing in a store is reachable by another local
//! user. Images carry setuid-root files and device nodes; a store whose
//! unpacked trees others can reach hands them root (moby's
//! CVE-2021-41091). Every path under a root store and under a user's
//! rootless store is tried by a second user, who must reach none of them;
//! a store made loose is reported by `store check` and fixed by
//! `--repair`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use hoist_test_support::bin;

use crate::support::{Area, BUILDER, OTHER, is_root, users};

/// Every path below `root` (as root sees them).
fn all_paths(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let m = std::fs::symlink_metadata(&p).unwrap();
        if m.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
        }
        out.push(p);
    }
    out
}

/// `OTHER` stats every path below `store` except the store root itself;
/// the paths it reached.
fn reached_by_other(store: &Path) -> Vec<String> {
    let paths = all_paths(store);
    assert!(paths.len() > 20, "the store has content: {paths:?}");
    let list: Vec<u8> = paths
        .iter()
        .filter(|p| p.as_path() != store)
        .flat_map(|p| {
            let mut b = p.as_os_str().as_encoded_bytes().to_vec();
            b.push(0);
            b
        })
        .collect();
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), &list).unwrap();
    std::fs::set_permissions(file.path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid", OTHER, "--regid", OTHER, "--init-groups", "--"])
        .args(["xargs", "-0", "-a"])
        .arg(file.path())
        .args(["stat", "-c", "%n"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn dockerfile(area: &Area, name: &str, user: Option<&str>) -> PathBuf {
    let ctx = area.owned_dir(name, user);
    std::fs::copy("/bin/busybox", ctx.join("bb")).unwrap();
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM base:1\nCOPY --chmod=4755 bb /copied-setuid\nRUN cp /bin/busybox /run-setuid && chmod 4755 /run-setuid\n",
    )
    .unwrap();
    for f in ["bb", "Dockerfile"] {
        std::fs::set_permissions(ctx.join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    ctx
}

#[test]
fn another_user_reaches_nothing_in_a_root_store() {
    if users().is_none() {
        return;
    }
    let area = Area::new();
    // Under a directory everyone may traverse, as /var/lib is.
    let parent = area.owned_dir("var-lib", None);
    let store = parent.join("hoist");
    let lab = crate::lab::Lab {
        bin: bin!().into(),
        dir: tempfile::tempdir().unwrap(),
        root: store.clone(),
    };
    lab.base("base:1", true);
    let ctx = dockerfile(&area, "ctx", None);
    area.ok(
        None,
        &[
            "--root",
            store.to_str().unwrap(),
            "build",
            "-q",
            "-t",
            "s:1",
            ctx.to_str().unwrap(),
        ],
    );
    let mode = std::fs::metadata(&store).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "a new store's root is private");
    let reached = reached_by_other(&store);
    assert!(reached.is_empty(), "{OTHER} reached: {reached:#?}");
}

#[test]
fn another_user_reaches_nothing_in_a_rootless_store() {
    if users().is_none() {
        return;
    }
    let area = Area::new();
    // The base comes from a root store, saved where the builder can read it.
    let lab = crate::lab::Lab::new(bin!());
    let base_tar = area.path("base.tar");
    lab.ok(&["save", "-o", base_tar.to_str().unwrap(), "base:1"]);
    std::fs::set_permissions(&base_tar, std::fs::Permissions::from_mode(0o644)).unwrap();
    // The builder's default store, in a home others may traverse.
    let home = area.owned_dir(&format!("home-{BUILDER}"), Some(BUILDER));
    area.ok(Some(BUILDER), &["load", "-i", base_tar.to_str().unwrap()]);
    let ctx = dockerfile(&area, "ctx", Some(BUILDER));
    area.ok(
        Some(BUILDER),
        &["build", "-q", "-t", "s:1", ctx.to_str().unwrap()],
    );
    let store = home.join(".local/share/hoist");
    assert!(
        store.join("version").is_file(),
        "the default rootless store"
    );
    let reached = reached_by_other(&store);
    assert!(reached.is_empty(), "{OTHER} reached: {reached:#?}");
}

#[test]
fn a_loose_store_is_reported_and_repaired() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let lab = crate::lab::Lab::new(bin!());
    let root = lab.root.to_str().unwrap();
    let out = lab.ok(&["store", "check"]).0;
    assert!(out.contains("is consistent"), "{out}");
    // As a store made before hoist kept it private.
    for (dir, mode) in [("", 0o755), ("snapshots", 0o755), ("diffs", 0o711)] {
        std::fs::set_permissions(lab.root.join(dir), std::fs::Permissions::from_mode(mode))
            .unwrap();
    }
    let out = lab.hoist(&["store", "check"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "check fails on a loose store");
    assert!(stdout.contains("loose-mode"), "{stdout}");
    assert!(
        stderr.contains(&format!("warning: {root} has mode 0755")) && stderr.contains("--repair"),
        "{stderr}"
    );
    let (stdout, _) = lab.ok(&["store", "check", "--repair"]);
    assert!(stdout.contains("repaired"), "{stdout}");
    assert!(stdout.contains("is consistent"), "{stdout}");
    for (dir, mode) in [("", 0o700), ("snapshots", 0o700), ("diffs", 0o700)] {
        let m = std::fs::metadata(lab.root.join(dir))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(m, mode, "{dir:?} after --repair");
    }
    // A group given search only is allowed at the root.
    std::fs::set_permissions(&lab.root, std::fs::Permissions::from_mode(0o710)).unwrap();
    let out = lab.ok(&["store", "check"]).0;
    assert!(out.contains("is consistent"), "{out}");
}
