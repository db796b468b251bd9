//! Differential tests: Dockerfiles in `testdata/buildkit/` built by hoist,
//! compared with what BuildKit built from the same files
//! (`expected-config.json`, `expected-files.txt`, made by
//! `testdata/buildkit/expected.py` from `docker build` with docker 20.10's
//! BuildKit v0.8). Allowed differences are listed where they are made:
//! hoist follows the current BuildKit (commit 73ed6825) where the two
//! BuildKit versions differ.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn case(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/buildkit")
        .join(name)
}

fn hoist(root: &Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_hoist"))
        .arg("--root")
        .arg(root)
        .args(args)
        .output()
        .expect("hoist runs");
    assert!(
        out.status.success(),
        "hoist {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Build a case; return its config (timestamps removed) and its files.
fn build(name: &str) -> (serde_json::Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    // The COPY case's symlink is made here (git would not keep it).
    let ctx = case(name);
    hoist(&root, &["build", "-t", "case:1", ctx.to_str().unwrap()]);
    let inspect: serde_json::Value =
        serde_json::from_str(&hoist(&root, &["inspect", "case:1"])).unwrap();
    let mut config = inspect["Config"].clone();
    config.as_object_mut().unwrap().remove("created");
    for h in config["history"].as_array_mut().unwrap() {
        h.as_object_mut().unwrap().remove("created");
    }
    let tar = dir.path().join("fs.tar");
    hoist(
        &root,
        &[
            "export",
            "case:1",
            "-o",
            &format!("type=tar,dest={}", tar.display()),
        ],
    );
    let listing = Command::new("tar")
        .args(["--numeric-owner", "-tvf"])
        .arg(&tar)
        .output()
        .unwrap();
    (config, files_of(&String::from_utf8_lossy(&listing.stdout)))
}

/// `tar -tv` lines → the expected-files format: `/path kind mode uid:gid size [target]`.
fn files_of(listing: &str) -> String {
    let mut out = BTreeMap::new();
    for line in listing.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (perm, owner, size, name) = (f[0], f[1], f[2], f[5]);
        let kind = match perm.as_bytes()[0] {
            b'd' => "d",
            b'l' => "l",
            b'h' => "h",
            _ => "f",
        };
        let mut mode = 0u32;
        for (i, c) in perm[1..10].chars().enumerate() {
            if c != '-' && c != 'S' && c != 'T' {
                mode |= 1 << (8 - i);
            }
        }
        let bits = perm.as_bytes();
        if matches!(bits[3], b's' | b'S') {
            mode |= 0o4000;
        }
        if matches!(bits[6], b's' | b'S') {
            mode |= 0o2000;
        }
        if matches!(bits[9], b't' | b'T') {
            mode |= 0o1000;
        }
        let owner = owner.replace('/', ":");
        let target = if kind == "l" {
            f.get(7).copied().unwrap_or("")
        } else {
            ""
        };
        let size = if kind == "f" { size } else { "0" };
        let path = format!("/{}", name.trim_start_matches("./").trim_end_matches('/'));
        if path == "/" {
            continue;
        }
        out.insert(
            path.clone(),
            format!("{path} {kind} {mode:04o} {owner} {size} {target}")
                .trim_end()
                .to_string(),
        );
    }
    out.into_values().map(|l| l + "\n").collect()
}

fn expected(name: &str) -> (serde_json::Value, String) {
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(case(name).join("expected-config.json")).unwrap())
            .unwrap();
    // `"OnBuild": null` (Go's nil slice) means the same as no field.
    if let Some(c) = config["config"].as_object_mut() {
        c.retain(|_, v| !v.is_null());
    }
    (
        config,
        std::fs::read_to_string(case(name).join("expected-files.txt")).unwrap(),
    )
}

/// History lines as (created_by, empty_layer), with the formats that
/// changed between BuildKit v0.8 and today rewritten to today's.
fn history(config: &serde_json::Value) -> Vec<(String, bool)> {
    config["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            let mut by = h["created_by"].as_str().unwrap().to_string();
            // v0.8: `EXPOSE map[53/udp:{} ...]`; today: `EXPOSE [53/udp ...]`.
            if let Some(rest) = by.strip_prefix("EXPOSE map[") {
                by = format!("EXPOSE [{}", rest.replace(":{}", ""));
            }
            // v0.8: `HEALTHCHECK &{...}`; today: `HEALTHCHECK {...}`.
            by = by.replace("HEALTHCHECK &{", "HEALTHCHECK {");
            (by, h["empty_layer"].as_bool().unwrap_or(false))
        })
        .collect()
}

#[test]
fn metadata_matches_buildkit() {
    let (got, files) = build("meta");
    let (want, want_files) = expected("meta");
    assert_eq!(got["config"], want["config"], "config.config");
    for k in ["architecture", "os", "author"] {
        assert_eq!(got[k], want[k], "{k}");
    }
    assert_eq!(
        got["rootfs"]["diff_ids"].as_array().unwrap().len(),
        want["rootfs"]["diff_ids"].as_array().unwrap().len()
    );
    let (g, w) = (history(&got), history(&want));
    assert_eq!(g.len(), w.len(), "{g:#?}\n{w:#?}");
    for (a, b) in g.iter().zip(&w) {
        if b.0.starts_with("EXPOSE") || b.0.starts_with("HEALTHCHECK") {
            // Same instruction and layer flag; Go's map/struct printing of
            // v0.8 differs in ordering and field set from today's.
            assert_eq!(a.0.split_whitespace().next(), b.0.split_whitespace().next());
            assert_eq!(a.1, b.1);
        } else {
            assert_eq!(a, b);
        }
    }
    assert_eq!(files, want_files, "WORKDIR's directories, owned by USER");
}

#[test]
fn copy_matches_buildkit() {
    let link = case("copy").join("link");
    if std::fs::symlink_metadata(&link).is_err() {
        std::os::unix::fs::symlink("src/main.rs", &link).unwrap();
    }
    let (got, files) = build("copy");
    let (want, want_files) = expected("copy");
    assert_eq!(got["config"], want["config"], "config.config");
    assert_eq!(
        got["rootfs"]["diff_ids"].as_array().unwrap().len(),
        want["rootfs"]["diff_ids"].as_array().unwrap().len()
    );
    let g = history(&got);
    // v0.8 leaves COPY's --chmod/--chown out of history; today's BuildKit writes them.
    let w: Vec<(String, bool)> = history(&want)
        .into_iter()
        .map(|(by, e)| match by.as_str() {
            "COPY bin/tool /usr/local/bin/ # buildkit" => (
                "COPY --chmod=0755 bin/tool /usr/local/bin/ # buildkit".into(),
                e,
            ),
            "COPY owned.dat /data/owned.dat # buildkit" => (
                "COPY --chown=1234:4321 owned.dat /data/owned.dat # buildkit".into(),
                e,
            ),
            _ => (by, e),
        })
        .collect();
    assert_eq!(g, w);
    assert_eq!(files, want_files);
}
