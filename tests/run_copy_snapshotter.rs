//! The copying snapshotter (`RUN` where overlayfs cannot be mounted): the
//! same step run over an overlay and over a copy must leave upper dirs that
//! make the same layer (after `prune_copy_ups`, written in overlay mode):
//! same names, types, modes, owners, sizes, bytes, link targets, xattrs,
//! whiteouts and opaque markers. Mtimes of what the step made are not
//! compared (two runs, two clocks).
//!
//! Real sandboxes (the `hoist` binary), real overlay mounts: run as root,
//! as CI does. Needs Debian's busybox-static for the base image.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use hoist_engine::layer::{
    Compression, EntryMeta, LayerOptions, LayerWriter, TreeMode, UnpackOptions, unpack, write_tree,
};
use hoist_engine::ops::run::{
    RunRequest, SNAPSHOTTER_ENV, SnapshotterKind, Snapshotters, prune_copy_ups, run, run_with,
};

const HOIST: &str = env!("CARGO_BIN_EXE_hoist");

/// Every fixture file's mtime: whole seconds, so `touch -r` keeps it.
fn fixed_time() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

/// `/bin/busybox` with its applets, `/etc/passwd`, `/tmp`, and `/data`
/// with one of everything the steps below change.
fn base_image(root: &Path) {
    assert!(
        is_root(),
        "these tests need root (namespaces, overlay mounts); CI runs them as root"
    );
    let bin = root.join("bin");
    fs::create_dir_all(&bin).unwrap();
    fs::copy("/bin/busybox", bin.join("busybox"))
        .expect("/bin/busybox (Debian busybox-static) is needed");
    let list = std::process::Command::new("/bin/busybox")
        .arg("--list")
        .output()
        .unwrap();
    for applet in String::from_utf8(list.stdout).unwrap().lines() {
        if applet != "busybox" {
            symlink("busybox", bin.join(applet)).unwrap();
        }
    }
    fs::create_dir(root.join("etc")).unwrap();
    fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n",
    )
    .unwrap();
    fs::create_dir(root.join("tmp")).unwrap();
    fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777)).unwrap();

    let d = root.join("data");
    for dir in ["", "sub/b", "re", "d2f", "keepdir/inner"] {
        fs::create_dir_all(d.join(dir)).unwrap();
    }
    for (name, text) in [
        ("keep", "keep\n"),
        ("mod", "old\n"),
        ("chmod", "perm\n"),
        ("gone", "bye\n"),
        ("same", "abcd\n"),
        ("samesize", "abcd\n"),
        ("sub/a", "a\n"),
        ("sub/b/c", "c\n"),
        ("re/x", "x\n"),
        ("re/y", "y\n"),
        ("f2d", "file\n"),
        ("d2f/in", "in\n"),
        ("keepdir/inner/f", "f\n"),
        ("h1", "linked\n"),
        ("owned", "app's\n"),
    ] {
        fs::write(d.join(name), text).unwrap();
    }
    fs::hard_link(d.join("h1"), d.join("h2")).unwrap();
    std::os::unix::fs::chown(d.join("owned"), Some(1000), Some(1000)).unwrap();
    symlink("keep", d.join("link")).unwrap();
    // Never followed: neither when copying the tree nor by the diff.
    symlink("../../../../../..", d.join("out")).unwrap();
    symlink("/", d.join("abs")).unwrap();
    with_xattr(root, "data/xa", b"user.note", b"hello");
    // Directories last: writing in them moved their mtimes.
    for rel in [
        "keep",
        "mod",
        "chmod",
        "gone",
        "same",
        "samesize",
        "sub/a",
        "sub/b/c",
        "sub/b",
        "sub",
        "re/x",
        "re/y",
        "re",
        "f2d",
        "d2f/in",
        "d2f",
        "keepdir/inner/f",
        "keepdir/inner",
        "keepdir",
        "h1",
        "owned",
        "xa",
        "",
    ] {
        let f = fs::File::open(d.join(rel)).unwrap();
        let t = fs::FileTimes::new()
            .set_modified(fixed_time())
            .set_accessed(fixed_time());
        f.set_times(t).unwrap();
    }
}

