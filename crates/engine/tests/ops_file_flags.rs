//! COPY's flags on real trees: `--chown`, `--chmod`, `--parents`,
//! `--exclude`, `--link` and heredoc sources, each test named after the
//! BuildKit integration test it mirrors; every op runs in both modes.

mod ops_file_support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use hoist_engine::ops::file::{
    Chown, CopyPlan, FileOpError, InlineSource, SourceSpec, apply_to_dir,
};
use ops_file_support::*;

fn plan(srcs: Vec<SourceSpec>, dest: &str) -> CopyPlan {
    CopyPlan {
        sources: srcs,
        dest: dest.to_string(),
        now: Some(now()),
        ..Default::default()
    }
}

fn ctx(base: &Path, srcs: &[&str], dest: &str) -> CopyPlan {
    plan(
        srcs.iter().map(|s| SourceSpec::context(base, *s)).collect(),
        dest,
    )
}

fn stage(base: &Path, srcs: &[&str], dest: &str) -> CopyPlan {
    plan(
        srcs.iter().map(|s| SourceSpec::stage(base, *s)).collect(),
        dest,
    )
}

fn chown(p: CopyPlan, spec: &str) -> CopyPlan {
    CopyPlan {
        chown: Some(Chown::Spec(spec.to_string())),
        ..p
    }
}

fn chmod(p: CopyPlan, mode: &str) -> CopyPlan {
    CopyPlan {
        chmod: Some(mode.to_string()),
        ..p
    }
}

/// Runs the ops in order over `base`, both ways at every step.
fn chain_on(base: &Path, plans: &[CopyPlan]) -> (Vec<tempfile::TempDir>, std::path::PathBuf) {
    let mut keep = vec![];
    let mut root = base.to_path_buf();
    for p in plans {
        let (t, applied) = both(p, &root);
        root = applied;
        keep.push(t);
    }
    (keep, root)
}

fn image_with_users() -> tempfile::TempDir {
    let img = tempfile::tempdir().unwrap();
    file(
        img.path(),
        "etc/passwd",
        b"root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nuser:x:1000:1000::/home/user:/bin/sh\nuser01:x:1001:1001::/home/user01:/bin/sh\n",
        0o644,
    );
    file(
        img.path(),
        "etc/group",
        b"root:x:0:\ndaemon:x:1:\nuser:x:1000:\nuser01:x:1001:\nnobody:x:65534:\n",
        0o644,
    );
    img
}

fn owner(root: &Path, rel: &str) -> (u32, u32) {
    let s = &snapshot(root)[rel];
    (s.uid, s.gid)
}

#[test]
fn ops_file_copy_chown_mirror_test_copy_chown() {
    let c = tempfile::tempdir().unwrap();
    file(c.path(), "foo", b"foo-contents", 0o600);
    dir(c.path(), "bar", 0o700);
    file(c.path(), "bar/sub", b"", 0o600);
    let img = image_with_users();
    let plans = [
        chown(ctx(c.path(), &["foo"], "/"), "daemon"),
        chown(ctx(c.path(), &["bar"], "/baz"), "1000:nobody"),
        chown(ctx(c.path(), &["foo"], "/foobis"), "1000:nobody"),
        chown(ctx(c.path(), &["foo"], "/numeric"), "1000"),
        chown(ctx(c.path(), &["foo"], "/emptygroup"), "user:"),
    ];
    // The layer carries the resolved ids whoever runs the test.
    let (bytes, _, _) = layer(&plans[0], Some(img.path())).unwrap();
    assert_eq!(entry_headers(&bytes)["foo"].1, 1);
    assert_eq!(entry_headers(&bytes)["foo"].2, 1);
    let (_k, root) = chain_on(img.path(), &plans);
    if is_root() {
        assert_eq!(owner(&root, "foo"), (1, 1), "daemon daemon");
        assert_eq!(owner(&root, "baz/sub"), (1000, 65534), "1000 nobody");
        assert_eq!(owner(&root, "foobis"), (1000, 65534));
        assert_eq!(
            owner(&root, "numeric"),
            (1000, 1000),
            "a lone uid is also the gid"
        );
        assert_eq!(
            owner(&root, "emptygroup"),
            (1000, 0),
            "`user:` is gid 0, as BuildKit"
        );
    }
}

