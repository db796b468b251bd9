//! Layer round trips: a tree with every kind of entry is written (gzip,
//! zstd, none), checked against digests recomputed here and against GNU
//! tar, unpacked into a fresh directory and compared entry by entry; GNU
//! tar's own archives unpack the same way; writes are deterministic.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

use hoist_engine::digest::Digest;
use hoist_engine::layer::{
    Compression, LayerOptions, MediaTypes, Resolver, UnpackOptions, unpack, write_tree,
};
use rustix::fs::{AtFlags, CWD, FileType, Mode, Timespec, Timestamps, XattrFlags};

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn p(root: &Path, rel: &[u8]) -> PathBuf {
    root.join(OsStr::from_bytes(rel))
}

fn set_mtime(path: &Path, secs: i64) {
    let t = Timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    rustix::fs::utimensat(
        CWD,
        path,
        &Timestamps {
            last_access: t,
            last_modification: t,
        },
        AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
}

fn chmod(path: &Path, mode: u32) {
    rustix::fs::chmod(path, Mode::from_raw_mode(mode)).unwrap();
}

fn file(root: &Path, rel: &[u8], data: &[u8], mode: u32) {
    let path = p(root, rel);
    fs::write(&path, data).unwrap();
    chmod(&path, mode);
}

/// A capability set (VFS_CAP_REVISION_2, effective, CAP_NET_BIND_SERVICE).
const CAP: [u8; 20] = [1, 0, 0, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];

const LONG_A: &str =
    "a-directory-name-that-is-rather-long-so-that-paths-grow-past-the-ustar-limits-quickly-aaaa";
const LONG_B: &str =
    "b-directory-name-that-is-rather-long-so-that-paths-grow-past-the-ustar-limits-quickly-bbbb";

/// Every kind of entry a layer can hold.
fn build_tree(root: &Path) {
    fs::create_dir_all(root.join("d/sub")).unwrap();
    fs::create_dir(root.join("empty")).unwrap();
    fs::create_dir(root.join("sticky")).unwrap();
    chmod(&root.join("sticky"), 0o1777);
    fs::create_dir(root.join("ro")).unwrap();
    file(root, b"ro/inside", b"in a read-only dir", 0o444);
    file(root, b"d/file.txt", b"hello layer\n", 0o644);
    file(root, b"d/empty-file", b"", 0o600);
    let big: Vec<u8> = (0..1024 * 1024 + 777)
        .map(|i: u32| (i % 251) as u8)
        .collect();
    file(root, b"big.bin", &big, 0o644);
    file(root, b"setuid", b"#!/bin/true\n", 0o644);
    file(root, b"setgid", b"g", 0o644);
    file(root, b"all-bits", b"x", 0o644);
    file(root, b"no-perms", b"secret", 0o000);
    file(root, b"odd", b"odd", 0o401);
    // Ownership before modes and capabilities: chown clears both.
    std::os::unix::fs::lchown(root.join("setuid"), Some(0), Some(0)).unwrap();
    std::os::unix::fs::lchown(root.join("d/file.txt"), Some(1000), Some(1000)).unwrap();
    std::os::unix::fs::lchown(root.join("setgid"), Some(3_000_000), Some(3_000_001)).unwrap();
    chmod(&root.join("setuid"), 0o4755);
    chmod(&root.join("setgid"), 0o2711);
    chmod(&root.join("all-bits"), 0o7777);
    rustix::fs::setxattr(
        root.join("setuid"),
        "security.capability",
        &CAP,
        XattrFlags::empty(),
    )
    .unwrap();
    rustix::fs::setxattr(
        root.join("d/file.txt"),
        "user.comment",
        b"a note",
        XattrFlags::empty(),
    )
    .unwrap();
    rustix::fs::setxattr(root.join("d"), "user.empty", b"", XattrFlags::empty()).unwrap();
    rustix::fs::setxattr(
        root.join("d"),
        "user.binary",
        &[0, 1, 2, 255, b'\n', b'='],
        XattrFlags::empty(),
    )
    .unwrap();
    // Never part of a layer: overlayfs's own xattrs.
    rustix::fs::setxattr(
        root.join("empty"),
        "user.overlay.origin",
        b"x",
        XattrFlags::empty(),
    )
    .unwrap();
    // Hard links: three names for one inode, across directories.
    fs::hard_link(root.join("d/file.txt"), root.join("hard1")).unwrap();
    fs::hard_link(root.join("d/file.txt"), root.join("d/sub/hard2")).unwrap();
    symlink("d/file.txt", root.join("link")).unwrap();
    symlink("/etc/passwd", root.join("abs-link")).unwrap();
    symlink("nowhere/at/all", root.join("dangling")).unwrap();
    symlink("../".repeat(40) + "target", root.join("long-target")).unwrap();
    rustix::fs::mknodat(
        CWD,
        root.join("fifo"),
        FileType::Fifo,
        Mode::from_raw_mode(0o640),
        0,
    )
    .unwrap();
    if is_root() {
        let dev = rustix::fs::makedev(1, 3);
        rustix::fs::mknodat(
            CWD,
            root.join("null"),
            FileType::CharacterDevice,
            Mode::from_raw_mode(0o666),
            dev,
        )
        .unwrap();
        let dev = rustix::fs::makedev(7, 0);
        rustix::fs::mknodat(
            CWD,
            root.join("loop0"),
            FileType::BlockDevice,
            Mode::from_raw_mode(0o660),
            dev,
        )
        .unwrap();
        chmod(&root.join("null"), 0o666);
        chmod(&root.join("loop0"), 0o660);
        // `trusted.*` may sit on symlinks and FIFOs (`user.*` may not).
        for name in ["link", "fifo"] {
            rustix::fs::lsetxattr(
                root.join(name),
                "trusted.hoist",
                b"on a special file",
                XattrFlags::empty(),
            )
            .unwrap();
        }
    }
    // Non-UTF-8 names, short and (as a path) long.
    file(root, b"caf\xe9", b"latin-1", 0o644);
    let long_dir = format!("{LONG_A}/{LONG_B}/{LONG_A}");
    fs::create_dir_all(root.join(&long_dir)).unwrap();
    file(
        root,
        format!("{long_dir}/file-past-255-bytes").as_bytes(),
        b"deep",
        0o644,
    );
    file(
        root,
        &[LONG_A.as_bytes(), b"/n\xffn-utf8-in-a-long-path"].concat(),
        b"binary name",
        0o644,
    );
    file(
        root,
        format!("{LONG_A}/{}", "f".repeat(150)).as_bytes(),
        b"150-byte name",
        0o644,
    );
    // Distinct whole-second mtimes, directories last (filling them moves theirs).
    let mut all = Vec::new();
    collect(root, &mut all);
    all.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    for (i, path) in all.iter().enumerate() {
        set_mtime(path, 1_500_000_000 + i as i64 * 7);
    }
    chmod(&root.join("ro"), 0o555);
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let md = fs::symlink_metadata(&path).unwrap();
        if md.is_dir() {
            collect(&path, out);
        }
        out.push(path);
    }
}

