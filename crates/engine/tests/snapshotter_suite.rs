//! The snapshotter test suite, containerd-style: the same cases run
//! against every implementation of `Snapshotter` (the overlay and the
//! copying one), and for each case both must leave the same upper dir.
//!
//! A case is a lower stack (the fixture below: a base layer and a diff
//! layer over it, with a whiteout and an opaque dir), a step (a function
//! applied to the prepared root, no sandbox) and what the upper dir must
//! then hold. The overlay's root is mounted here, as the sandbox mounts it
//! (`hoist_sandbox::mount_overlay`): these tests need root, as CI runs
//! them, and fail (never skip) where the overlay cannot be mounted.
//!
//! An upper dir is compared as a listing: every entry's path, type, mode
//! (with setuid/setgid/sticky), owner, bytes, link target, device number,
//! xattrs, hard-link group, whiteout and opaque markers, and mtime for
//! non-directories (a step sets every time it makes to a fixed one, so
//! two runs agree; a directory's mtime is the clock's).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hoist_engine::ops::run::snapshotter::{
    CopySnapshotter, OverlaySnapshotter, Snapshotter, SnapshotterKind,
};
use rustix::fs::{AtFlags, CWD, FileType, Mode, Timespec, Timestamps, XattrFlags};

/// Every fixture time (and every time a step sets): whole seconds.
const T0: i64 = 1_700_000_000;
const T1: i64 = 1_700_000_600;

// ----- the fixture: a lower stack -----

fn put(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, text).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
}

fn set_time(p: &Path, secs: i64) {
    let t = Timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    let times = Timestamps {
        last_access: t,
        last_modification: t,
    };
    rustix::fs::utimensat(CWD, p, &times, AtFlags::SYMLINK_NOFOLLOW).unwrap();
}

/// Every entry under `root` (and `root`) at time `secs`, deepest first.
fn set_times(root: &Path, secs: i64) {
    for entry in fs::read_dir(root).unwrap() {
        let p = entry.unwrap().path();
        if fs::symlink_metadata(&p).unwrap().is_dir() {
            set_times(&p, secs);
        } else {
            set_time(&p, secs);
        }
    }
    set_time(root, secs);
}

fn whiteout(p: &Path) {
    rustix::fs::mknodat(CWD, p, FileType::CharacterDevice, Mode::empty(), 0).unwrap();
}

fn xattr(p: &Path, name: &str, value: &[u8]) {
    rustix::fs::lsetxattr(p, name, value, XattrFlags::empty()).unwrap();
}

fn fifo(p: &Path, mode: u32) {
    rustix::fs::mknodat(CWD, p, FileType::Fifo, Mode::from_raw_mode(mode), 0).unwrap();
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

/// A base layer and a diff layer over it (top first).
fn lower_stack(dir: &Path) -> Vec<PathBuf> {
    assert!(
        rustix::process::geteuid().is_root(),
        "the snapshotter suite needs root (overlay mounts, owners, device nodes); CI runs it as root"
    );
    let base = dir.join("base");
    for rel in [
        "f",
        "sd/same",
        "d/x",
        "d/y",
        "d/sub/z",
        "n/a/b/c/deep",
        "n/a/b/other",
        "n/a/keep",
        "keep",
        "h1",
        "x",
        "suid",
        "owned",
        "f2d",
        "d2f/inner/file",
        "gone",
        "op/hidden",
    ] {
        put(&base, rel, &format!("{rel}\n"));
    }
    fs::hard_link(base.join("h1"), base.join("h2")).unwrap();
    symlink("/etc/passwd", base.join("link")).unwrap();
    symlink("f", base.join("rel")).unwrap();
    symlink("d", base.join("dl")).unwrap();
    xattr(&base.join("x"), "user.k", b"v");
    fifo(&base.join("p"), 0o644);
    fs::set_permissions(base.join("suid"), fs::Permissions::from_mode(0o755)).unwrap();
    rustix::fs::chown(
        base.join("owned"),
        Some(rustix::fs::Uid::from_raw(1000)),
        Some(rustix::fs::Gid::from_raw(1000)),
    )
    .unwrap();
    set_times(&base, T0);

    // A diff layer as a step leaves it: `gone` deleted, `op` made again
    // (opaque), `d/y` changed, `t/new` added.
    let top = dir.join("top");
    fs::create_dir(&top).unwrap();
    whiteout(&top.join("gone"));
    put(&top, "op/shown", "op/shown\n");
    xattr(&top.join("op"), "trusted.overlay.opaque", b"y");
    put(&top, "d/y", "d/y again\n");
    put(&top, "t/new", "t/new\n");
    set_times(&top, T0);
    vec![top, base]
}

// ----- running a step -----

/// Unmounts the overlay root when dropped (a failed assertion too).
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Err(e) = rustix::mount::unmount(&self.0, rustix::mount::UnmountFlags::empty()) {
            eprintln!("unmount {}: {e}", self.0.display());
        }
    }
}