#[test]
fn ops_file_copy_chown_create_dest_mirror_test_copy_chown_create_dest() {
    let c = tempfile::tempdir().unwrap();
    file(c.path(), "Dockerfile", b"FROM busybox\n", 0o600);
    let img = image_with_users();
    let (bytes, _, _) = layer(
        &chown(ctx(c.path(), &["."], "/dest"), "user:user"),
        Some(img.path()),
    )
    .unwrap();
    let h = entry_headers(&bytes);
    assert_eq!(
        (h["dest/"].1, h["dest/"].2),
        (1000, 1000),
        "the created destination is the user's"
    );
    assert_eq!(
        (h["dest/Dockerfile"].1, h["dest/Dockerfile"].2),
        (1000, 1000)
    );
    let (_k, root) = chain_on(
        img.path(),
        &[
            chown(ctx(c.path(), &["."], "/dest"), "user:user"),
            chown(ctx(c.path(), &["."], "/dest01"), "user01:user"),
        ],
    );
    if is_root() {
        assert_eq!(owner(&root, "dest"), (1000, 1000));
        assert_eq!(owner(&root, "dest01"), (1001, 1000));
    }
}

#[test]
fn ops_file_unknown_chown_name_is_an_error_naming_it() {
    let c = tempfile::tempdir().unwrap();
    file(c.path(), "f", b"x", 0o644);
    let img = image_with_users();
    for (spec, name) in [
        ("nosuchuser", "nosuchuser"),
        ("user:nosuchgroup", "nosuchgroup"),
    ] {
        let err = apply_to_dir(&chown(ctx(c.path(), &["f"], "/"), spec), img.path()).unwrap_err();
        assert!(matches!(err, FileOpError::UnknownUser { .. }), "{err}");
        assert!(err.to_string().contains(&format!("{name:?}")), "{err}");
    }
    // No /etc/passwd at all: a name cannot be found either.
    let empty = tempfile::tempdir().unwrap();
    assert!(apply_to_dir(&chown(ctx(c.path(), &["f"], "/"), "daemon"), empty.path()).is_err());
    // ...while ids and `root` need no file.
    let (_k, root) = chain_on(
        empty.path(),
        &[chown(ctx(c.path(), &["f"], "/"), "root:123")],
    );
    if is_root() {
        assert_eq!(owner(&root, "f"), (0, 123));
    }
}

