//! Shared helpers for the `ops_file_*` tests: trees on disk, snapshots of
//! them, the two output modes run side by side, and a tiny HTTP server.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hoist_engine::layer::{Compression, LayerOptions, LayerWriter, UnpackOptions, unpack};
use hoist_engine::ops::file::{CopyPlan, CopyReport, FileOpError, apply_to_dir, write_layer};

/// The fixed "now" of the tests' ops.
pub const NOW: u64 = 1_700_000_000;

pub fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW)
}

pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Writes `data` at `root/rel` with `mode`, making parents.
pub fn file(root: &Path, rel: &str, data: &[u8], mode: u32) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, data).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
}

pub fn dir(root: &Path, rel: &str, mode: u32) {
    let p = root.join(rel);
    std::fs::create_dir_all(&p).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
}

pub fn symlink(root: &Path, rel: &str, target: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(target, &p).unwrap();
}

pub fn read(root: &Path, rel: &str) -> String {
    match std::fs::read(root.join(rel)) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) => panic!("reading {rel}: {e}"),
    }
}

pub fn exists(root: &Path, rel: &str) -> bool {
    std::fs::symlink_metadata(root.join(rel)).is_ok()
}

/// One entry of a tree snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snap {
    pub kind: char,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: i64,
    /// File contents or link target.
    pub data: Vec<u8>,
}

/// Every entry below `root` (not `root` itself), by relative path.
pub fn snapshot(root: &Path) -> BTreeMap<String, Snap> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Snap>) {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for p in names {
        let md = std::fs::symlink_metadata(&p).unwrap();
        let ft = md.file_type();
        let (kind, data) = if ft.is_dir() {
            ('d', Vec::new())
        } else if ft.is_symlink() {
            (
                'l',
                std::fs::read_link(&p)
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes(),
            )
        } else if ft.is_file() {
            ('f', std::fs::read(&p).unwrap())
        } else {
            ('s', Vec::new())
        };
        let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        out.insert(
            rel,
            Snap {
                kind,
                mode: md.mode() & 0o7777,
                uid: md.uid(),
                gid: md.gid(),
                mtime: md.mtime(),
                data,
            },
        );
        if ft.is_dir() {
            walk(root, &p, out);
        }
    }
}

/// `cp -a src dst` (a copy of a base root, ids and links kept).
pub fn copy_tree(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap();
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", src.display()))
        .arg(dst)
        .status()
        .unwrap();
    assert!(status.success());
}

/// The layer of `plan` over `base` (uncompressed), and its report.
pub fn layer(
    plan: &CopyPlan,
    base: Option<&Path>,
) -> Result<(Vec<u8>, hoist_engine::layer::LayerBlob, CopyReport), FileOpError> {
    let opts = LayerOptions {
        compression: Compression::None,
        ..Default::default()
    };
    let mut w = LayerWriter::new(Vec::new(), &opts).unwrap();
    let report = write_layer(plan, base, &mut w)?;
    let (blob, bytes) = w.finish_into_inner().unwrap();
    Ok((bytes, blob, report))
}

/// The names of a layer's entries, in order, as written (`dir/` for dirs).
pub fn entry_names(bytes: &[u8]) -> Vec<String> {
    let mut ar = tar::Archive::new(bytes);
    ar.entries()
        .unwrap()
        .map(|e| String::from_utf8_lossy(&e.unwrap().path_bytes()).into_owned())
        .collect()
}

/// Headers of a layer's entries by name.
pub fn entry_headers(bytes: &[u8]) -> BTreeMap<String, (u32, u64, u64, u64, char)> {
    let mut ar = tar::Archive::new(bytes);
    let mut out = BTreeMap::new();
    for e in ar.entries().unwrap() {
        let e = e.unwrap();
        let h = e.header();
        out.insert(
            String::from_utf8_lossy(&e.path_bytes()).into_owned(),
            (
                h.mode().unwrap(),
                h.uid().unwrap(),
                h.gid().unwrap(),
                h.mtime().unwrap(),
                h.entry_type().as_byte() as char,
            ),
        );
    }
    out
}