/// Prepare a root over `lower` with `s`, apply `step` to it, commit: the
/// upper dir.
fn run<S: Snapshotter>(s: &S, lower: &[PathBuf], step: fn(&Path), dir: &Path) -> PathBuf {
    let name = format!("{:?}", S::KIND);
    let upper = dir.join(format!("upper-{name}"));
    let scratch = dir.join(format!("scratch-{name}"));
    fs::create_dir(&upper).unwrap();
    fs::create_dir(&scratch).unwrap();
    let prepared = s.prepare(lower, &upper, &scratch).unwrap();
    let root = prepared.rootfs.merged.clone();
    assert_eq!(prepared.rootfs.copy, S::KIND == SnapshotterKind::Copy);
    let mounted = (!prepared.rootfs.copy).then(|| {
        hoist_sandbox::mount_overlay(&prepared.rootfs).unwrap_or_else(|e| {
            panic!("the overlay must mount here (root, as in CI); not skipping: {e}")
        });
        Mounted(root.clone())
    });
    // A step starts after a sandbox process has: past the filesystem
    // clock's tick that ended the copy (the copy knows a directory made
    // again by its birth time).
    std::thread::sleep(Duration::from_millis(30));
    step(&root);
    drop(mounted);
    s.commit(prepared).unwrap();
    assert!(
        !root.exists() || fs::read_dir(&root).unwrap().next().is_none(),
        "{name}: the root is left behind"
    );
    upper
}

// ----- reading an upper dir -----

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    kind: &'static str,
    mode: u32,
    owner: (u32, u32),
    data: Vec<u8>,
    target: Option<PathBuf>,
    rdev: u64,
    xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
    opaque: bool,
    /// Non-directories only.
    mtime: Option<(i64, i64)>,
    /// Every path of the upper dir naming the same file (2+ names).
    links: Vec<String>,
}

type Listing = BTreeMap<String, Entry>;

fn xattrs(p: &Path) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut names = vec![0u8; 1 << 16];
    let n = rustix::fs::llistxattr(p, &mut names[..]).unwrap();
    let mut out = BTreeMap::new();
    for name in names[..n].split(|&b| b == 0).filter(|n| !n.is_empty()) {
        let mut value = vec![0u8; 1 << 16];
        let k = rustix::fs::lgetxattr(p, name, &mut value[..]).unwrap();
        out.insert(name.to_vec(), value[..k].to_vec());
    }
    out
}

fn listing(upper: &Path) -> Listing {
    let mut out = Listing::new();
    let mut inodes: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    walk(upper, ".", &mut out, &mut inodes);
    for names in inodes.values().filter(|n| n.len() > 1) {
        for n in names {
            out.get_mut(n).unwrap().links = names.clone();
        }
    }
    out
}