/// The effective uid is 0 (read from /proc).
fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .is_some_and(|l| l.split_whitespace().nth(2) == Some("0"))
}

/// A file with an xattr, made by hoist's own unpacker from a one-file layer.
fn with_xattr(root: &Path, rel: &str, name: &[u8], value: &[u8]) {
    let opts = LayerOptions {
        compression: Compression::None,
        ..LayerOptions::default()
    };
    let mut bytes = Vec::new();
    let mut w = LayerWriter::new(&mut bytes, &opts).unwrap();
    let mut meta = EntryMeta::new(0o644);
    meta.xattrs.insert(name.to_vec(), value.to_vec());
    w.append_file(Path::new(rel), &meta, 3, &b"xa\n"[..])
        .unwrap();
    let blob = w.finish().unwrap();
    unpack(&bytes[..], root, &UnpackOptions::new(blob.digest)).unwrap();
}

/// One tar entry, as much of it as two runs must agree on.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    path: String,
    kind: u8,
    mode: u32,
    uid: u64,
    gid: u64,
    size: u64,
    link: Option<String>,
    device: (u32, u32),
    xattrs: BTreeMap<String, Vec<u8>>,
    data: Vec<u8>,
}

fn entries(tar_bytes: &[u8]) -> Vec<Entry> {
    let mut out = Vec::new();
    let mut archive = tar::Archive::new(tar_bytes);
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let mut xattrs = BTreeMap::new();
        if let Some(pax) = e.pax_extensions().unwrap() {
            for x in pax {
                let x = x.unwrap();
                if let Some(name) = x.key().unwrap().strip_prefix("SCHILY.xattr.") {
                    xattrs.insert(name.to_string(), x.value_bytes().to_vec());
                }
            }
        }
        let h = e.header().clone();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.push(Entry {
            path: String::from_utf8_lossy(&e.path_bytes()).into_owned(),
            kind: h.entry_type().as_byte(),
            mode: h.mode().unwrap(),
            uid: h.uid().unwrap(),
            gid: h.gid().unwrap(),
            size: h.size().unwrap(),
            link: e
                .link_name_bytes()
                .map(|l| String::from_utf8_lossy(&l).into_owned()),
            device: (
                h.device_major().ok().flatten().unwrap_or(0),
                h.device_minor().ok().flatten().unwrap_or(0),
            ),
            xattrs,
            data,
        });
    }
    out
}

/// A lower stack and the directory everything else goes in.
struct Fixture {
    dir: tempfile::TempDir,
    lower: Vec<PathBuf>,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::Builder::new()
            .prefix("hoist-copysnap-")
            .tempdir()
            .unwrap();
        let base = dir.path().join("base");
        base_image(&base);
        Fixture {
            dir,
            lower: vec![base],
        }
    }

    fn request(&self, upper: &Path, script: &str) -> RunRequest {
        RunRequest {
            sandbox_exe: PathBuf::from(HOIST),
            lower: self.lower.clone(),
            upper: upper.to_path_buf(),
            scratch_parent: self.dir.path().to_path_buf(),
            args: vec!["/bin/sh".into(), "-c".into(), script.into()],
            env: vec!["PATH=/bin".into()],
            cwd: "/".into(),
            user: String::new(),
            network: hoist_sandbox::Network::None,
            mounts: Vec::new(),
            limits: Default::default(),
            isolation: None,
            security: Default::default(),
            hostname: None,
            extra_hosts: Vec::new(),
            cancel: Default::default(),
            probe: Default::default(),
        }
    }

    /// Run `script` with `mode` into a new upper dir; the upper dir and the output.
    fn step(&self, mode: SnapshotterKind, name: &str, script: &str) -> (PathBuf, Vec<String>) {
        let upper = self.dir.path().join(name);
        fs::create_dir(&upper).unwrap();
        let mut lines = Vec::new();
        let out = run_with(&self.request(&upper, script), mode, &mut |l| {
            lines.push(l.to_string())
        })
        .unwrap();
        assert_eq!(out.code, 0, "{mode:?} step failed: {lines:?}");
        (upper, lines)
    }

    /// The layer an upper dir makes, as the build does.
    fn layer(&self, upper: &Path) -> Vec<Entry> {
        prune_copy_ups(upper, &self.lower).unwrap();
        let opts = LayerOptions {
            mode: TreeMode::OverlayUpper,
            compression: Compression::None,
            ..LayerOptions::default()
        };
        let mut bytes = Vec::new();
        write_tree(upper, &opts, &mut bytes).unwrap();
        entries(&bytes)
    }

    /// Run `script` both ways; the layer (the same) and the output (the same).
    fn both(&self, script: &str) -> (Vec<Entry>, Vec<String>) {
        let (over, out_o) = self.step(SnapshotterKind::Overlay, "upper-overlay", script);
        let (copy, out_c) = self.step(SnapshotterKind::Copy, "upper-copy", script);
        assert_eq!(out_o, out_c, "the step saw different trees");
        let (a, b) = (self.layer(&over), self.layer(&copy));
        assert_eq!(a, b, "overlay (left) and copy (right) layers differ");
        fs::remove_dir_all(&over).unwrap();
        fs::remove_dir_all(&copy).unwrap();
        (a, out_o)
    }
}