pub fn unpack_into(bytes: &[u8], blob: &hoist_engine::layer::LayerBlob, root: &Path) {
    unpack(bytes, root, &UnpackOptions::new(blob.digest.clone())).unwrap();
}

/// Runs `plan` both ways over `base` and checks the results are the same
/// tree; returns the applied root (kept alive by the returned temp dirs).
pub fn both(plan: &CopyPlan, base: &Path) -> (tempfile::TempDir, PathBuf) {
    let work = tempfile::tempdir().unwrap();
    let applied = work.path().join("applied");
    let layered = work.path().join("layered");
    copy_tree(base, &applied);
    copy_tree(base, &layered);
    if let Err(e) = apply_to_dir(plan, &applied) {
        panic!("apply_to_dir: {e}");
    }
    let (bytes, blob, _) = match layer(plan, Some(base)) {
        Ok(x) => x,
        Err(e) => panic!("write_layer: {e}"),
    };
    unpack_into(&bytes, &blob, &layered);
    let a = snapshot(&applied);
    let l = snapshot(&layered);
    assert_same(&a, &l);
    (work, applied)
}

/// Compares two snapshots entry by entry (owners only as root).
pub fn assert_same(a: &BTreeMap<String, Snap>, b: &BTreeMap<String, Snap>) {
    let ka: Vec<&String> = a.keys().collect();
    let kb: Vec<&String> = b.keys().collect();
    assert_eq!(ka, kb, "the same paths");
    for (k, x) in a {
        let y = &b[k];
        assert_eq!(
            (x.kind, &x.data),
            (y.kind, &y.data),
            "{k}: kind and contents"
        );
        if x.kind != 'l' {
            assert_eq!(x.mode, y.mode, "{k}: mode {:o} vs {:o}", x.mode, y.mode);
        }
        if is_root() {
            assert_eq!((x.uid, x.gid), (y.uid, y.gid), "{k}: owner");
        }
        if x.kind != 'l' {
            assert_eq!(x.mtime, y.mtime, "{k}: mtime");
        }
    }
}

/// A response of the test server.
#[derive(Clone)]
pub struct Resp {
    pub body: Vec<u8>,
    pub last_modified: Option<String>,
    pub status: u16,
}

/// A one-thread HTTP/1.1 server on 127.0.0.1 serving fixed paths; it
/// stops after `max` requests. Returns the base URL and the paths asked.
pub fn serve(routes: BTreeMap<String, Resp>, max: usize) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(max) {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            if reader.read_line(&mut line).is_err() {
                continue;
            }
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).is_err() || h == "\r\n" || h.is_empty() {
                    break;
                }
            }
            let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
            log.lock().unwrap().push(path.clone());
            let resp = routes.get(&path).cloned().unwrap_or(Resp {
                body: b"not found".to_vec(),
                last_modified: None,
                status: 404,
            });
            let mut head = format!(
                "HTTP/1.1 {} X\r\nContent-Length: {}\r\nConnection: close\r\n",
                resp.status,
                resp.body.len()
            );
            if let Some(lm) = &resp.last_modified {
                head.push_str(&format!("Last-Modified: {lm}\r\n"));
            }
            head.push_str("\r\n");
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&resp.body);
            let _ = stream.flush();
            let mut rest = Vec::new();
            let _ = reader.read_to_end(&mut rest);
        }
    });
    (format!("http://{addr}"), seen)
}

/// One entry of a hand-made tar: name bytes as given (`..` and all).
pub enum T<'a> {
    Dir(&'a str, u32),
    File(&'a str, &'a [u8], u32),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
}

/// An uncompressed tar of `entries`, names written raw into the headers.
pub fn raw_tar(entries: &[T<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_ustar();
        let (name, kind, data, link, mode): (&str, tar::EntryType, &[u8], &str, u32) = match e {
            T::Dir(n, m) => (n, tar::EntryType::Directory, b"", "", *m),
            T::File(n, d, m) => (n, tar::EntryType::Regular, d, "", *m),
            T::Symlink(n, t) => (n, tar::EntryType::Symlink, b"", t, 0o777),
            T::Hardlink(n, t) => (n, tar::EntryType::Link, b"", t, 0o644),
        };
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_600_000_000);
        h.set_size(data.len() as u64);
        let old = h.as_old_mut();
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}