#[derive(Debug, PartialEq)]
struct Node {
    kind: &'static str,
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: i64,
    rdev: u64,
    content: Option<Digest>,
    link: Option<Vec<u8>>,
    xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
}

struct Snapshot {
    nodes: BTreeMap<Vec<u8>, Node>,
    hardlinks: Vec<Vec<Vec<u8>>>,
}

fn snapshot(root: &Path, xattrs: bool) -> Snapshot {
    let mut paths = Vec::new();
    collect(root, &mut paths);
    let mut nodes = BTreeMap::new();
    let mut inodes: BTreeMap<u64, Vec<Vec<u8>>> = BTreeMap::new();
    for path in paths {
        let rel = path
            .strip_prefix(root)
            .unwrap()
            .as_os_str()
            .as_bytes()
            .to_vec();
        let md = fs::symlink_metadata(&path).unwrap();
        let ft = md.file_type();
        use std::os::unix::fs::FileTypeExt;
        let kind = match () {
            _ if ft.is_dir() => "dir",
            _ if ft.is_file() => "file",
            _ if ft.is_symlink() => "symlink",
            _ if ft.is_fifo() => "fifo",
            _ if ft.is_char_device() => "char",
            _ if ft.is_block_device() => "block",
            _ => "other",
        };
        if !ft.is_dir() {
            inodes.entry(md.ino()).or_default().push(rel.clone());
        }
        let mut x = BTreeMap::new();
        if xattrs {
            let mut names = vec![0u8; 65536];
            let n = rustix::fs::llistxattr(&path, &mut names[..]).unwrap();
            for name in names[..n].split(|&b| b == 0).filter(|n| !n.is_empty()) {
                let mut value = vec![0u8; 65536];
                let len = rustix::fs::lgetxattr(&path, name, &mut value[..]).unwrap();
                x.insert(name.to_vec(), value[..len].to_vec());
            }
        }
        let node = Node {
            kind,
            mode: md.mode() & 0o7777,
            uid: md.uid(),
            gid: md.gid(),
            mtime: md.mtime(),
            rdev: md.rdev(),
            content: ft.is_file().then(|| Digest::of(&fs::read(&path).unwrap())),
            link: ft.is_symlink().then(|| {
                fs::read_link(&path)
                    .unwrap()
                    .as_os_str()
                    .as_bytes()
                    .to_vec()
            }),
            xattrs: x,
        };
        nodes.insert(rel, node);
    }
    let mut hardlinks: Vec<Vec<Vec<u8>>> = inodes
        .into_values()
        .filter(|v| v.len() > 1)
        .map(|mut v| {
            v.sort();
            v
        })
        .collect();
    hardlinks.sort();
    Snapshot { nodes, hardlinks }
}