fn walk(p: &Path, rel: &str, out: &mut Listing, inodes: &mut BTreeMap<u64, Vec<String>>) {
    let m = fs::symlink_metadata(p).unwrap();
    let ft = m.file_type();
    let mut all = xattrs(p);
    let opaque = ["trusted.overlay.opaque", "user.overlay.opaque"]
        .iter()
        .any(|n| all.get(n.as_bytes()).is_some_and(|v| v == b"y"));
    // overlayfs's own bookkeeping (origin, impure, …) is not content.
    all.retain(|k, _| {
        !(k.starts_with(b"trusted.overlay.") || k.starts_with(b"user.overlay."))
            && k != b"security.selinux"
    });
    let whiteout = ft.is_char_device() && m.rdev() == 0;
    let kind = match () {
        _ if whiteout => "whiteout",
        _ if ft.is_dir() => "dir",
        _ if ft.is_file() => "file",
        _ if ft.is_symlink() => "symlink",
        _ if ft.is_fifo() => "fifo",
        _ if ft.is_char_device() => "char",
        _ if ft.is_block_device() => "block",
        _ => "socket",
    };
    let entry = if whiteout {
        // A whiteout is its name only (the layer writer writes `.wh.NAME`).
        Entry {
            kind,
            mode: 0,
            owner: (0, 0),
            data: Vec::new(),
            target: None,
            rdev: 0,
            xattrs: BTreeMap::new(),
            opaque: false,
            mtime: None,
            links: Vec::new(),
        }
    } else {
        Entry {
            kind,
            mode: m.mode() & 0o7777,
            owner: (m.uid(), m.gid()),
            data: if ft.is_file() {
                fs::read(p).unwrap()
            } else {
                Vec::new()
            },
            target: ft.is_symlink().then(|| fs::read_link(p).unwrap()),
            rdev: m.rdev(),
            xattrs: all,
            opaque,
            mtime: (!ft.is_dir()).then(|| (m.mtime(), m.mtime_nsec())),
            links: Vec::new(),
        }
    };
    // overlayfs links its whiteouts to one shared inode: not hard links.
    if !ft.is_dir() && !whiteout && m.nlink() > 1 {
        inodes.entry(m.ino()).or_default().push(rel.to_string());
    }
    out.insert(rel.to_string(), entry);
    if ft.is_dir() {
        let mut names: Vec<_> = fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        for name in names {
            let child = if rel == "." {
                name.to_string_lossy().into_owned()
            } else {
                format!("{rel}/{}", name.to_string_lossy())
            };
            walk(&p.join(&name), &child, out, inodes);
        }
    }
}

fn paths(l: &Listing) -> Vec<&str> {
    l.keys().map(String::as_str).collect()
}

fn get<'a>(l: &'a Listing, path: &str) -> &'a Entry {
    l.get(path)
        .unwrap_or_else(|| panic!("{path} is not in the upper dir: {:#?}", paths(l)))
}

fn is_whiteout(l: &Listing, path: &str) -> bool {
    l.get(path).is_some_and(|e| e.kind == "whiteout")
}

// ----- the cases -----

/// A step and what its upper dir must hold.
struct Case {
    step: fn(&Path),
    expect: fn(&Listing),
}

/// Write a file the way a step would, with the fixed time.
fn write(root: &Path, rel: &str, text: &str, mode: u32) {
    let p = root.join(rel);
    fs::write(&p, text).unwrap();
    fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    set_time(&p, T1);
}

fn new_entries() -> Case {
    Case {
        step: |r| {
            write(r, "new", "new\n", 0o644);
            fs::create_dir_all(r.join("nd/deep")).unwrap();
            write(r, "nd/deep/f", "deep\n", 0o600);
        },
        expect: |l| {
            assert_eq!(paths(l), [".", "nd", "nd/deep", "nd/deep/f", "new"]);
            assert_eq!(get(l, "new").data, b"new\n");
            assert_eq!(get(l, "nd/deep/f").mode, 0o600);
            assert!(!get(l, "nd").opaque, "a new dir over nothing is not opaque");
        },
    }
}

fn modified_file() -> Case {
    Case {
        step: |r| write(r, "f", "changed\n", 0o644),
        expect: |l| {
            assert_eq!(paths(l), [".", "f"]);
            assert_eq!(get(l, "f").data, b"changed\n");
            assert_eq!(get(l, "f").mtime, Some((T1, 0)));
        },
    }
}