#[test]
fn ops_file_copy_chown_existing_dir_mirror_test_copy_chown_existing_dir() {
    if !is_root() {
        eprintln!("skipped: source ids need root to set");
        return;
    }
    let src = tempfile::tempdir().unwrap();
    let s = src.path();
    let own = |rel: &str, u: u32, g: u32| {
        std::os::unix::fs::lchown(s.join(rel), Some(u), Some(g)).unwrap();
    };
    file(s, "file", b"", 0o644);
    file(s, "dir/subdir/nestedfile", b"", 0o644);
    own("file", 100, 200);
    own("dir", 100, 200);
    own("dir/subdir", 101, 201);
    own("dir/subdir/nestedfile", 102, 202);
    let base = tempfile::tempdir().unwrap();
    let b = base.path();
    file(b, "existingdir/existingfile", b"", 0o644);
    dir(b, "existingdir/existingsubdir", 0o755);
    for (rel, u, g) in [
        ("existingdir", 500, 600),
        ("existingdir/existingsubdir", 501, 601),
        ("existingdir/existingfile", 501, 601),
    ] {
        std::os::unix::fs::lchown(b.join(rel), Some(u), Some(g)).unwrap();
    }
    let (_k, root) = chain_on(
        b,
        &[
            stage(s, &["/file"], "."),
            stage(s, &["/dir"], "/dir"),
            stage(s, &["/dir/."], "/existingdir"),
        ],
    );
    for (rel, want) in [
        ("file", (100, 200)),
        ("dir", (0, 0)),
        ("dir/subdir", (101, 201)),
        ("dir/subdir/nestedfile", (102, 202)),
        ("existingdir", (500, 600)),
        ("existingdir/existingsubdir", (501, 601)),
        ("existingdir/existingfile", (501, 601)),
        ("existingdir/subdir", (101, 201)),
        ("existingdir/subdir/nestedfile", (102, 202)),
    ] {
        assert_eq!(owner(&root, rel), want, "{rel}");
    }
    let (_k, root) = chain_on(
        b,
        &[
            chown(stage(s, &["/file"], "."), "300:400"),
            chown(stage(s, &["/dir"], "/dir"), "300:400"),
            chown(stage(s, &["/dir/."], "/existingdir"), "300:400"),
        ],
    );
    for (rel, want) in [
        ("file", (300, 400)),
        ("dir", (300, 400)),
        ("dir/subdir", (300, 400)),
        ("dir/subdir/nestedfile", (300, 400)),
        ("existingdir", (500, 600)),
        ("existingdir/existingsubdir", (501, 601)),
        ("existingdir/subdir", (300, 400)),
        ("existingdir/subdir/nestedfile", (300, 400)),
    ] {
        assert_eq!(owner(&root, rel), want, "{rel} with --chown");
    }
}

#[test]
fn ops_file_copy_chmod_mirror_test_copy_chmod() {
    if !is_root() {
        // Modes such as 0000 or 0104 on what the test reads back need root.
        eprintln!("skipped: reading back unreadable modes needs root");
        return;
    }
    let c = tempfile::tempdir().unwrap();
    file(c.path(), "foo", b"foo-contents", 0o600);
    file(c.path(), "bar", b"bar-contents", 0o700);
    let empty = tempfile::tempdir().unwrap();
    let (_k, root) = chain_on(
        empty.path(),
        &[
            chmod(ctx(c.path(), &["foo"], "/"), "0644"),
            chmod(ctx(c.path(), &["bar"], "/baz"), "777"),
            chmod(ctx(c.path(), &["foo"], "/foobis"), "0"),
            chmod(ctx(c.path(), &["foo"], "/parent/foo"), "777"),
            chmod(ctx(c.path(), &["foo"], "/parent/sub/foo"), "770"),
            chmod(ctx(c.path(), &["foo"], "/footer"), "755"),
        ],
    );
    let snap = snapshot(&root);
    for (rel, mode) in [
        ("foo", 0o644),
        ("baz", 0o777),
        ("foobis", 0o000),
        ("parent", 0o777),
        ("parent/sub", 0o770),
        ("footer", 0o755),
    ] {
        assert_eq!(snap[rel].mode, mode, "{rel}: {:o}", snap[rel].mode);
    }
}

#[test]
fn ops_file_copy_invalid_chmod_mirror_test_copy_invalid_chmod() {
    let c = tempfile::tempdir().unwrap();
    file(c.path(), "foo", b"x", 0o600);
    let out = tempfile::tempdir().unwrap();
    for bad in ["64a", "10000"] {
        let p = chmod(ctx(c.path(), &["foo"], "/"), bad);
        let err = apply_to_dir(&p, out.path()).unwrap_err();
        let want = format!(
            "invalid chmod parameter: '{bad}'. it should be octal string and between 0 and 07777"
        );
        assert!(err.to_string().contains(&want), "{err}");
        assert!(p.validate().is_err());
    }
    assert!(snapshot(out.path()).is_empty());
}