/// The source tree as a layer should reproduce it: overlay xattrs dropped.
fn expected(source: &Path, xattrs: bool) -> Snapshot {
    let mut snap = snapshot(source, xattrs);
    for node in snap.nodes.values_mut() {
        node.xattrs
            .retain(|k, _| !k.starts_with(b"user.overlay.") && !k.starts_with(b"trusted.overlay."));
    }
    snap
}

fn assert_same(want: &Snapshot, got: &Snapshot) {
    let want_keys: Vec<_> = want
        .nodes
        .keys()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect();
    let got_keys: Vec<_> = got
        .nodes
        .keys()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect();
    assert_eq!(want_keys, got_keys, "entry names differ");
    for (path, node) in &want.nodes {
        assert_eq!(
            Some(node),
            got.nodes.get(path),
            "entry {:?} differs",
            String::from_utf8_lossy(path)
        );
    }
    assert_eq!(want.hardlinks, got.hardlinks, "hardlink groups differ");
}

fn decompress(blob: &[u8], compression: Compression) -> Vec<u8> {
    let mut out = Vec::new();
    match compression {
        Compression::Gzip => {
            flate2::read::GzDecoder::new(blob)
                .read_to_end(&mut out)
                .unwrap();
        }
        Compression::Zstd => out = zstd::decode_all(blob).unwrap(),
        Compression::None => out = blob.to_vec(),
    }
    out
}

#[test]
fn layer_round_trip_every_entry_kind_for_each_compression() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("source");
    fs::create_dir(&source).unwrap();
    build_tree(&source);
    let want = expected(&source, true);
    assert!(
        want.nodes.len() >= 30,
        "tree too small: {}",
        want.nodes.len()
    );
    assert_eq!(want.hardlinks.len(), 1);
    assert_eq!(want.hardlinks[0].len(), 3);
    for (i, compression) in [Compression::Gzip, Compression::Zstd, Compression::None]
        .into_iter()
        .enumerate()
    {
        let opts = LayerOptions {
            compression,
            ..LayerOptions::default()
        };
        let mut blob = Vec::new();
        let layer = write_tree(&source, &opts, &mut blob).unwrap();
        assert_eq!(
            layer.digest,
            Digest::of(&blob),
            "{compression:?}: digest of the blob"
        );
        assert_eq!(layer.size, blob.len() as u64);
        let tar = decompress(&blob, compression);
        assert_eq!(
            layer.diff_id,
            Digest::of(&tar),
            "{compression:?}: diff_id is the tar's sha256"
        );
        let suffix = ["+gzip", "+zstd", ""][i];
        assert_eq!(
            layer.media_type,
            format!("application/vnd.oci.image.layer.v1.tar{suffix}")
        );
        for resolver in [Resolver::Openat2, Resolver::Walk] {
            let target = tmp.path().join(format!("unpacked-{i}-{resolver:?}"));
            fs::create_dir(&target).unwrap();
            let mut uopts = UnpackOptions::new(layer.digest.clone());
            uopts.size = Some(layer.size);
            uopts.diff_id = Some(layer.diff_id.clone());
            uopts.resolver = resolver;
            let report = unpack(&blob[..], &target, &uopts).unwrap();
            assert_eq!(report.compression, compression);
            assert_eq!(report.diff_id, layer.diff_id);
            assert_eq!(report.entries, want.nodes.len() as u64);
            if is_root() {
                assert_eq!(report.warnings, vec![], "{compression:?}");
            }
            assert_same(&want, &snapshot(&target, true));
        }
    }
}

