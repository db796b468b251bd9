//! COPY's placement rules on real trees, each test named after the
//! BuildKit integration test (frontend/dockerfile/dockerfile_*_test.go) it
//! mirrors. Every op runs in both modes (`both`): the layer unpacked over
//! the base must equal the tree `apply_to_dir` leaves.

mod ops_file_support;

use std::path::Path;

use hoist_engine::ops::file::{CopyPlan, FileOpError, SourceSpec, apply_to_dir};
use ops_file_support::*;

fn plan(ctx: &Path, srcs: &[&str], dest: &str) -> CopyPlan {
    CopyPlan {
        sources: srcs.iter().map(|s| SourceSpec::context(ctx, *s)).collect(),
        dest: dest.to_string(),
        now: Some(now()),
        ..Default::default()
    }
}

/// Runs the ops in order from an empty root, both ways at every step.
fn chain(plans: &[CopyPlan]) -> (Vec<tempfile::TempDir>, std::path::PathBuf) {
    let start = tempfile::tempdir().unwrap();
    let mut keep = vec![];
    let mut root = start.path().to_path_buf();
    keep.push(start);
    for p in plans {
        let (t, applied) = both(p, &root);
        root = applied;
        keep.push(t);
    }
    (keep, root)
}

#[test]
fn ops_file_copy_wildcards_mirror_test_copy_wildcards() {
    let ctx = tempfile::tempdir().unwrap();
    let c = ctx.path();
    file(c, "foo.go", b"foo-contents", 0o600);
    file(c, "bar.go", b"bar-contents", 0o600);
    dir(c, "sub/dir1/dir2", 0o700);
    file(c, "sub/dir1/dir2/foo", b"foo-contents", 0o600);
    let (_keep, root) = chain(&[
        plan(c, &["*.go"], "/gofiles/"),
        plan(c, &["f*.go"], "foo2.go"),
        plan(c, &["sub/*"], "/subdest/"),
        plan(c, &["sub/*/dir2/foo"], "/subdest2/"),
        plan(c, &["sub/*/dir2/foo"], "/subdest3/bar"),
        plan(c, &["."], "all/"),
        plan(c, &["sub/dir1/"], "subdest4"),
        plan(c, &["sub/dir1/."], "subdest5"),
        plan(c, &["sub/dir1"], "subdest6"),
    ]);
    assert_eq!(read(&root, "gofiles/foo.go"), "foo-contents");
    assert_eq!(read(&root, "gofiles/bar.go"), "bar-contents");
    assert_eq!(read(&root, "foo2.go"), "foo-contents");
    assert_eq!(read(&root, "subdest/dir2/foo"), "foo-contents");
    assert_eq!(read(&root, "subdest2/foo"), "foo-contents");
    assert_eq!(read(&root, "subdest3/bar"), "foo-contents");
    assert_eq!(read(&root, "all/foo.go"), "foo-contents");
    assert_eq!(read(&root, "subdest4/dir2/foo"), "foo-contents");
    assert_eq!(read(&root, "subdest5/dir2/foo"), "foo-contents");
    assert_eq!(read(&root, "subdest6/dir2/foo"), "foo-contents");
    // A directory source copies its contents: no `dir1` level.
    assert!(!exists(&root, "subdest4/dir1"));
    // Created destination directories are 0755 root; copied ones keep 0700.
    let snap = snapshot(&root);
    assert_eq!(snap["subdest4"].mode, 0o755);
    assert_eq!(snap["subdest4/dir2"].mode, 0o700);
    assert_eq!(snap["gofiles/foo.go"].mode, 0o600);
}

#[test]
fn ops_file_empty_wildcard_mirror_test_empty_wildcard() {
    let ctx = tempfile::tempdir().unwrap();
    file(ctx.path(), "foo", b"contents0", 0o600);
    let (_k, root) = chain(&[plan(ctx.path(), &["foo", "nomatch*"], "/")]);
    assert_eq!(read(&root, "foo"), "contents0");
    // A wildcard matching nothing copies nothing, not even the destination.
    let (_k2, root2) = chain(&[plan(ctx.path(), &["nomatch*"], "/x/")]);
    assert!(snapshot(&root2).is_empty());
    // But a missing plain source is an error naming it.
    let out = tempfile::tempdir().unwrap();
    let err = apply_to_dir(&plan(ctx.path(), &["nosuch"], "/"), out.path()).unwrap_err();
    assert!(
        matches!(err, FileOpError::NotFound { ref path, .. } if path == "/nosuch"),
        "{err}"
    );
    assert!(err.to_string().contains("\"/nosuch\" not found"), "{err}");
    let err = apply_to_dir(&plan(ctx.path(), &["nodir/*.txt"], "/"), out.path()).unwrap_err();
    assert!(matches!(err, FileOpError::NotFound { .. }), "{err}");
}

