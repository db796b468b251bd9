//! What the tests look at on the host side: processes (by a marker in
//! their command line, by pid namespace, by parent), mounts in the host's
//! mount namespace, and directory trees before and after a step.

use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::DEADLINE;

/// A name no other process on the machine carries.
pub fn marker(what: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "hoist-sbx-{what}-{}-{}-{nanos}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Poll `cond` every 10 ms up to `limit`; whether it became true.
pub fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

/// Wait until the file `path` exists (the step says it got somewhere).
#[track_caller]
pub fn wait_for_file(path: &Path) {
    assert!(
        eventually(DEADLINE, || path.exists()),
        "{} never appeared",
        path.display()
    );
}

/// Host pids whose command line contains `marker`, with that command line.
pub fn pids_with_marker(marker: &str) -> Vec<(u32, String)> {
    let me = std::process::id();
    host_pids()
        .into_iter()
        .filter(|&pid| pid != me)
        .filter_map(|pid| {
            let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let line = String::from_utf8_lossy(&raw).replace('\0', " ");
            line.contains(marker).then_some((pid, line))
        })
        .collect()
}

/// Host pids whose pid namespace is `ns` (a `pid:[inode]` link text).
pub fn pids_in_namespace(ns: &str) -> Vec<u32> {
    host_pids()
        .into_iter()
        .filter(|pid| pid_namespace(*pid).as_deref() == Some(ns))
        .collect()
}

/// The `pid:[inode]` link of a process's pid namespace.
pub fn pid_namespace(pid: u32) -> Option<String> {
    fs::read_link(format!("/proc/{pid}/ns/pid"))
        .ok()
        .map(|p| p.display().to_string())
}

/// Host pids of the children of `parent`.
pub fn children_of(parent: u32) -> Vec<u32> {
    host_pids()
        .into_iter()
        .filter(|pid| {
            let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // "pid (comm) state ppid ...": comm may hold spaces or ')'.
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                == Some(parent)
        })
        .collect()
}

fn host_pids() -> Vec<u32> {
    fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// Mount points of this (the host's) mount namespace at or under `dir`.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let dir = dir.display().to_string();
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .filter(|m| m == &dir || m.starts_with(&format!("{dir}/")))
        .collect()
}

/// One entry of a directory tree, as compared before and after a step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub mtime: (i64, i64),
    /// A regular file's bytes, a symlink's target.
    pub content: Vec<u8>,
}

/// Every entry under `root` (not following symlinks), by relative path.
pub fn tree(root: &Path) -> std::collections::BTreeMap<String, Entry> {
    use std::os::unix::fs::MetadataExt;
    let mut out = std::collections::BTreeMap::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let path = e.unwrap().path();
            let m = fs::symlink_metadata(&path).unwrap();
            let content = if m.is_file() {
                fs::read(&path).unwrap()
            } else if m.is_symlink() {
                fs::read_link(&path)
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes()
            } else {
                Vec::new()
            };
            if m.is_dir() {
                todo.push(path.clone());
            }
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            out.insert(
                rel,
                Entry {
                    mode: m.mode(),
                    uid: m.uid(),
                    gid: m.gid(),
                    rdev: m.rdev(),
                    mtime: (m.mtime(), m.mtime_nsec()),
                    content,
                },
            );
        }
    }
    out
}

/// The relative paths under `root`, sorted.
pub fn paths(root: &Path) -> Vec<String> {
    tree(root).into_keys().collect()
}

/// Digits no other process's command line carries: `sleep 1000.<tag>`
/// (busybox sleeps fractions) marks the processes a step starts.
pub fn numeric_tag() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{:05}{:03}{:09}",
        std::process::id() % 100_000,
        N.fetch_add(1, Ordering::Relaxed) % 1000,
        nanos
    )
}

/// Host pid of the sandbox's pid 1 (the only child of the sandbox process).
#[track_caller]
pub fn sandbox_pid1(sandbox: u32) -> u32 {
    let mut kids = Vec::new();
    assert!(
        eventually(DEADLINE, || {
            kids = children_of(sandbox);
            kids.len() == 1
        }),
        "sandbox {sandbox} has children {kids:?}"
    );
    kids[0]
}