#[test]
fn ops_file_chmod_non_octal_mirror_test_chmod_non_octal() {
    if !is_root() {
        // Modes such as 0000 or 0104 on what the test reads back need root.
        eprintln!("skipped: reading back unreadable modes needs root");
        return;
    }
    // The expected modes come from coreutils chmod on `cp -a` copies, as
    // the BuildKit test computes them.
    let src = tempfile::tempdir().unwrap();
    let s = src.path();
    file(s, "input/file", b"", 0o666);
    for (dst, mode, is_dir) in [
        ("f1", "go-w", false),
        ("f2", "u=rw,g=r,o=r", false),
        ("f3", "a+X", false),
        ("d1", "go-w", true),
        ("d2", "u+rw,g+r,o-x,o+w", true),
        ("d3", "a+X", true),
    ] {
        let expected = tempfile::tempdir().unwrap();
        let e = expected.path().join(dst);
        if is_dir {
            std::fs::create_dir(&e).unwrap();
            std::fs::set_permissions(&e, std::fs::Permissions::from_mode(0o124)).unwrap();
        } else {
            std::fs::write(&e, b"").unwrap();
            std::fs::set_permissions(&e, std::fs::Permissions::from_mode(0o666)).unwrap();
        }
        assert!(
            std::process::Command::new("chmod")
                .arg(mode)
                .arg(&e)
                .status()
                .unwrap()
                .success()
        );
        let want = snapshot(expected.path())[dst].mode;
        let p = if is_dir {
            std::fs::create_dir_all(s.join(format!("input/dirs/{dst}/{dst}"))).unwrap();
            std::fs::set_permissions(
                s.join(format!("input/dirs/{dst}/{dst}")),
                std::fs::Permissions::from_mode(0o124),
            )
            .unwrap();
            chmod(stage(s, &[&format!("/input/dirs/{dst}")], "/"), mode)
        } else {
            chmod(stage(s, &["/input/file"], &format!("/{dst}")), mode)
        };
        let empty = tempfile::tempdir().unwrap();
        let (_k, root) = chain_on(empty.path(), &[p]);
        assert_eq!(snapshot(&root)[dst].mode, want, "{dst} {mode}");
        // Restore so the next case's `cp`-like walk can read it.
        if is_dir {
            std::fs::set_permissions(
                s.join(format!("input/dirs/{dst}/{dst}")),
                std::fs::Permissions::from_mode(0o755),
            )
            .unwrap();
        }
    }
}

#[test]
fn ops_file_copy_parents_mirror_test_copy_parents() {
    let c = tempfile::tempdir().unwrap();
    file(c.path(), "foo1/foo2/bar", b"testing", 0o600);
    file(c.path(), "foo1/foo2/baz", b"testing2", 0o600);
    let parents = |p: CopyPlan| CopyPlan { parents: true, ..p };
    let empty = tempfile::tempdir().unwrap();
    let mut second = parents(ctx(c.path(), &["foo1/foo2/ba*"], "."));
    second.workdir = "/test".into();
    let (_k, root) = chain_on(
        empty.path(),
        &[parents(ctx(c.path(), &["foo1/foo2/bar"], "/")), second],
    );
    assert_eq!(read(&root, "foo1/foo2/bar"), "testing");
    assert!(!exists(&root, "foo1/foo2/baz"));
    assert_eq!(read(&root, "test/foo1/foo2/bar"), "testing");
    assert_eq!(read(&root, "test/foo1/foo2/baz"), "testing2");
}

fn relative_parents_stage() -> tempfile::TempDir {
    let base = tempfile::tempdir().unwrap();
    let b = base.path();
    for d in [
        "test/a/b/c/d/e",
        "test/a/b2/c/d/e",
        "test/a/b/c2/d/e",
        "test/a/b/c2/d/e2",
    ] {
        dir(b, d, 0o755);
    }
    for f in [
        "test/a/b/c/d/foo",
        "test/a/b/c/d/e/bay",
        "test/a/b2/c/d/e/bar",
        "test/a/b/c2/d/e/baz",
        "test/a/b/c2/d/e2/baz",
    ] {
        file(b, f, b"", 0o644);
    }
    base
}