#[test]
fn ops_file_copy_relative_mirror_test_copy_relative() {
    let ctx = tempfile::tempdir().unwrap();
    let c = ctx.path();
    file(c, "foo", b"hello", 0o600);
    let wd = |p: CopyPlan, w: &str| CopyPlan {
        workdir: w.to_string(),
        ..p
    };
    let mut add = plan(c, &["foo"], "./bar/baz");
    add.is_add = true;
    let (_k, root) = chain(&[
        wd(plan(c, &["foo"], "./"), "/test1/test2"),
        wd(add, "/test1/test2"),
        wd(plan(c, &["foo"], "./bar/baz2"), "/test1/test2"),
        wd(plan(c, &["foo"], "./"), "/test1"),
        wd(plan(c, &["foo"], "/test3/"), "/test1"),
        wd(plan(c, &["."], "."), "/test4"),
        wd(plan(c, &["foo"], "../"), "/test5/test6"),
    ]);
    for f in [
        "test1/test2/foo",
        "test1/test2/bar/baz",
        "test1/test2/bar/baz2",
        "test1/foo",
        "test3/foo",
        "test4/foo",
        "test5/foo",
    ] {
        assert_eq!(read(&root, f), "hello", "{f}");
    }
}

#[test]
fn ops_file_dest_dir_slash_mirror_test_preserve_dest_dir_slash_and_test_empty_dest_dir() {
    let ctx = tempfile::tempdir().unwrap();
    file(ctx.path(), "testfile", b"contents0", 0o600);
    let (_k, root) = chain(&[plan(ctx.path(), &["testfile"], "/sample/")]);
    assert_eq!(read(&root, "sample/testfile"), "contents0");
    // An empty destination is the working directory.
    let mut p = plan(ctx.path(), &["testfile"], "");
    p.workdir = "/var/www".into();
    let (_k, root) = chain(&[p]);
    assert_eq!(read(&root, "var/www/testfile"), "contents0");
    // Without the slash a missing destination is the file's new name.
    let (_k, root) = chain(&[plan(ctx.path(), &["testfile"], "/sample")]);
    assert_eq!(read(&root, "sample"), "contents0");
}

#[test]
fn ops_file_copy_override_files_mirror_test_copy_override_files() {
    let ctx = tempfile::tempdir().unwrap();
    let c = ctx.path();
    dir(c, "sub/dir1/dir2", 0o700);
    file(c, "sub/dir1/dir2/foo", b"foo-contents", 0o600);
    file(c, "files/foo.go", b"foo.go-contents", 0o600);
    let (_k, root) = chain(&[
        plan(c, &["sub"], "sub"),
        plan(c, &["sub"], "sub"),
        plan(c, &["files/foo.go"], "dest/foo.go"),
        plan(c, &["files/foo.go"], "dest/foo.go"),
        plan(c, &["files"], "dest"),
    ]);
    assert_eq!(read(&root, "sub/dir1/dir2/foo"), "foo-contents");
    assert_eq!(read(&root, "dest/foo.go"), "foo.go-contents");
}

#[test]
fn ops_file_copy_symlinks_mirror_test_copy_symlinks_and_follow_all() {
    let ctx = tempfile::tempdir().unwrap();
    let c = ctx.path();
    file(c, "bar", b"bar-contents", 0o600);
    symlink(c, "foo", "bar");
    file(c, "sub/lfile", b"lfile-contents", 0o600);
    symlink(c, "sub/l0", "subfile");
    file(c, "sub/subfile", b"subfile-contents", 0o600);
    symlink(c, "sub/l1", "second");
    symlink(c, "sub/second", "baz");
    file(c, "sub/baz", b"baz-contents", 0o600);
    dir(c, "dir", 0o700);
    symlink(c, "dir/sub", "../bar");
    symlink(c, "dir/abs", "/bar");
    let (_k, root) = chain(&[
        plan(c, &["foo"], "/"),
        plan(c, &["sub/l*"], "alllinks/"),
        // testCopyFollowAllSymlinks: a link below the source is followed
        // inside the context.
        plan(c, &["dir/sub"], "followed"),
        plan(c, &["dir/abs"], "followed-abs"),
        // Inside a copied directory, links stay links.
        plan(c, &["dir"], "/kept/"),
    ]);
    assert_eq!(read(&root, "foo"), "bar-contents");
    assert_eq!(read(&root, "alllinks/l0"), "subfile-contents");
    assert_eq!(read(&root, "alllinks/lfile"), "lfile-contents");
    assert_eq!(read(&root, "alllinks/l1"), "baz-contents");
    assert_eq!(read(&root, "followed"), "bar-contents");
    assert_eq!(read(&root, "followed-abs"), "bar-contents");
    let snap = snapshot(&root);
    assert_eq!(
        (snap["kept/sub"].kind, &snap["kept/sub"].data[..]),
        ('l', &b"../bar"[..])
    );
    assert_eq!(snap["alllinks/l0"].kind, 'f');
}