#[test]
fn layer_docker_media_types_are_selectable() {
    let tmp = tempfile::tempdir().unwrap();
    file(tmp.path(), b"f", b"x", 0o644);
    for (compression, want) in [
        (
            Compression::Gzip,
            "application/vnd.docker.image.rootfs.diff.tar.gzip",
        ),
        (
            Compression::Zstd,
            "application/vnd.docker.image.rootfs.diff.tar.zstd",
        ),
        (
            Compression::None,
            "application/vnd.docker.image.rootfs.diff.tar",
        ),
    ] {
        let opts = LayerOptions {
            compression,
            media_types: MediaTypes::Docker,
            ..LayerOptions::default()
        };
        assert_eq!(
            write_tree(tmp.path(), &opts, std::io::sink())
                .unwrap()
                .media_type,
            want
        );
    }
}

#[test]
fn layer_writes_are_deterministic_under_source_date_epoch() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("source");
    fs::create_dir(&source).unwrap();
    build_tree(&source);
    for compression in [Compression::Gzip, Compression::Zstd, Compression::None] {
        let opts = LayerOptions {
            compression,
            source_date_epoch: Some(1_000_000_000),
            ..LayerOptions::default()
        };
        let first = write_tree(&source, &opts, std::io::sink()).unwrap();
        let second = write_tree(&source, &opts, std::io::sink()).unwrap();
        assert_eq!(first, second, "{compression:?}: two writes of one tree");
        // `touch` everything: the clamp hides the new mtimes.
        let mut all = Vec::new();
        collect(&source, &mut all);
        for path in &all {
            rustix::fs::utimensat(
                CWD,
                path,
                &Timestamps {
                    last_access: Timespec {
                        tv_sec: 0,
                        tv_nsec: rustix::fs::UTIME_NOW,
                    },
                    last_modification: Timespec {
                        tv_sec: 0,
                        tv_nsec: rustix::fs::UTIME_NOW,
                    },
                },
                AtFlags::SYMLINK_NOFOLLOW,
            )
            .unwrap();
        }
        let touched = write_tree(&source, &opts, std::io::sink()).unwrap();
        assert_eq!(first, touched, "{compression:?}: after touch");
        // Without the clamp the touch shows, so the comparison above can fail.
        let unclamped = LayerOptions {
            compression,
            ..LayerOptions::default()
        };
        let now = write_tree(&source, &unclamped, std::io::sink()).unwrap();
        assert_ne!(first.diff_id, now.diff_id);
    }
    // A content change changes the digest.
    let opts = LayerOptions {
        source_date_epoch: Some(1_000_000_000),
        ..LayerOptions::default()
    };
    let before = write_tree(&source, &opts, std::io::sink()).unwrap();
    fs::write(source.join("d/empty-file"), b"!").unwrap();
    let after = write_tree(&source, &opts, std::io::sink()).unwrap();
    assert_ne!(before.digest, after.digest);
}

/// GNU tar's `escape` quoting of a name.
fn escaped(name: &[u8]) -> String {
    let mut s = String::new();
    for &b in name {
        match b {
            b'\\' => s.push_str("\\\\"),
            0x21..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\{b:03o}")),
        }
    }
    s
}

