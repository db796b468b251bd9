//! Shared fixtures for the sandbox's integration tests: a tiny busybox
//! image as the overlay's lower dir, a [`RunSpec`] builder, and a runner
//! that starts the real `hoist-sandbox-probe` binary with a deadline.
//!
//! The sandbox needs root (namespaces, overlay, pivot_root); CI runs these
//! tests as root. Without root every test fails loudly instead of skipping.
#![allow(dead_code)] // each test binary uses a different part

use std::fs;
use std::io::Read;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hoist_sandbox::{MountKind, MountSpec, Network, Report, Rootfs, RunSpec};

/// The sandbox entry point built with this crate.
pub const PROBE: &str = env!("CARGO_BIN_EXE_hoist-sandbox-probe");
/// How long any one sandbox may take before the test kills it and fails.
pub const DEADLINE: Duration = Duration::from_secs(20);
/// Docker's default capability set (moby `oci/caps/defaults.go`).
pub const DOCKER_DEFAULT_CAPS: u64 = 0xa80425fb;

/// Fail (never skip) when not root.
pub fn require_root() {
    assert!(
        rustix::process::geteuid().is_root(),
        "hoist-sandbox's integration tests need root (namespaces, overlay, \
         pivot_root); CI runs them as root: run them with sudo"
    );
}

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

/// One sandbox's directories, all inside one temp dir: `lower` (a busybox
/// image), `upper`, `work`, `merged`, a `host` dir for bind mounts, and
/// the report file.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub lower: PathBuf,
    pub upper: PathBuf,
    pub work: PathBuf,
    pub merged: PathBuf,
    pub host: PathBuf,
    pub report: PathBuf,
}

/// How a sandbox ended.
#[derive(Debug)]
pub struct Outcome {
    /// Exit code of the sandbox process; `-signal` if a signal killed it.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub report: Report,
}

impl Fixture {
    pub fn new() -> Fixture {
        require_root();
        let dir = tempfile::Builder::new()
            .prefix("hoist-sbx-")
            .tempdir()
            .unwrap();
        let p = |n: &str| dir.path().join(n);
        let f = Fixture {
            lower: p("lower"),
            upper: p("upper"),
            work: p("work"),
            merged: p("merged"),
            host: p("host"),
            report: p("report.json"),
            dir,
        };
        for d in [&f.upper, &f.work, &f.merged, &f.host] {
            fs::create_dir(d).unwrap();
        }
        busybox_image(&f.lower);
        f
    }

    /// A spec running `args` as root with `PATH=/bin`, no network, no mounts.
    pub fn spec(&self, args: &[&str]) -> RunSpec {
        RunSpec {
            rootfs: Rootfs {
                lower: vec![self.lower.clone()],
                upper: self.upper.clone(),
                work: self.work.clone(),
                merged: self.merged.clone(),
            },
            args: args.iter().map(|s| s.to_string()).collect(),
            env: vec!["PATH=/bin".into()],
            cwd: "/".into(),
            user: String::new(),
            hostname: String::new(),
            network: Network::None,
            mounts: Vec::new(),
            report: self.report.clone(),
        }
    }

    /// A spec running `sh -c script`.
    pub fn sh(&self, script: &str) -> RunSpec {
        self.spec(&["sh", "-c", script])
    }

    /// Write `spec` where the sandbox will read it; its path.
    pub fn write_spec(&self, spec: &RunSpec) -> PathBuf {
        let path = self.dir.path().join("spec.json");
        fs::write(&path, serde_json::to_vec(spec).unwrap()).unwrap();
        path
    }

    /// Start the sandbox, its stdout and stderr piped.
    pub fn spawn(&self, spec: &RunSpec) -> Child {
        let path = self.write_spec(spec);
        hoist_sandbox::command(Path::new(PROBE), &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// Run to completion (failing the test after [`DEADLINE`]).
    pub fn run(&self, spec: &RunSpec) -> Outcome {
        let child = self.spawn(spec);
        self.finish(child)
    }

    /// Wait for a spawned sandbox and collect what it printed and reported.
    pub fn finish(&self, mut child: Child) -> Outcome {
        let out = reader(child.stdout.take());
        let err = reader(child.stderr.take());
        let status = wait_deadline(&mut child, DEADLINE);
        let code = status
            .code()
            .or_else(|| status.signal().map(|s| -s))
            .unwrap();
        let text = |rx: mpsc::Receiver<String>| rx.recv_timeout(DEADLINE).unwrap();
        Outcome {
            code,
            stdout: text(out),
            stderr: text(err),
            report: self.report(),
        }
    }

    /// The report the sandbox wrote (default if it wrote none).
    pub fn report(&self) -> Report {
        match fs::read(&self.report) {
            Ok(b) if !b.is_empty() => serde_json::from_slice(&b).unwrap(),
            _ => Report::default(),
        }
    }
}

/// A bind mount of a host path.
pub fn bind(source: &Path, target: &str, read_only: bool) -> MountSpec {
    MountSpec {
        target: target.into(),
        kind: MountKind::Bind {
            source: source.to_path_buf(),
            read_only,
        },
    }
}

/// A tmpfs mount.
pub fn tmpfs(target: &str) -> MountSpec {
    MountSpec {
        target: target.into(),
        kind: MountKind::Tmpfs {
            size: None,
            mode: None,
        },
    }
}

/// Assert a step ran and exited 0, showing its output if not.
#[track_caller]
pub fn assert_ok(o: &Outcome) {
    assert_eq!(o.code, 0, "step failed: {o:#?}");
    assert_eq!(o.report.error, None, "{o:#?}");
}

/// `/bin/busybox` with a symlink per applet, `/etc/passwd`, `/etc/group`,
/// `/etc/motd`, `/tmp` and an empty `/mnt`; no `/proc`, `/dev` or `/sys`.
pub fn busybox_image(root: &Path) {
    let bin = root.join("bin");
    fs::create_dir_all(&bin).unwrap();
    fs::copy("/bin/busybox", bin.join("busybox"))
        .expect("/bin/busybox (Debian busybox-static) is needed");
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    assert!(list.status.success());
    for applet in String::from_utf8(list.stdout).unwrap().lines() {
        if applet != "busybox" {
            symlink("busybox", bin.join(applet)).unwrap();
        }
    }
    let etc = root.join("etc");
    fs::create_dir(&etc).unwrap();
    fs::write(
        etc.join("passwd"),
        "root:x:0:0:root:/root:/bin/sh\n\
         app:x:1000:1000:app:/home/app:/bin/sh\n\
         other:x:1001:1001:other:/home/other:/bin/sh\n\
         nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
    )
    .unwrap();
    fs::write(
        etc.join("group"),
        "root:x:0:\nwheel:x:10:app,other\nstaff:x:50:app\napp:x:1000:\n\
         other:x:1001:\nnogroup:x:65534:\n",
    )
    .unwrap();
    fs::write(etc.join("motd"), "from the lower layer\n").unwrap();
    let tmp = root.join("tmp");
    fs::create_dir(&tmp).unwrap();
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o1777)).unwrap();
    fs::create_dir(root.join("mnt")).unwrap();
}

fn reader(pipe: Option<impl Read + Send + 'static>) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut s = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut s);
        }
        let _ = tx.send(String::from_utf8_lossy(&s).into_owned());
    });
    rx
}

/// Wait for `child`; kill it and fail the test after `limit`.
pub fn wait_deadline(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("sandbox {} still running after {limit:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
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