#[test]
fn ops_file_copy_relative_parents_mirror_test_copy_relative_parents() {
    let base = relative_parents_stage();
    let b = base.path();
    let run = |srcs: &[&str]| {
        let p = CopyPlan {
            parents: true,
            ..stage(b, srcs, "/out/")
        };
        let empty = tempfile::tempdir().unwrap();
        let (keep, root) = chain_on(empty.path(), &[p]);
        (keep, empty, root)
    };
    // middle
    let (_k, _e, r) = run(&["/test/a/b/./c/d"]);
    assert!(exists(&r, "out/c/d/e") && exists(&r, "out/c/d/foo"));
    assert!(!exists(&r, "out/a") && !exists(&r, "out/e"));
    // end
    let (_k, _e, r) = run(&["/test/a/b/c/d/."]);
    assert!(exists(&r, "out/test/a/b/c/d/e") && exists(&r, "out/test/a/b/c/d/foo"));
    // start
    let (_k, _e, r) = run(&["./test/a/b/c/d"]);
    assert!(exists(&r, "out/test/a/b/c/d/e") && exists(&r, "out/test/a/b/c/d/foo"));
    // double
    let (_k, _e, r) = run(&["/test/a/./b/./c"]);
    assert!(exists(&r, "out/b/c/d/e") && exists(&r, "out/b/c/d/foo"));
    // wildcard
    let (_k, _e, r) = run(&["/test/a/./*/c"]);
    assert!(exists(&r, "out/b/c/d/e") && exists(&r, "out/b2/c/d/e/bar"));
    // doublewildcard
    let (_k, _e, r) = run(&["/test/a/b*/./c/**/e"]);
    assert!(exists(&r, "out/c/d/e") && exists(&r, "out/c/d/e/bay") && exists(&r, "out/c/d/e/bar"));
    // doubleinputs
    let (_k, _e, r) = run(&["/test/a/b/c*/./d/**/baz", "/test/a/b*/./c/**/bar"]);
    assert!(exists(&r, "out/d/e/baz"));
    assert!(!exists(&r, "out/d/e/bay"));
    assert!(exists(&r, "out/d/e2/baz"));
    assert!(exists(&r, "out/c/d/e/bar"));
}

#[test]
fn ops_file_copy_parents_missing_directory_mirror_test_copy_parents_missing_directory() {
    let base = relative_parents_stage();
    let b = base.path();
    let p = |src: &str| CopyPlan {
        parents: true,
        ..stage(b, &[src], "/out/")
    };
    let empty = tempfile::tempdir().unwrap();
    let (_k, r) = chain_on(empty.path(), &[p("/test/a/b/c/d")]);
    assert!(exists(&r, "out/test/a/b/c/d/e/bay") && !exists(&r, "out/e") && !exists(&r, "out/a"));
    let (_k, r) = chain_on(empty.path(), &[p("/test/a/b/./c/d")]);
    assert!(exists(&r, "out/c/d/foo") && !exists(&r, "out/a"));
    let out = tempfile::tempdir().unwrap();
    let err = apply_to_dir(&p("/test/nonexistent-file"), out.path()).unwrap_err();
    assert!(
        err.to_string()
            .contains("\"/test/nonexistent-file\" not found"),
        "{err}"
    );
    let (_k, r) = chain_on(empty.path(), &[p("/test/a/b2*/c")]);
    assert!(
        exists(&r, "out") && !exists(&r, "out/a"),
        "no match: an empty destination"
    );
    let (_k, r) = chain_on(empty.path(), &[p("/test/a/b/./c2*")]);
    assert!(exists(&r, "out") && !exists(&r, "out/a"));
    assert!(exists(&r, "out/c2/d/e/baz"), "c2* matches below the pivot");
}