#[test]
fn layer_gnu_tar_lists_and_extracts_what_we_write() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("source");
    fs::create_dir(&source).unwrap();
    build_tree(&source);
    let want = expected(&source, true);
    let opts = LayerOptions {
        compression: Compression::Gzip,
        ..LayerOptions::default()
    };
    let blob_path = tmp.path().join("layer.tar.gz");
    let layer = write_tree(&source, &opts, fs::File::create(&blob_path).unwrap()).unwrap();
    assert_eq!(layer.digest, Digest::of(&fs::read(&blob_path).unwrap()));
    let out = Command::new("tar")
        .args(["--quoting-style=escape", "-tvzf"])
        .arg(&blob_path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tar -tvf: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "tar warned: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), want.nodes.len(), "{listing}");
    let mut by_name = BTreeMap::new();
    for line in &lines {
        let fields: Vec<&str> = line.splitn(6, ' ').filter(|f| !f.is_empty()).collect();
        let rest = line
            .split_whitespace()
            .skip(5)
            .collect::<Vec<_>>()
            .join(" ");
        let name = rest
            .split(" -> ")
            .next()
            .unwrap()
            .split(" link to ")
            .next()
            .unwrap()
            .trim_end_matches('/');
        by_name.insert(
            name.to_string(),
            (fields[0].chars().next().unwrap(), line.to_string()),
        );
    }
    let hard = &want.hardlinks[0];
    for (path, node) in &want.nodes {
        let key = escaped(path);
        let (kind, line) = by_name
            .get(&key)
            .unwrap_or_else(|| panic!("{key} not listed in:\n{listing}"));
        let want_kind = match node.kind {
            "dir" => 'd',
            "symlink" => 'l',
            "fifo" => 'p',
            "char" => 'c',
            "block" => 'b',
            _ if hard[1..].contains(path) => 'h',
            _ => '-',
        };
        assert_eq!(*kind, want_kind, "{line}");
        assert!(
            line.contains(&format!(" {}/{} ", node.uid, node.gid)),
            "numeric owner: {line}"
        );
        if *kind == 'h' {
            assert!(
                line.ends_with(&format!(" link to {}", escaped(&hard[0]))),
                "{line}"
            );
        }
    }
    // GNU tar extracts the same tree (PAX xattrs, long names, hardlinks).
    let extracted = tmp.path().join("extracted");
    fs::create_dir(&extracted).unwrap();
    let status = Command::new("tar")
        .args(["--numeric-owner", "--xattrs", "--xattrs-include=*", "-xpzf"])
        .arg(&blob_path)
        .arg("-C")
        .arg(&extracted)
        .status()
        .unwrap();
    assert!(status.success());
    assert_same(&want, &snapshot(&extracted, true));
}

#[test]
fn layer_unpacks_gnu_tar_archives_in_pax_and_gnu_formats() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("source");
    fs::create_dir(&source).unwrap();
    build_tree(&source);
    for (format, xattrs) in [("pax", true), ("gnu", false)] {
        let blob_path = tmp.path().join(format!("gnu-{format}.tar"));
        let mut cmd = Command::new("tar");
        cmd.arg(format!("--format={format}")).arg("--numeric-owner");
        if xattrs {
            cmd.args(["--xattrs", "--xattrs-include=*"]);
        }
        let status = cmd
            .arg("-cf")
            .arg(&blob_path)
            .arg("-C")
            .arg(&source)
            .arg(".")
            .status()
            .unwrap();
        assert!(status.success());
        let blob = fs::read(&blob_path).unwrap();
        let target = tmp.path().join(format!("from-{format}"));
        fs::create_dir(&target).unwrap();
        let report = unpack(&blob[..], &target, &UnpackOptions::new(Digest::of(&blob))).unwrap();
        assert_eq!(report.diff_id, Digest::of(&blob));
        let mut want = expected(&source, xattrs);
        let got = snapshot(&target, xattrs);
        // GNU tar stores symlinks' own mtimes only in pax format.
        if !xattrs {
            for (k, n) in want.nodes.iter_mut() {
                if n.kind == "symlink" {
                    n.mtime = got.nodes.get(k).map_or(0, |g| g.mtime);
                }
            }
        }
        assert_same(&want, &got);
    }
}
