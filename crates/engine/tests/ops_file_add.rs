//! ADD: local archives of every compression unpacked (or not), and URLs
//! fetched from a server on 127.0.0.1 with `--checksum`; each test named
//! after the BuildKit test (dockerfile_add_test.go) it mirrors, each op run
//! in both modes.

mod ops_file_support;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use hoist_engine::ops::file::{
    Chown, CopyPlan, FileOpError, SourceKind, SourceSpec, apply_to_dir, classify_source,
};
use ops_file_support::*;

fn add(ctx: &Path, srcs: &[&str], dest: &str) -> CopyPlan {
    CopyPlan {
        sources: srcs.iter().map(|s| SourceSpec::context(ctx, *s)).collect(),
        dest: dest.to_string(),
        is_add: true,
        now: Some(now()),
        runtime: runtime(),
        ..Default::default()
    }
}

/// The runtime URLs download on (in hoist, the CLI's one runtime).
fn runtime() -> hoist_engine::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    let rt = RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    });
    hoist_engine::runtime::Runtime(Some(rt.handle().clone()))
}

fn run(plans: &[CopyPlan]) -> (Vec<tempfile::TempDir>, std::path::PathBuf) {
    let start = tempfile::tempdir().unwrap();
    let mut root = start.path().to_path_buf();
    let mut keep = vec![start];
    for p in plans {
        let (t, applied) = both(p, &root);
        root = applied;
        keep.push(t);
    }
    (keep, root)
}

