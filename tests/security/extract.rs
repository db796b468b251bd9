//! Issue 11 item 1: no extractor reaches outside its root. Each hostile
//! tar (`support::hostile_cases`) goes through every extractor a user can
//! reach: the context on stdin, `ADD` of a local archive, a layer (loaded,
//! then unpacked by a build and by `-o type=local`), and `hoist load`'s own
//! archive. As root with a root-owned canary, and as an unprivileged user
//! with a canary of their own (rootless, the user's own files were the
//! ones changed). Builds may fail (a symlinked parent is refused); the
//! canary must not change either way.

use std::path::Path;

use crate::support::{Area, BUILDER, Canary, hostile_cases, is_root, users};

/// A docker-save archive: one image `evil:1` whose one layer is `layer`,
/// with `extra` entries of the archive itself before its files.
fn docker_archive(layer: &[u8], extra: &[u8]) -> Vec<u8> {
    let diff_id = hoist_engine::digest::Digest::of(layer).to_string();
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    })
    .to_string();
    let manifest = serde_json::json!([{
        "Config": "config.json", "RepoTags": ["evil:1"], "Layers": ["layer.tar"],
    }])
    .to_string();
    let mut b = tar::Builder::new(Vec::new());
    // The hostile entries first (an archive of archives: only the tar's
    // blocks are appended, the end-of-archive blocks dropped).
    let mut out = Vec::new();
    if !extra.is_empty() {
        out.extend_from_slice(&extra[..extra.len() - 1024]);
    }
    for (name, data) in [
        ("config.json", config.as_bytes()),
        ("manifest.json", manifest.as_bytes()),
        ("layer.tar", layer),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        b.append_data(&mut h, name, data).unwrap();
    }
    out.extend_from_slice(&b.into_inner().unwrap());
    out
}

fn write(path: &Path, data: &[u8], user: Option<&str>) {
    std::fs::write(path, data).unwrap();
    if let Some(u) = user {
        let (uid, gid) = crate::support::id_of(u);
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    }
}

/// Every extractor, every hostile tar, as `user`; the canary checked after
/// each run.
fn every_extractor(user: Option<&str>) {
    let area = Area::new();
    let canary = Canary::new(&area, user);
    let work = area.owned_dir("work", user);
    let store = work.join("store");
    let store = store.to_str().unwrap();
    for (i, (case, evil)) in hostile_cases(&canary).into_iter().enumerate() {
        let dir = work.join(format!("case{i}"));
        std::fs::create_dir(&dir).unwrap();
        if let Some(u) = user {
            let (uid, gid) = crate::support::id_of(u);
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).unwrap();
        }
        let d = |name: &str| dir.join(name).to_string_lossy().into_owned();

        // 1. The context on stdin: a Dockerfile, then the hostile entries.
        let dockerfile = crate::support::tar(&[crate::support::E::File(
            "Dockerfile",
            0o644,
            b"FROM scratch\nCOPY Dockerfile /\n",
        )]);
        let mut ctx = dockerfile[..dockerfile.len() - 1024].to_vec();
        ctx.extend_from_slice(&evil);
        write(&dir.join("ctx.tar"), &ctx, user);
        let out = area.hoist(
            user,
            &["--root", store, "build", "-q", "-"],
            Some(&dir.join("ctx.tar")),
        );
        canary.assert_unchanged(&format!("{case}: context on stdin ({out:?})"));

        // 2. ADD of a local archive, to the store and to a directory.
        std::fs::create_dir(dir.join("add")).unwrap();
        write(&dir.join("add/evil.tar"), &evil, user);
        write(
            &dir.join("add/Dockerfile"),
            b"FROM scratch\nADD evil.tar /x/\n",
            user,
        );
        let out = area.hoist(
            user,
            &["--root", store, "build", "-q", "-t", "add:1", &d("add")],
            None,
        );
        canary.assert_unchanged(&format!("{case}: ADD to the store ({out:?})"));
        let out = area.hoist(
            user,
            &[
                "--root",
                store,
                "build",
                "-q",
                "-o",
                &format!("type=local,dest={}", d("add-out")),
                &d("add"),
            ],
            None,
        );
        canary.assert_unchanged(&format!("{case}: ADD to a local output ({out:?})"));

        // 3 and 4. `hoist load` of an archive that itself carries the
        // hostile entries, whose one layer is the hostile tar.
        write(&dir.join("evil.tar"), &docker_archive(&evil, &evil), user);
        let out = area.hoist(user, &["--root", store, "load", "-i", &d("evil.tar")], None);
        canary.assert_unchanged(&format!("{case}: hoist load ({out:?})"));
        // The layer unpacked: into a local output, and into the store's
        // snapshots for a `COPY --from` of the image.
        let out = area.hoist(
            user,
            &[
                "--root",
                store,
                "export",
                "evil:1",
                "-o",
                &format!("type=local,dest={}", d("layer-out")),
            ],
            None,
        );
        canary.assert_unchanged(&format!("{case}: layer to a local output ({out:?})"));
        std::fs::create_dir(dir.join("from")).unwrap();
        write(
            &dir.join("from/Dockerfile"),
            b"FROM evil:1 AS e\nFROM scratch\nCOPY --from=e / /got/\n",
            user,
        );
        let out = area.hoist(
            user,
            &["--root", store, "build", "-q", "-t", "from:1", &d("from")],
            None,
        );
        canary.assert_unchanged(&format!("{case}: layer in a stage ({out:?})"));
    }
}

#[test]
fn hostile_tars_change_nothing_outside_as_root() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    every_extractor(None);
}

#[test]
fn hostile_tars_change_nothing_outside_rootless() {
    if users().is_none() {
        return;
    }
    every_extractor(Some(BUILDER));
}