#[test]
fn ops_file_excluded_files_on_copy_mirror_test_excluded_files_on_copy() {
    let src = tempfile::tempdir().unwrap();
    let s = src.path();
    for (f, d) in [
        ("dir1/file-101.png", "2"),
        ("dir1/file-102.txt", "3"),
        ("dir1/file-103.jpeg", "4"),
        ("dir2/file-201.pdf", "6"),
        ("dir2/file-202.jpeg", "7"),
        ("dir2/file-203.png", "8"),
        ("dir3/file-301.mp3", "9"),
        ("dir3/file-302.mpeg", "10"),
        ("dir4/file-401.txt", "11"),
    ] {
        file(s, f, d.as_bytes(), 0o600);
    }
    symlink(s, "dir4/file-402.txt", "file-401.txt");
    symlink(s, "dir4/file-403.txt", "file-404.txt");
    let ex = |p: CopyPlan, pats: &[&str]| CopyPlan {
        excludes: pats.iter().map(|s| s.to_string()).collect(),
        ..p
    };
    let add = |p: CopyPlan| CopyPlan { is_add: true, ..p };
    let empty = tempfile::tempdir().unwrap();
    let (_k, r) = chain_on(
        empty.path(),
        &[
            ex(ctx(s, &["."], "/1"), &["*/*.png", "*/*.jpeg"]),
            ex(ctx(s, &["."], "/2"), &["*/*.pdf", "*/*.txt"]),
            add(ex(ctx(s, &["dir3/"], "/3/"), &["*.mp3"])),
            ex(
                ctx(s, &["dir*"], "/4/"),
                &["*.mp3", "*.jpeg", "*.png", "*.pdf", "*.txt"],
            ),
            add(ex(
                ctx(s, &["dir*"], "/5"),
                &["*.mp*", "*.jpeg", "*.png", "*.pdf"],
            )),
            add(ex(ctx(s, &["dir*"], "/6"), &["*"])),
        ],
    );
    let present: &[(&str, &str)] = &[
        ("1/dir1/file-102.txt", "3"),
        ("1/dir2/file-201.pdf", "6"),
        ("1/dir3/file-301.mp3", "9"),
        ("1/dir3/file-302.mpeg", "10"),
        ("1/dir4/file-401.txt", "11"),
        ("2/dir1/file-101.png", "2"),
        ("2/dir1/file-103.jpeg", "4"),
        ("2/dir2/file-202.jpeg", "7"),
        ("2/dir2/file-203.png", "8"),
        ("2/dir3/file-301.mp3", "9"),
        ("3/file-302.mpeg", "10"),
        ("4/file-302.mpeg", "10"),
        ("5/file-102.txt", "3"),
        ("5/file-401.txt", "11"),
    ];
    for (f, d) in present {
        assert_eq!(read(&r, f), *d, "{f}");
    }
    let snap = snapshot(&r);
    assert_eq!(snap["1/dir4/file-402.txt"].data, b"file-401.txt");
    assert_eq!(snap["5/file-403.txt"].data, b"file-404.txt");
    for f in [
        "1/dir1/file-101.png",
        "1/dir1/file-103.jpeg",
        "1/dir2/file-202.jpeg",
        "2/dir1/file-102.txt",
        "2/dir2/file-201.pdf",
        "2/dir4/file-401.txt",
        "2/dir4/file-402.txt",
        "3/file-301.mp3",
        "4/file-101.png",
        "4/file-301.mp3",
        "5/file-302.mpeg",
        "5/file-101.png",
    ] {
        assert!(!exists(&r, f), "{f} should be excluded");
    }
    assert!(
        std::fs::read_dir(r.join("6")).unwrap().next().is_none(),
        "everything excluded: empty /6"
    );
    // Deliberate difference (moby/buildkit#5489): a file source is excluded
    // by its own name, as the reference's example says.
    let (_k, r) = chain_on(empty.path(), &[ex(ctx(s, &["dir1/*"], "/7/"), &["*.txt"])]);
    assert!(exists(&r, "7/file-101.png") && !exists(&r, "7/file-102.txt"));
}