fn foo_tar() -> Vec<u8> {
    raw_tar(&[T::File("foo", b"content0", 0o644)])
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Compresses with a Debian CLI (`bzip2`, `xz`).
fn cli(tool: &str, data: &[u8]) -> Vec<u8> {
    let mut child = std::process::Command::new(tool)
        .arg("-c")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{tool} (Debian package {tool}/xz-utils): {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let input = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success());
    out.stdout
}

#[test]
fn ops_file_add_archive_mirror_test_dockerfile_add_archive() {
    let c = tempfile::tempdir().unwrap();
    let tar = foo_tar();
    let archives: [(&str, Vec<u8>); 5] = [
        ("t.tar", tar.clone()),
        ("t.tar.gz", gzip(&tar)),
        ("t.tar.bz2", cli("bzip2", &tar)),
        ("t.tar.xz", cli("xz", &tar)),
        ("t.tar.zst", zstd::encode_all(&tar[..], 3).unwrap()),
    ];
    for (name, bytes) in &archives {
        // Named nothing like an archive: detection is by content.
        let disguised = format!("{name}.bin");
        std::fs::write(c.path().join(&disguised), bytes).unwrap();
        let (_k, r) = run(&[add(c.path(), &[&disguised], "/")]);
        assert_eq!(read(&r, "foo"), "content0", "{name}");
        assert!(!exists(&r, &disguised), "{name} unpacked, not copied");
        let snap = snapshot(&r);
        assert_eq!(
            (snap["foo"].mode, snap["foo"].mtime),
            (0o644, 1_600_000_000),
            "{name}"
        );
    }
    // --unpack=false copies the archive as it is.
    std::fs::write(c.path().join("t.tar.gz"), &archives[1].1).unwrap();
    let (_k, r) = run(&[CopyPlan {
        unpack: Some(false),
        ..add(c.path(), &["t.tar.gz"], "/")
    }]);
    assert!(!exists(&r, "foo"));
    assert_eq!(std::fs::read(r.join("t.tar.gz")).unwrap(), archives[1].1);
    // COPY never unpacks.
    let (_k, r) = run(&[CopyPlan {
        is_add: false,
        ..add(c.path(), &["t.tar.gz"], "/")
    }]);
    assert_eq!(std::fs::read(r.join("t.tar.gz")).unwrap(), archives[1].1);
    // An archive destination is always a directory, slash or not.
    let (_k, r) = run(&[add(c.path(), &["t.tar.gz"], "/newdir")]);
    assert_eq!(read(&r, "newdir/foo"), "content0");
}

#[test]
fn ops_file_add_not_an_archive_is_copied() {
    let c = tempfile::tempdir().unwrap();
    file(c.path(), "empty.tar", b"", 0o644);
    file(c.path(), "zeros.tar", &[0u8; 1024], 0o644);
    file(
        c.path(),
        "text.gz",
        &gzip(b"not a tar at all, but gzip"),
        0o644,
    );
    file(c.path(), "junk", &[7u8; 600], 0o644);
    let (_k, r) = run(&[add(
        c.path(),
        &["empty.tar", "zeros.tar", "text.gz", "junk"],
        "/d/",
    )]);
    for f in ["d/empty.tar", "d/zeros.tar", "d/text.gz", "d/junk"] {
        assert_eq!(snapshot(&r)[f].kind, 'f', "{f} copied as a file");
    }
}

#[test]
fn ops_file_add_archive_wildcard_mirror_test_dockerfile_add_archive_wildcard() {
    let c = tempfile::tempdir().unwrap();
    std::fs::write(c.path().join("t.tar"), foo_tar()).unwrap();
    std::fs::write(
        c.path().join("b.tar"),
        raw_tar(&[T::File("bar", b"content1", 0o644)]),
    )
    .unwrap();
    let (_k, r) = run(&[add(c.path(), &["*.tar"], "/dest")]);
    assert_eq!(read(&r, "dest/foo"), "content0");
    assert_eq!(read(&r, "dest/bar"), "content1");
}

#[test]
fn ops_file_add_archive_implied_parent_mirror_test_dockerfile_add_archive_with_implied_parent_dir()
{
    let c = tempfile::tempdir().unwrap();
    let tar = raw_tar(&[
        T::Dir("etc/dnf/", 0o755),
        T::File("etc/dnf/dnf.conf", b"content0", 0o644),
    ]);
    std::fs::write(c.path().join("t.tar.gz"), gzip(&tar)).unwrap();
    let (_k, r) = run(&[add(c.path(), &["t.tar.gz"], "/")]);
    assert_eq!(read(&r, "etc/dnf/dnf.conf"), "content0");
    let snap = snapshot(&r);
    assert_eq!(
        (snap["etc"].kind, snap["etc"].mode),
        ('d', 0o755),
        "implied parent"
    );
}

#[test]
fn ops_file_add_archive_through_absolute_symlink_mirror_test_dockerfile_add_archive_through_absolute_symlink()
 {
    let c = tempfile::tempdir().unwrap();
    let rootfs = raw_tar(&[
        T::Dir("run/", 0o755),
        T::Dir("var/", 0o755),
        T::Symlink("var/run", "/run"),
    ]);
    let payload = raw_tar(&[
        T::Dir("var/run/act/", 0o755),
        T::Dir("var/run/act/actions/", 0o755),
        T::Dir("var/run/act/actions/broad/", 0o755),
        T::Dir("var/run/act/actions/broad/.git/", 0o755),
        T::File(
            "var/run/act/actions/broad/.git/HEAD",
            b"ref: refs/heads/main\n",
            0o644,
        ),
        T::Hardlink(
            "var/run/act/actions/broad/.git/HEAD.link",
            "var/run/act/actions/broad/.git/HEAD",
        ),
    ]);
    std::fs::write(c.path().join("rootfs.tar"), rootfs).unwrap();
    std::fs::write(c.path().join("payload.tar"), payload).unwrap();
    let (_k, r) = run(&[
        add(c.path(), &["rootfs.tar"], "/"),
        add(c.path(), &["payload.tar"], "/"),
    ]);
    assert_eq!(
        read(&r, "run/act/actions/broad/.git/HEAD"),
        "ref: refs/heads/main\n"
    );
    assert_eq!(
        read(&r, "run/act/actions/broad/.git/HEAD.link"),
        "ref: refs/heads/main\n"
    );
    use std::os::unix::fs::MetadataExt;
    let a = std::fs::metadata(r.join("run/act/actions/broad/.git/HEAD")).unwrap();
    let b = std::fs::metadata(r.join("run/act/actions/broad/.git/HEAD.link")).unwrap();
    assert_eq!(a.ino(), b.ino(), "the same file");
    assert_eq!(snapshot(&r)["var/run"].kind, 'l');
}

#[test]
fn ops_file_add_chown_archive_mirror_test_dockerfile_add_chown_archive() {
    let c = tempfile::tempdir().unwrap();
    std::fs::write(c.path().join("t.tar"), foo_tar()).unwrap();
    let p = CopyPlan {
        chown: Some(Chown::Ids { uid: 100, gid: 200 }),
        chmod: Some("700".into()),
        ..add(c.path(), &["t.tar"], "/out/")
    };
    let (bytes, _, _) = layer(&p, None).unwrap();
    let h = entry_headers(&bytes);
    assert_eq!((h["out/foo"].1, h["out/foo"].2), (100, 200));
    assert_eq!((h["out/"].1, h["out/"].2), (100, 200));
    assert_eq!(
        h["out/foo"].0, 0o644,
        "--chmod does not touch archive contents"
    );
    assert_eq!(h["out/"].0, 0o755);
    let (_k, r) = run(&[p]);
    assert_eq!(read(&r, "out/foo"), "content0");
}

#[test]
fn ops_file_add_symlink_destination_mirror_test_symlink_destination() {
    // An archive's relative link climbing above `/` is kept as written and
    // a later COPY follows it inside the root.
    let c = tempfile::tempdir().unwrap();
    std::fs::write(
        c.path().join("t.tar"),
        raw_tar(&[T::Symlink("symlink", "../tmp/symlink-target")]),
    )
    .unwrap();
    file(c.path(), "foo", b"content0", 0o600);
    let copy = CopyPlan {
        is_add: false,
        ..add(c.path(), &["foo"], "/symlink/")
    };
    let (_k, r) = run(&[add(c.path(), &["t.tar"], "/"), copy]);
    assert_eq!(read(&r, "tmp/symlink-target/foo"), "content0");
}

fn http_routes() -> BTreeMap<String, Resp> {
    let mut routes = BTreeMap::new();
    let ok = |body: &[u8], lm: Option<&str>| Resp {
        body: body.to_vec(),
        last_modified: lm.map(str::to_string),
        status: 200,
    };
    routes.insert("/foo".to_string(), ok(b"content1", None));
    routes.insert(
        "/".to_string(),
        ok(b"content2", Some("Tue, 15 Nov 1994 08:12:31 GMT")),
    );
    routes.insert("/t.tar.gz".to_string(), ok(&gzip(&foo_tar()), None));
    routes
}

#[test]
fn ops_file_add_from_url_mirror_test_dockerfile_add_from_url_and_test_add_url_chmod() {
    let (url, seen) = serve(http_routes(), 64);
    let none = Path::new("/nonexistent-context");
    let (_k, r) = run(&[
        add(none, &[&format!("{url}/foo")], "/dest/"),
        add(none, &[&format!("{url}/")], "/dest/"),
        add(none, &[&format!("{url}/t.tar.gz")], "/"),
        CopyPlan {
            unpack: Some(true),
            ..add(none, &[&format!("{url}/t.tar.gz")], "/unpacked/")
        },
        add(none, &[&format!("{url}/t.tar.gz")], "/newname.tar.gz"),
        CopyPlan {
            chmod: Some("0413".into()),
            ..add(none, &[&format!("{url}/foo")], "/foo3")
        },
    ]);
    assert_eq!(read(&r, "dest/foo"), "content1");
    assert_eq!(read(&r, "dest/__unnamed__"), "content2");
    let snap = snapshot(&r);
    assert_eq!(
        snap["dest/__unnamed__"].mtime, 784_887_151,
        "mtime from Last-Modified"
    );
    assert_eq!(snap["dest/foo"].mtime, 0, "no Last-Modified: the epoch");
    assert_eq!(snap["dest/foo"].mode, 0o600, "downloads are 0600");
    assert_eq!(
        snap["t.tar.gz"].data,
        gzip(&foo_tar()),
        "a URL is not unpacked by default"
    );
    assert_eq!(
        read(&r, "unpacked/foo"),
        "content0",
        "--unpack=true unpacks a URL"
    );
    assert_eq!(snap["newname.tar.gz"].data, gzip(&foo_tar()));
    assert_eq!(snap["foo3"].mode, 0o413);
    assert!(seen.lock().unwrap().iter().any(|p| p == "/foo"));
}

#[test]
fn ops_file_add_checksum_mirror_test_add_checksum() {
    let (url, _) = serve(http_routes(), 16);
    let none = Path::new("/nonexistent-context");
    let good = hoist_engine::digest::Digest::of(b"content1").to_string();
    let empty = hoist_engine::digest::Digest::of(b"").to_string();
    let with = |sum: &str| CopyPlan {
        checksum: Some(sum.to_string()),
        ..add(none, &[&format!("{url}/foo")], "/tmp/foo")
    };
    let (_k, r) = run(&[with(&good)]);
    assert_eq!(read(&r, "tmp/foo"), "content1");
    let out = tempfile::tempdir().unwrap();
    let err = apply_to_dir(&with(&empty), out.path()).unwrap_err();
    assert!(matches!(err, FileOpError::ChecksumMismatch { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains(&good) && msg.contains(&empty),
        "names both digests: {msg}"
    );
    assert!(
        msg.starts_with(&format!("digest mismatch for {url}/foo")),
        "{msg}"
    );
    assert!(snapshot(out.path()).is_empty(), "nothing written");
    assert!(layer(&with(&empty), None).is_err());
    // A 404 names the status.
    let err = apply_to_dir(&add(none, &[&format!("{url}/missing")], "/"), out.path()).unwrap_err();
    assert!(
        err.to_string().contains("invalid response status 404"),
        "{err}"
    );
}

#[test]
fn ops_file_add_rules_for_urls_git_and_checksums() {
    let c = tempfile::tempdir().unwrap();
    file(c.path(), "f", b"x", 0o644);
    let out = tempfile::tempdir().unwrap();
    let copy_url = CopyPlan {
        is_add: false,
        ..add(c.path(), &["http://127.0.0.1:9/x"], "/")
    };
    assert!(matches!(
        apply_to_dir(&copy_url, out.path()),
        Err(FileOpError::UrlInCopy { .. })
    ));
    for git in [
        "https://github.com/moby/buildkit.git",
        "git@github.com:moby/buildkit.git",
        "git://host/repo",
    ] {
        let err = apply_to_dir(&add(c.path(), &[git], "/"), out.path()).unwrap_err();
        assert!(
            err.to_string().contains("is not supported yet"),
            "{git}: {err}"
        );
        let keep = CopyPlan {
            keep_git_dir: Some(true),
            ..add(c.path(), &[git], "/")
        };
        assert!(
            keep.validate()
                .unwrap_err()
                .to_string()
                .contains("--keep-git-dir")
        );
    }
    let sum = hoist_engine::digest::Digest::of(b"x").to_string();
    for (p, want) in [
        (
            CopyPlan {
                is_add: false,
                ..add(c.path(), &["f"], "/")
            },
            "checksum can't be specified for COPY",
        ),
        (
            add(c.path(), &["f"], "/"),
            "checksum requires HTTP(S) or Git sources",
        ),
        (
            add(c.path(), &["f", "f"], "/d/"),
            "checksum can't be specified for multiple sources",
        ),
    ] {
        let p = CopyPlan {
            checksum: Some(sum.clone()),
            ..p
        };
        let err = p.validate().unwrap_err();
        assert!(err.to_string().contains(want), "{err}");
    }
    assert!(snapshot(out.path()).is_empty());
}

#[test]
fn ops_file_source_kinds_mirror_is_http_source_and_parse_git_ref() {
    for (src, kind) in [
        ("http://h/x", SourceKind::Http),
        ("https://h/x.tar.gz?y#z", SourceKind::Http),
        ("HTTP://h/x", SourceKind::Local),
        ("https://github.com/moby/buildkit.git", SourceKind::Git),
        (
            "https://github.com/moby/buildkit.git#v0.1:sub",
            SourceKind::Git,
        ),
        ("git://h/repo", SourceKind::Git),
        ("ssh://git@h/repo", SourceKind::Git),
        ("git@github.com:moby/buildkit.git", SourceKind::Git),
        ("github.com/moby/buildkit", SourceKind::Local),
        ("ftp://h/x", SourceKind::Local),
        ("./user@host:path", SourceKind::Local),
        ("dir/file", SourceKind::Local),
        ("*.tar", SourceKind::Local),
    ] {
        assert_eq!(classify_source(src), kind, "{src}");
    }
}