fn deleted_files() -> Case {
    Case {
        step: |r| {
            fs::remove_file(r.join("d/x")).unwrap();
            fs::remove_dir_all(r.join("d/sub")).unwrap();
            // One from the diff layer, one shown through it.
            fs::remove_file(r.join("t/new")).unwrap();
            fs::remove_file(r.join("keep")).unwrap();
        },
        expect: |l| {
            assert_eq!(paths(l), [".", "d", "d/sub", "d/x", "keep", "t", "t/new"]);
            for p in ["d/sub", "d/x", "keep", "t/new"] {
                assert!(is_whiteout(l, p), "{p}: {:?}", get(l, p));
            }
            assert!(!get(l, "d").opaque && !get(l, "t").opaque);
        },
    }
}

fn dir_replaced_by_file() -> Case {
    Case {
        step: |r| {
            fs::remove_dir_all(r.join("d2f")).unwrap();
            write(r, "d2f", "now a file\n", 0o644);
        },
        expect: |l| {
            assert_eq!(paths(l), [".", "d2f"]);
            assert_eq!(get(l, "d2f").kind, "file");
        },
    }
}

fn file_replaced_by_dir() -> Case {
    Case {
        step: |r| {
            fs::remove_file(r.join("f2d")).unwrap();
            fs::create_dir(r.join("f2d")).unwrap();
            write(r, "f2d/in", "in\n", 0o644);
        },
        expect: |l| {
            assert_eq!(paths(l), [".", "f2d", "f2d/in"]);
            assert!(get(l, "f2d").opaque, "a dir over a lower file is opaque");
        },
    }
}

/// `rm -rf d && mkdir d`: opaque, nothing of the old `d` in it.
fn dir_made_again() -> Case {
    Case {
        step: |r| {
            fs::remove_dir_all(r.join("d")).unwrap();
            fs::create_dir(r.join("d")).unwrap();
            write(r, "d/x", "again\n", 0o644);
        },
        expect: |l| {
            assert_eq!(paths(l), [".", "d", "d/x"]);
            assert!(get(l, "d").opaque);
            assert_eq!(get(l, "d/x").data, b"again\n");
        },
    }
}

fn nested_whiteouts() -> Case {
    Case {
        step: |r| {
            fs::remove_file(r.join("n/a/b/c/deep")).unwrap();
            fs::remove_file(r.join("n/a/b/other")).unwrap();
            // Under the diff layer's opaque dir.
            fs::remove_file(r.join("op/shown")).unwrap();
        },
        expect: |l| {
            assert_eq!(
                paths(l),
                [
                    ".",
                    "n",
                    "n/a",
                    "n/a/b",
                    "n/a/b/c",
                    "n/a/b/c/deep",
                    "n/a/b/other",
                    "op",
                    "op/shown"
                ]
            );
            for p in ["n/a/b/c/deep", "n/a/b/other", "op/shown"] {
                assert!(is_whiteout(l, p), "{p}");
            }
            for p in ["n", "n/a", "n/a/b", "n/a/b/c", "op"] {
                assert_eq!(get(l, p).kind, "dir", "{p}");
                assert!(!get(l, p).opaque, "{p}");
            }
        },
    }
}

fn hardlinks() -> Case {
    Case {
        step: |r| {
            write(r, "l1", "l\n", 0o644);
            fs::hard_link(r.join("l1"), r.join("l2")).unwrap();
            fs::hard_link(r.join("keep"), r.join("keep2")).unwrap();
        },
        expect: |l| {
            assert_eq!(paths(l), [".", "keep", "keep2", "l1", "l2"]);
            assert_eq!(get(l, "l2").links, ["l1", "l2"]);
            assert_eq!(get(l, "keep2").links, ["keep", "keep2"]);
            // The untouched lower pair h1/h2 stays below.
        },
    }
}