#[test]
fn ops_file_copy_heredoc_mirror_test_copy_heredoc() {
    let img = image_with_users();
    let inline = |name: &str, data: &str| InlineSource {
        name: name.to_string(),
        data: data.as_bytes().to_vec(),
    };
    let doc = |docs: Vec<InlineSource>, dest: &str| CopyPlan {
        inline: docs,
        workdir: "/dest".into(),
        ..plan(vec![], dest)
    };
    let (_k, r) = chain_on(
        img.path(),
        &[
            doc(vec![inline("EOF", "single file\n")], "single"),
            doc(
                vec![
                    inline("EOF", "first file\n"),
                    inline("EOF2", "second file\n"),
                ],
                "double/",
            ),
            chmod(
                doc(vec![inline("EOF", "dummy content\n")], "/permfiles/all"),
                "777",
            ),
            chmod(
                doc(vec![inline("EOF", "dummy content\n")], "/permfiles/rw"),
                "0644",
            ),
            chown(
                doc(vec![inline("EOF", "dummy content\n")], "/permfiles/owned"),
                "user:user",
            ),
        ],
    );
    assert_eq!(read(&r, "dest/single"), "single file\n");
    assert_eq!(read(&r, "dest/double/EOF"), "first file\n");
    assert_eq!(read(&r, "dest/double/EOF2"), "second file\n");
    let snap = snapshot(&r);
    assert_eq!(snap["dest/single"].mode, 0o644);
    assert_eq!(snap["dest/single"].mtime, NOW as i64);
    assert_eq!(snap["permfiles/all"].mode, 0o777);
    assert_eq!(snap["permfiles/rw"].mode, 0o644);
    if is_root() {
        assert_eq!(owner(&r, "permfiles/owned"), (1000, 1000));
    }
}

#[test]
fn ops_file_copy_link_mirror_test_copy_link_dot_and_empty_dest_dir() {
    let c = tempfile::tempdir().unwrap();
    file(c.path(), "testfile", b"contents0", 0o600);
    let base = tempfile::tempdir().unwrap();
    dir(base.path(), "var/www", 0o750);
    symlink(base.path(), "app", "/");
    for dest in [".", ""] {
        let p = CopyPlan {
            link: true,
            workdir: "/var/www".into(),
            ..ctx(c.path(), &["testfile"], dest)
        };
        let (_k, r) = chain_on(base.path(), &[p]);
        assert_eq!(read(&r, "var/www/testfile"), "contents0");
    }
    // --link: the layer is made on scratch, so a symlink in the base is not
    // followed (BuildKit's merge replaces it with the layer's directory),
    // and the parents in the layer are the ones the copy created.
    let p = CopyPlan {
        link: true,
        ..ctx(c.path(), &["testfile"], "/app/")
    };
    let (bytes, _, _) = layer(&p, Some(base.path())).unwrap();
    assert_eq!(entry_names(&bytes), ["app/", "app/testfile"]);
    assert_eq!(entry_headers(&bytes)["app/"].0, 0o755);
    let (_k, r) = chain_on(base.path(), std::slice::from_ref(&p));
    assert_eq!(snapshot(&r)["app"].kind, 'd');
    assert_eq!(read(&r, "app/testfile"), "contents0");
    // Without --link the same copy goes through the symlink to `/`.
    let (bytes, _, _) = layer(&CopyPlan { link: false, ..p }, Some(base.path())).unwrap();
    assert_eq!(entry_names(&bytes), ["testfile"]);
}
