//! Shared fixtures for the sandbox's integration tests: a tiny busybox
//! image as the overlay's lower dir, a [`RunSpec`] builder, and a runner
//! that starts the real `hoist-sandbox-probe` binary with a deadline.
//!
//! The sandbox needs root (namespaces, overlay, pivot_root); CI runs these
//! tests as root. Without root every test fails loudly instead of skipping.
#![allow(dead_code)] // each test binary uses a different part

mod host;
#[allow(unused_imports)] // not every test binary looks at the host
pub use host::*;

use std::fs;
use std::io::Read;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hoist_sandbox::{MountKind, MountSpec, Network, Report, Rootfs, RunSpec};

/// The sandbox entry point built with this crate.
pub const PROBE: &str = env!("CARGO_BIN_EXE_hoist-sandbox-probe");
/// How long any one sandbox may take before the test kills it and fails.
pub const DEADLINE: Duration = Duration::from_secs(20);
/// Docker's default capability set (moby `oci/caps/defaults.go`).
pub const DOCKER_DEFAULT_CAPS: u64 = 0xa80425fb;

/// `syscalls.c` (next to this file) built with `gcc -static` into `dir`:
/// the binary's path. It tries what Docker's seccomp profile refuses and
/// what ordinary programs do, one line each.
pub fn syscalls_binary(dir: &Path) -> PathBuf {
    let out = dir.join("syscalls");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/syscalls.c");
    let st = Command::new("gcc")
        .args(["-static", "-O1", "-o"])
        .arg(&out)
        .arg(&src)
        .arg("-lpthread")
        .status()
        .expect("gcc (with the static libc of libc6-dev) is needed");
    assert!(st.success(), "gcc -static {} failed", src.display());
    out
}

/// Fail (never skip) when not root.
pub fn require_root() {
    assert!(
        rustix::process::geteuid().is_root(),
        "hoist-sandbox's integration tests need root (namespaces, overlay, \
         pivot_root); CI runs them as root: run them with sudo"
    );
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
                copy: false,
            },
            args: args.iter().map(|s| s.to_string()).collect(),
            env: vec!["PATH=/bin".into()],
            cwd: "/".into(),
            user: String::new(),
            hostname: String::new(),
            network: Network::None,
            stack: None,
            mounts: Vec::new(),
            report: self.report.clone(),
            limits: Default::default(),
            isolation: Default::default(),
            security: Default::default(),
            seccomp: None,
        }
    }

    /// A spec running `sh -c script`.
    pub fn sh(&self, script: &str) -> RunSpec {
        self.spec(&["sh", "-c", script])
    }

    /// Write `spec` where the sandbox will read it; its path. A plan with
    /// a seccomp filter gets Docker's profile compiled for it, as the
    /// engine gives every step the probe's (unless the spec has one).
    pub fn write_spec(&self, spec: &RunSpec) -> PathBuf {
        let mut spec = spec.clone();
        if spec.isolation.seccomp && spec.seccomp.is_none() {
            spec.seccomp = Some(hoist_sandbox::seccomp::compile_for(&spec.isolation).unwrap());
        }
        let path = self.dir.path().join("spec.json");
        fs::write(&path, serde_json::to_vec(&spec).unwrap()).unwrap();
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
