//! `Context::from_tar` (`hoist build -`): a context tar unpacked into a
//! scratch directory with files, directories, symlinks kept as links and
//! hardlinks; crafted tars that try to write outside are refused and
//! leave nothing outside.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use hoist_engine::context::{Context, ContextError, EntryKind};
use tar::{EntryType, Header};

const MTIME: u64 = 1_600_000_000;

fn header(kind: EntryType, mode: u32, size: u64) -> Header {
    let mut h = Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(MTIME);
    h.set_uid(1000);
    h.set_gid(1000);
    h
}

/// A well-formed context tar.
fn good_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = header(EntryType::Directory, 0o750, 0);
    b.append_data(&mut h, "app/", &[][..]).unwrap();
    let mut h = header(EntryType::Regular, 0o640, 5);
    b.append_data(&mut h, "app/a.txt", &b"hello"[..]).unwrap();
    let mut h = header(EntryType::Symlink, 0o777, 0);
    b.append_link(&mut h, "app/out", "/etc/passwd").unwrap();
    let mut h = header(EntryType::Link, 0o640, 0);
    b.append_link(&mut h, "app/b.txt", "app/a.txt").unwrap();
    for (name, body) in [
        (".dockerignore", "*.log\n"),
        ("x.log", "log"),
        ("sub/Dockerfile", "FROM scratch\n"),
        ("sub/Dockerfile.dockerignore", "app\n"),
    ] {
        let mut h = header(EntryType::Regular, 0o644, body.len() as u64);
        b.append_data(&mut h, name, body.as_bytes()).unwrap();
    }
    b.into_inner().unwrap()
}

fn check_good(scratch: &Path, ctx: &Context) {
    let root = ctx.root();
    assert_eq!(fs::read(root.join("app/a.txt")).unwrap(), b"hello");
    let a = fs::metadata(root.join("app/a.txt")).unwrap();
    assert_eq!(a.permissions().mode() & 0o7777, 0o640);
    assert_eq!(a.mtime(), MTIME as i64);
    let dir = fs::metadata(root.join("app")).unwrap();
    assert_eq!(
        (dir.permissions().mode() & 0o7777, dir.mtime()),
        (0o750, MTIME as i64)
    );
    assert_eq!(
        fs::read_link(root.join("app/out")).unwrap(),
        PathBuf::from("/etc/passwd")
    );
    let b = fs::metadata(root.join("app/b.txt")).unwrap();
    assert_eq!(b.ino(), a.ino(), "hardlink kept");
    assert!(root.starts_with(fs::canonicalize(scratch).unwrap()));
    let sel = ctx.select(&[".".to_string()], &[], true).unwrap();
    let paths: Vec<_> = sel.entries().map(|e| e.ctx_path.clone()).collect();
    assert!(
        !paths.contains(&"x.log".to_string()),
        ".dockerignore from the tar applies"
    );
    let out = sel.entries().find(|e| e.ctx_path == "app/out").unwrap();
    assert_eq!(out.kind, EntryKind::Symlink(PathBuf::from("/etc/passwd")));
}

#[test]
fn context_tar_unpacks_plain_gzip_and_zstd() {
    let tar = good_tar();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    let zst = zstd::encode_all(&tar[..], 1).unwrap();
    for stream in [tar, gz, zst] {
        let tmp = tempfile::tempdir().unwrap();
        let scratch = tmp.path().join("ctx");
        let ctx = Context::from_tar(&stream[..], &scratch, None).unwrap();
        check_good(&scratch, &ctx);
    }
}

#[test]
fn context_tar_dockerfile_ignore_inside_the_tar() {
    let tmp = tempfile::tempdir().unwrap();
    let ctx = Context::from_tar(
        &good_tar()[..],
        &tmp.path().join("ctx"),
        Some(Path::new("sub/Dockerfile")),
    )
    .unwrap();
    assert!(ctx.is_excluded("app/a.txt"));
    assert!(!ctx.is_excluded("x.log"));
}

/// A raw ustar entry with any name (the `tar` crate refuses `..`).
fn raw(out: &mut Vec<u8>, name: &str, kind: EntryType, link: &str, data: &[u8]) {
    let mut h = header(kind, 0o644, data.len() as u64);
    let old = h.as_old_mut();
    old.name = [0; 100];
    old.name[..name.len()].copy_from_slice(name.as_bytes());
    old.linkname = [0; 100];
    old.linkname[..link.len()].copy_from_slice(link.as_bytes());
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
}

fn finish(mut out: Vec<u8>) -> Vec<u8> {
    out.resize(out.len() + 1024, 0);
    out
}

#[test]
fn context_tar_refuses_escapes_and_writes_nothing_outside() {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tmp.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("secret"), "s").unwrap();
    let out = outside.to_str().unwrap();
    type Case = Vec<(&'static str, EntryType, String, &'static [u8])>;
    let file = |n: &'static str| (n, EntryType::Regular, String::new(), &b"pwned"[..]);
    let cases: Vec<(&str, Case)> = vec![
        ("dotdot", vec![file("../pwned")]),
        ("nested dotdot", vec![file("a/../../pwned")]),
        ("absolute", vec![file("/tmp/pwned-by-hoist-test")]),
        (
            "through an absolute symlink",
            vec![
                ("l", EntryType::Symlink, out.to_string(), b""),
                file("l/pwned"),
            ],
        ),
        (
            "through a relative symlink",
            vec![
                ("l", EntryType::Symlink, "../outside".to_string(), b""),
                file("l/pwned"),
            ],
        ),
        (
            "hardlink to an absolute path",
            vec![("h", EntryType::Link, "/etc/passwd".to_string(), b"")],
        ),
        (
            "hardlink with dotdot",
            vec![("h", EntryType::Link, "../outside/secret".to_string(), b"")],
        ),
        (
            "hardlink through a symlink",
            vec![
                ("l", EntryType::Symlink, out.to_string(), b""),
                ("h", EntryType::Link, "l/secret".to_string(), b""),
            ],
        ),
        ("device", vec![("dev", EntryType::Char, String::new(), b"")]),
    ];
    for (i, (what, entries)) in cases.into_iter().enumerate() {
        let mut bytes = Vec::new();
        for (name, kind, link, data) in &entries {
            raw(&mut bytes, name, *kind, link, data);
        }
        let scratch = tmp.path().join(format!("scratch{i}/ctx"));
        let err = Context::from_tar(&finish(bytes)[..], &scratch, None).unwrap_err();
        assert!(matches!(err, ContextError::Tar { .. }), "{what}: {err}");
        assert!(!scratch.join("h").exists(), "{what}");
        assert!(!outside.join("pwned").exists(), "{what}");
        assert!(
            !tmp.path().join(format!("scratch{i}/pwned")).exists(),
            "{what}"
        );
        assert!(!Path::new("/tmp/pwned-by-hoist-test").exists(), "{what}");
    }
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 1);
    assert_eq!(fs::read(outside.join("secret")).unwrap(), b"s");

    // The scratch directory must start empty.
    let busy = tmp.path().join("busy");
    fs::create_dir(&busy).unwrap();
    fs::write(busy.join("x"), "x").unwrap();
    assert!(Context::from_tar(&good_tar()[..], &busy, None).is_err());
}
