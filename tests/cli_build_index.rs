//! `COPY`, `ADD` and `WORKDIR` find where their files land from the
//! parent's layer indexes: a build over a base of many files, a stored
//! gzip image, a `USER` by name and a symlinked destination unpacks no
//! snapshot, gives the files and owners BuildKit gives, and `hoist prune`
//! takes the indexes with their layers.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use hoist_engine::store::Store;

use hoist_test_support::{bin, lab};

/// `lab::ok` with the hoist under test.
fn ok(root: &Path, args: &[&str]) -> String {
    lab::ok(bin!(), root, args)
}

fn write(dir: &Path, rel: &str, body: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, body).unwrap();
}

fn count(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}

#[test]
fn copy_and_workdir_land_without_unpacking_the_parent() {
    let dir = tempfile::tempdir().unwrap();
    let (root, ctx) = (dir.path().join("store"), dir.path().join("ctx"));
    hoist_engine::testing::small_image(&Store::open(&root).unwrap(), "docker.io/library/hello:1")
        .unwrap();
    write(
        &ctx,
        "rootfs/etc/passwd",
        "root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n",
    );
    write(&ctx, "rootfs/etc/group", "root:x:0:\nstaff:x:50:app\n");
    for i in 0..300 {
        write(&ctx, &format!("rootfs/data/f{i:03}"), "x");
    }
    std::os::unix::fs::symlink("/", ctx.join("rootfs/app")).unwrap();
    write(&ctx, "late.txt", "late\n");
    write(
        &ctx,
        "Dockerfile",
        "FROM hello:1\n\
         COPY rootfs/ /\n\
         COPY late.txt /app/via-link.txt\n\
         USER app\n\
         WORKDIR /home/app/work\n\
         COPY --chown=app:staff late.txt late.txt\n\
         ADD --chown=app late.txt /data/\n",
    );
    ok(&root, &["build", "-t", "app:1", ctx.to_str().unwrap()]);
    assert_eq!(count(&root.join("snapshots")), 0, "no parent was unpacked");
    assert_eq!(
        count(&root.join("indexes")),
        6,
        "the gzip base indexed from its blob, five layers as written"
    );
    ok(&root, &["store", "check"]);
    let out = dir.path().join("rootfs");
    ok(
        &root,
        &[
            "export",
            "app:1",
            "-o",
            &format!("type=local,dest={}", out.display()),
        ],
    );
    assert_eq!(
        std::fs::read_to_string(out.join("via-link.txt")).unwrap(),
        "late\n"
    );
    assert!(out.join("hello.txt").is_file());
    let root_user = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    let work = std::fs::metadata(out.join("home/app/work")).unwrap();
    let late = std::fs::metadata(out.join("home/app/work/late.txt")).unwrap();
    let added = std::fs::metadata(out.join("data/late.txt")).unwrap();
    if root_user {
        assert_eq!(
            (work.uid(), work.gid()),
            (1000, 1001),
            "WORKDIR as USER app"
        );
        assert_eq!((late.uid(), late.gid()), (1000, 50));
        assert_eq!((added.uid(), added.gid()), (1000, 1001));
    }
    // The cache records keep their layers' indexes; prune --all takes all.
    ok(&root, &["prune", "--force"]);
    assert_eq!(count(&root.join("indexes")), 6);
    ok(&root, &["prune", "--all", "--force"]);
    assert_eq!(count(&root.join("indexes")), 0);
    ok(&root, &["store", "check"]);
}