/// Symlinks are changed as links, never through them: the lower
/// `link -> /etc/passwd` is owned anew (the host's file untouched), a
/// file is written through `dl -> d` (the link stays below), and `rel`
/// points elsewhere.
fn symlinks() -> Case {
    Case {
        step: |r| {
            rustix::fs::chownat(
                CWD,
                r.join("link"),
                Some(rustix::fs::Uid::from_raw(7)),
                Some(rustix::fs::Gid::from_raw(7)),
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .unwrap();
            set_time(&r.join("link"), T0);
            fs::remove_file(r.join("rel")).unwrap();
            symlink("keep", r.join("rel")).unwrap();
            set_time(&r.join("rel"), T1);
            symlink("/", r.join("abs")).unwrap();
            set_time(&r.join("abs"), T1);
            // Through `dl -> d`, inside the root.
            write(r, "dl/via", "via\n", 0o644);
        },
        expect: |l| {
            assert_eq!(paths(l), [".", "abs", "d", "d/via", "link", "rel"]);
            assert_eq!(
                get(l, "link").target.as_deref(),
                Some(Path::new("/etc/passwd"))
            );
            assert_eq!(get(l, "link").owner, (7, 7));
            assert_eq!(get(l, "rel").target.as_deref(), Some(Path::new("keep")));
            assert_eq!(get(l, "abs").kind, "symlink");
        },
    }
}

fn xattrs_user() -> Case {
    Case {
        step: |r| {
            xattr(&r.join("x"), "user.k", b"v2");
            xattr(&r.join("f"), "user.new", b"1");
        },
        expect: |l| {
            assert_eq!(paths(l), [".", "f", "x"]);
            assert_eq!(get(l, "x").xattrs[b"user.k".as_slice()], b"v2");
            assert_eq!(get(l, "f").xattrs[b"user.new".as_slice()], b"1");
            assert_eq!(get(l, "f").data, b"f\n");
        },
    }
}

fn mode_owner_mtime() -> Case {
    Case {
        step: |r| {
            fs::set_permissions(r.join("f"), fs::Permissions::from_mode(0o600)).unwrap();
            rustix::fs::chown(
                r.join("owned"),
                Some(rustix::fs::Uid::from_raw(0)),
                Some(rustix::fs::Gid::from_raw(0)),
            )
            .unwrap();
            set_time(&r.join("keep"), T1);
        },
        expect: |l| {
            assert_eq!(paths(l), [".", "f", "keep", "owned"]);
            assert_eq!(get(l, "f").mode, 0o600);
            assert_eq!(get(l, "f").data, b"f\n", "the bytes come up too");
            assert_eq!(get(l, "owned").owner, (0, 0));
            assert_eq!(get(l, "keep").mtime, Some((T1, 0)));
        },
    }
}

fn fifos() -> Case {
    Case {
        step: |r| {
            fifo(&r.join("newp"), 0o640);
            set_time(&r.join("newp"), T1);
            fs::set_permissions(r.join("p"), fs::Permissions::from_mode(0o600)).unwrap();
        },
        expect: |l| {
            assert_eq!(paths(l), [".", "newp", "p"]);
            assert_eq!(get(l, "newp").kind, "fifo");
            assert_eq!(get(l, "newp").mode, 0o640);
            assert_eq!(get(l, "p").kind, "fifo");
            assert_eq!(get(l, "p").mode, 0o600);
        },
    }
}

fn setuid_bits() -> Case {
    Case {
        step: |r| {
            fs::set_permissions(r.join("suid"), fs::Permissions::from_mode(0o4755)).unwrap();
            write(r, "sgid", "g\n", 0o2755);
            rustix::fs::chown(
                r.join("sgid"),
                Some(rustix::fs::Uid::from_raw(1000)),
                Some(rustix::fs::Gid::from_raw(1000)),
            )
            .unwrap();
            // chown clears the bits: set them again, as `install -m` does.
            fs::set_permissions(r.join("sgid"), fs::Permissions::from_mode(0o6755)).unwrap();
        },
        expect: |l| {
            assert_eq!(paths(l), [".", "sgid", "suid"]);
            assert_eq!(get(l, "suid").mode, 0o4755);
            assert_eq!(get(l, "sgid").mode, 0o6755);
            assert_eq!(get(l, "sgid").owner, (1000, 1000));
        },
    }
}

/// The same bytes written back with the same time: no entry (overlayfs
/// copied it and its dir up; BuildKit's differ leaves such copy-ups out).
fn rewritten_unchanged() -> Case {
    Case {
        step: |r| {
            write(r, "sd/same", "sd/same\n", 0o644);
            set_time(&r.join("sd/same"), T0);
        },
        expect: |l| assert_eq!(paths(l), ["."]),
    }
}

// ----- the suite -----

/// Run `case` with `s` over a fresh fixture; its upper dir's listing
/// (after checking what the case expects of it).
fn check<S: Snapshotter>(s: &S, case: fn() -> Case) -> Listing {
    let dir = tempfile::tempdir().unwrap();
    let lower = lower_stack(dir.path());
    let case = case();
    let upper = run(s, &lower, case.step, dir.path());
    let l = listing(&upper);
    let root = get(&l, ".");
    let top = fs::metadata(&lower[0]).unwrap();
    assert_eq!(
        (root.mode, root.owner),
        (top.mode() & 0o7777, (top.uid(), top.gid())),
        "the root is the top lower's"
    );
    assert!(!root.opaque, "the root is never opaque");
    (case.expect)(&l);
    l
}

/// Both snapshotters, the same case: the same upper dir.
fn same(case: fn() -> Case) {
    let overlay = check(&OverlaySnapshotter, case);
    let copy = check(&CopySnapshotter, case);
    assert_eq!(
        overlay, copy,
        "overlay (left) and copy (right) upper dirs differ"
    );
}

macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        /// Each case against the overlay snapshotter.
        mod overlay {
            $(#[test] fn $case() { super::check(&super::OverlaySnapshotter, super::$case); })*
        }
        /// Each case against the copying snapshotter.
        mod copy {
            $(#[test] fn $case() { super::check(&super::CopySnapshotter, super::$case); })*
        }
        /// Each case against both: the same upper dir.
        mod same {
            $(#[test] fn $case() { super::same(super::$case); })*
        }
    };
}

suite!(
    new_entries,
    modified_file,
    deleted_files,
    dir_replaced_by_file,
    file_replaced_by_dir,
    dir_made_again,
    nested_whiteouts,
    hardlinks,
    symlinks,
    xattrs_user,
    mode_owner_mtime,
    fifos,
    setuid_bits,
    rewritten_unchanged,
);

/// The suite's own check: a listing sees every difference it must.
#[test]
fn a_listing_tells_whiteouts_opaque_dirs_and_modes_apart() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    fs::create_dir(&a).unwrap();
    whiteout(&a.join("w"));
    fs::create_dir(a.join("o")).unwrap();
    xattr(&a.join("o"), "trusted.overlay.opaque", b"y");
    put(&a, "m", "m\n");
    let l = listing(&a);
    assert!(is_whiteout(&l, "w"));
    assert!(get(&l, "o").opaque);
    fs::set_permissions(a.join("m"), fs::Permissions::from_mode(0o4644)).unwrap();
    assert_ne!(l, listing(&a));
}

/// The one known difference (docs/troubleshooting.md): a write to one
/// name of a hard-link pair from a lower layer. overlayfs (no `index=on`)
/// copies that name up alone, and the other keeps the old bytes; the copy
/// keeps the pair, so both names change and both go up. Pinned here so
/// that the docs stay true.
#[test]
fn known_difference_a_write_to_one_name_of_a_lower_hard_link_pair() {
    fn step(r: &Path) {
        write(r, "h1", "new\n", 0o644);
        assert_eq!(
            fs::read(r.join("h1")).unwrap(),
            b"new\n",
            "the written name shows the write"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let lower = lower_stack(dir.path());
    let overlay = listing(&run(&OverlaySnapshotter, &lower, step, dir.path()));
    assert_eq!(paths(&overlay), [".", "h1"]);
    assert!(get(&overlay, "h1").links.is_empty());
    let copy = listing(&run(&CopySnapshotter, &lower, step, dir.path()));
    assert_eq!(paths(&copy), [".", "h1", "h2"]);
    assert_eq!(get(&copy, "h2").data, b"new\n");
    assert_eq!(get(&copy, "h2").links, ["h1", "h2"]);
}