fn get<'a>(layer: &'a [Entry], path: &str) -> &'a Entry {
    layer
        .iter()
        .find(|e| e.path == path)
        .unwrap_or_else(|| panic!("{path} not in the layer: {layer:#?}"))
}

fn has(layer: &[Entry], path: &str) -> bool {
    layer.iter().any(|e| e.path == path)
}

const REGULAR: u8 = b'0';

#[test]
fn new_files_dirs_fifos_and_devices() {
    let f = Fixture::new();
    let (layer, _) = f.both(
        "echo new > /data/new && mkdir -p /data/nd/deep && echo deep > /data/nd/deep/f \
         && chmod 4755 /data/nd/deep/f && mkfifo /data/fifo && mknod /data/null c 1 3",
    );
    assert_eq!(get(&layer, "data/new").data, b"new\n");
    assert_eq!(get(&layer, "data/nd/deep/f").mode, 0o4755);
    assert_eq!(get(&layer, "data/fifo").kind, b'6');
    assert_eq!(get(&layer, "data/null").device, (1, 3));
    assert!(!has(&layer, "data/keep"), "unchanged files stay out");
}

#[test]
fn modified_files_and_rewrites_with_the_same_bytes() {
    let f = Fixture::new();
    let (layer, _) = f.both(
        "echo more >> /data/mod \
         && touch -r /data/same /dev/shm/t && printf 'abcd\\n' > /data/same && touch -r /dev/shm/t /data/same \
         && printf 'ABCD\\n' > /data/samesize && touch -r /dev/shm/t /data/samesize",
    );
    assert_eq!(get(&layer, "data/mod").data, b"old\nmore\n");
    // Same size and mtime: the bytes decide.
    assert_eq!(get(&layer, "data/samesize").data, b"ABCD\n");
    assert!(
        !has(&layer, "data/same"),
        "same bytes, same mtime: no change"
    );
}

#[test]
fn chmod_and_chown_only() {
    let f = Fixture::new();
    let (layer, _) =
        f.both("chmod 600 /data/chmod && chown 1000:1000 /data/keep && chmod 640 /data/xa");
    let e = get(&layer, "data/chmod");
    assert_eq!((e.mode, e.data.as_slice()), (0o600, &b"perm\n"[..]));
    assert_eq!(get(&layer, "data/keep").uid, 1000);
    // The lower file's xattr came through the copy.
    assert_eq!(get(&layer, "data/xa").xattrs["user.note"], b"hello");
}

#[test]
fn deleted_files_and_dirs_are_whiteouts() {
    let f = Fixture::new();
    let (layer, _) =
        f.both("rm /data/gone /data/h2 /data/link && rm -rf /data/sub /data/keepdir/inner");
    for w in [
        "data/.wh.gone",
        "data/.wh.h2",
        "data/.wh.link",
        "data/.wh.sub",
        "data/keepdir/.wh.inner",
    ] {
        assert_eq!(get(&layer, w).kind, REGULAR, "{w}");
    }
    assert!(!has(&layer, "data/sub/a"));
}