#[test]
fn ops_file_copy_socket_mirror_test_copy_socket() {
    let ctx = tempfile::tempdir().unwrap();
    let _listener = std::os::unix::net::UnixListener::bind(ctx.path().join("socket.sock")).unwrap();
    file(ctx.path(), "plain", b"x", 0o644);
    let (_k, root) = chain(&[plan(ctx.path(), &["."], "/")]);
    let snap = snapshot(&root);
    assert_eq!(
        snap["socket.sock"].kind, 'f',
        "a context socket becomes a regular file"
    );
    assert!(snap["socket.sock"].data.is_empty());
    // From another stage a socket is skipped, as a layer cannot hold one.
    let mut stage = plan(ctx.path(), &["."], "/s/");
    stage.sources[0] = SourceSpec::stage(ctx.path(), ".");
    let (_k, root) = chain(&[stage]);
    assert!(!exists(&root, "s/socket.sock"));
    assert_eq!(read(&root, "s/plain"), "x");
}

#[test]
fn ops_file_several_sources_need_a_directory_destination() {
    let ctx = tempfile::tempdir().unwrap();
    let c = ctx.path();
    file(c, "a", b"a", 0o644);
    file(c, "b", b"b", 0o644);
    dir(c, "d1", 0o755);
    file(c, "d1/x", b"1", 0o644);
    dir(c, "d2", 0o755);
    file(c, "d2/y", b"2", 0o644);
    let out = tempfile::tempdir().unwrap();
    for p in [plan(c, &["a", "b"], "/dest"), plan(c, &["*"], "/dest")] {
        let err = apply_to_dir(&p, out.path()).unwrap_err();
        assert!(
            err.to_string().contains(
                "when using COPY with more than one source file, the destination must be a directory and end with a /"
            ),
            "{err}"
        );
        assert!(layer(&p, None).is_err());
    }
    assert!(
        snapshot(out.path()).is_empty(),
        "nothing written before the error"
    );
    // With a slash, into an existing directory, or directories only: fine.
    let (_k, root) = chain(&[
        plan(c, &["a", "b"], "/dest/"),
        plan(c, &["a", "b"], "/dest"),
        plan(c, &["d1", "d2"], "/merged"),
    ]);
    assert_eq!(read(&root, "dest/a"), "a");
    assert_eq!(read(&root, "dest/b"), "b");
    assert_eq!(read(&root, "merged/x"), "1");
    assert_eq!(read(&root, "merged/y"), "2");
}

#[test]
fn ops_file_dir_over_file_and_file_over_dir_are_errors_as_in_fsutil() {
    let ctx = tempfile::tempdir().unwrap();
    let c = ctx.path();
    file(c, "f", b"f", 0o644);
    dir(c, "d", 0o755);
    file(c, "d/inner", b"i", 0o644);
    let base = tempfile::tempdir().unwrap();
    file(base.path(), "target", b"old", 0o644);
    dir(base.path(), "adir/f", 0o755);
    let err = apply_to_dir(&plan(c, &["d"], "/target"), base.path()).unwrap_err();
    assert!(
        err.to_string().contains("cannot copy to non-directory"),
        "{err}"
    );
    let err = apply_to_dir(&plan(c, &["f"], "/adir/"), base.path()).unwrap_err();
    assert!(
        err.to_string()
            .contains("cannot replace to directory with file"),
        "{err}"
    );
    assert_eq!(read(base.path(), "target"), "old");
}

#[test]
fn ops_file_hardlinks_mtimes_and_xattrs_are_kept() {
    let ctx = tempfile::tempdir().unwrap();
    let c = ctx.path();
    file(c, "d/a", b"linked", 0o640);
    std::fs::hard_link(c.join("d/a"), c.join("d/b")).unwrap();
    let t = std::fs::FileTimes::new()
        .set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_234_567));
    std::fs::File::options()
        .write(true)
        .open(c.join("d/a"))
        .unwrap()
        .set_times(t)
        .unwrap();
    let has_xattr = rustix::fs::setxattr(
        c.join("d/a"),
        "user.test",
        b"v",
        rustix::fs::XattrFlags::empty(),
    )
    .is_ok();
    let p = plan(c, &["d"], "/out/");
    let (_k, root) = chain(std::slice::from_ref(&p));
    let a = std::fs::metadata(root.join("out/a")).unwrap();
    let b = std::fs::metadata(root.join("out/b")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(a.ino(), b.ino(), "hard links stay linked");
    assert_eq!(a.mtime(), 1_234_567);
    let (bytes, _, _) = layer(&p, None).unwrap();
    let heads = entry_headers(&bytes);
    assert_eq!(
        heads["out/b"].4, '1',
        "the second name is a hard link entry"
    );
    if has_xattr {
        let mut buf = [0u8; 8];
        let n = rustix::fs::getxattr(root.join("out/a"), "user.test", &mut buf[..]).unwrap();
        assert_eq!(&buf[..n], b"v");
    }
}