#[test]
fn a_dir_made_again_is_opaque() {
    let f = Fixture::new();
    let (layer, _) = f.both("rm -rf /data/re && mkdir /data/re && touch /data/re/x");
    assert!(has(&layer, "data/re/.wh..wh..opq"), "{layer:#?}");
    assert!(has(&layer, "data/re/x"));
    assert!(
        !has(&layer, "data/re/.wh.y"),
        "the opaque dir hides y already"
    );
}

#[test]
fn symlinks_stay_symlinks() {
    let f = Fixture::new();
    let (layer, out) = f.both(
        "ln -s /etc/passwd /data/newlink && ln -sfn other /data/link \
         && readlink /data/out && readlink /data/abs && echo into > /data/abs/tmp/via-abs",
    );
    assert_eq!(
        get(&layer, "data/newlink").link.as_deref(),
        Some("/etc/passwd")
    );
    assert_eq!(get(&layer, "data/link").link.as_deref(), Some("other"));
    assert_eq!(out, ["../../../../../..", "/"]);
    // A link out of the tree led back into the root, never to the host.
    assert_eq!(get(&layer, "tmp/via-abs").data, b"into\n");
}

#[test]
fn hardlinks_stay_hardlinks() {
    let f = Fixture::new();
    let (layer, _) =
        f.both("echo l > /data/l1 && ln /data/l1 /data/l2 && ln /data/keep /data/keep2");
    assert_eq!(get(&layer, "data/l2").link.as_deref(), Some("data/l1"));
    assert_eq!(get(&layer, "data/keep2").link.as_deref(), Some("data/keep"));
    assert!(
        !has(&layer, "data/h1"),
        "an untouched lower hardlink pair stays out"
    );
}

#[test]
fn a_file_replaced_by_a_dir_and_back() {
    let f = Fixture::new();
    let (layer, _) = f.both(
        "rm /data/f2d && mkdir /data/f2d && echo in > /data/f2d/in \
         && rm -rf /data/d2f && echo file > /data/d2f",
    );
    assert_eq!(get(&layer, "data/f2d/").kind, b'5');
    assert!(has(&layer, "data/f2d/.wh..wh..opq"));
    assert_eq!(get(&layer, "data/d2f").data, b"file\n");
}

/// A second step over the first one's upper dir (whiteouts, an opaque
/// dir, a changed file): the copy shows what the overlay shows.
#[test]
fn over_a_diff_dir_the_copy_sees_what_the_overlay_sees() {
    let mut f = Fixture::new();
    let (first, _) = f.step(
        SnapshotterKind::Overlay,
        "first",
        "rm /data/gone && rm -rf /data/re && mkdir /data/re && echo one > /data/re/one \
         && echo v1 > /data/mod && rm -rf /data/sub && echo s > /data/sub",
    );
    prune_copy_ups(&first, &f.lower).unwrap();
    f.lower.insert(0, first);
    let (layer, out) = f.both(
        "find /data ! -type d | sort | xargs stat -c '%n %f %u %g %s %Y %N' \
         && find /data -type d | sort | xargs stat -c '%n %f %u %g %Y' \
         && cat /data/re/one /data/mod /data/sub \
         && rm /data/re/one && echo v2 > /data/mod && echo back > /data/gone",
    );
    assert!(out.iter().any(|l| l.starts_with("/data/re/one ")));
    assert!(!out.iter().any(|l| l.starts_with("/data/re/y ")), "{out:?}");
    assert!(!out.iter().any(|l| l.starts_with("/data/sub/")), "{out:?}");
    assert!(out.contains(&"v1".to_string()));
    assert_eq!(get(&layer, "data/mod").data, b"v2\n");
    assert_eq!(get(&layer, "data/gone").data, b"back\n");
    assert!(has(&layer, "data/re/.wh.one"));
}

/// What the step's root is: `overlay`, or the host's filesystem (a copy).
fn root_fs_type(out: &[String]) -> &str {
    out.last().map(String::as_str).unwrap_or("")
}

const ROOT_FS: &str = r#"awk '$5=="/" { for (i = 7; i <= NF; i++) if ($i == "-") { print $(i+1); exit } }' /proc/self/mountinfo"#;

#[test]
fn each_snapshotter_is_what_it_says() {
    let f = Fixture::new();
    let (_, out) = f.step(SnapshotterKind::Overlay, "o", ROOT_FS);
    assert_eq!(root_fs_type(&out), "overlay");
    let (_, out) = f.step(SnapshotterKind::Copy, "c", ROOT_FS);
    assert!(
        !root_fs_type(&out).is_empty() && root_fs_type(&out) != "overlay",
        "{out:?}"
    );
}

/// Upper dir and scratch dir on two filesystems: overlayfs refuses (upper
/// and work dirs must share one). `run` says so once, copies instead, and
/// keeps copying for the rest of the build (its `Snapshotters`).
#[test]
fn without_an_overlay_run_falls_back_to_copying_once() {
    let f = Fixture::new();
    let shm = tempfile::Builder::new()
        .prefix("hoist-copysnap-")
        .tempdir_in("/dev/shm")
        .expect("/dev/shm (a tmpfs) is needed");
    // The build's choice, kept across its steps.
    let snapshotters = Snapshotters::new();
    let mut seen = Vec::new();
    for (i, script) in [
        format!("echo one > /data/new && {ROOT_FS}"),
        format!("rm /data/gone && {ROOT_FS}"),
    ]
    .iter()
    .enumerate()
    {
        let upper = shm.path().join(format!("upper-{i}"));
        fs::create_dir(&upper).unwrap();
        let mut lines = Vec::new();
        let out = run(&f.request(&upper, script), &snapshotters, &mut |l| {
            lines.push(l.to_string())
        })
        .unwrap();
        assert_eq!(out.code, 0, "{lines:?}");
        assert_ne!(root_fs_type(&lines), "overlay");
        seen.extend(lines.into_iter().filter(|l| l.contains("overlayfs")));
        seen.push(format!("layer {i}"));
        let layer = f.layer(&upper);
        assert!(
            has(&layer, if i == 0 { "data/new" } else { "data/.wh.gone" }),
            "{layer:#?}"
        );
    }
    assert_eq!(seen.len(), 3, "one warning, then two layers: {seen:#?}");
    assert!(
        seen[0].starts_with("hoist: overlayfs is not available here (")
            && seen[0].ends_with("); using the copying snapshotter (slower)"),
        "{seen:?}"
    );
    assert_eq!(seen[1..], ["layer 0", "layer 1"]);
}

/// `HOIST_SNAPSHOTTER=copy` makes `run` copy without trying the overlay
/// (checked in a child process: the variable is process-wide).
#[test]
fn the_environment_variable_forces_copying() {
    if std::env::var_os(SNAPSHOTTER_ENV).is_some() {
        let f = Fixture::new();
        let upper = f.dir.path().join("upper");
        fs::create_dir(&upper).unwrap();
        let mut lines = Vec::new();
        let out = run(
            &f.request(&upper, ROOT_FS),
            &Snapshotters::new(),
            &mut |l| lines.push(l.to_string()),
        )
        .unwrap();
        assert_eq!(out.code, 0, "{lines:?}");
        assert_eq!(
            lines.len(),
            1,
            "no warning, only the step's line: {lines:?}"
        );
        assert_ne!(root_fs_type(&lines), "overlay");
        return;
    }
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "the_environment_variable_forces_copying",
            "--exact",
            "--nocapture",
        ])
        .env(SNAPSHOTTER_ENV, "copy")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&child.stdout);
    assert!(
        child.status.success() && text.contains("1 passed"),
        "{text}\n{}",
        String::from_utf8_lossy(&child.stderr)
    );
}

/// The overlay root is `nodev`: a node a step makes (mknod is one of
/// Docker's default capabilities) cannot reach a host device. The copy's
/// root must be too.
#[test]
fn the_copy_root_is_nodev_like_the_overlay() {
    let f = Fixture::new();
    for mode in [SnapshotterKind::Overlay, SnapshotterKind::Copy] {
        let (_, out) = f.step(
            mode,
            &format!("{mode:?}"),
            "mknod /n c 1 3 && if echo hi > /n; then echo opened; else echo refused; fi",
        );
        assert_eq!(
            out.last().map(String::as_str),
            Some("refused"),
            "{mode:?}: {out:?}"
        );
    }
}
