//! A private Docker engine for the tests that hand images to docker
//! (`--load`, `docker load` of `-o type=docker`, the examples): Debian's
//! `dockerd` (package `docker.io`, which `scripts/test` installs) started
//! with its own data root, exec root and API socket under a temporary
//! folder, no bridge and no iptables rules, so it touches nothing of the
//! host's and several can run at once. Dropped, it is stopped and its
//! folder removed. Needs root (dockerd does).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const DOCKERD: &str = "/usr/sbin/dockerd";
pub const DOCKER: &str = "/usr/bin/docker";

pub struct Dockerd {
    dir: PathBuf,
    child: Child,
}

impl Dockerd {
    /// Start one and wait until it answers `docker info` (about a second).
    pub fn start() -> Dockerd {
        assert!(
            Path::new(DOCKERD).exists() && Path::new(DOCKER).exists(),
            "Debian's docker.io is not installed: scripts/test installs it"
        );
        // A short path: the socket's path must fit in sun_path (108 bytes).
        let dir = tempfile_dir();
        let log = std::fs::File::create(dir.join("dockerd.log")).unwrap();
        let child = Command::new(DOCKERD)
            .arg("--data-root")
            .arg(dir.join("root"))
            .arg("--exec-root")
            .arg(dir.join("exec"))
            .arg("--pidfile")
            .arg(dir.join("dockerd.pid"))
            .arg("-H")
            .arg(format!("unix://{}", dir.join("docker.sock").display()))
            .args(["--iptables=false", "--ip6tables=false", "--bridge=none"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("dockerd starts");
        let d = Dockerd { dir, child };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if d.docker(&["info"]).status.success() {
                return d;
            }
            assert!(
                Instant::now() < deadline,
                "dockerd did not come up: {}",
                std::fs::read_to_string(d.dir.join("dockerd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The API socket's path.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("docker.sock")
    }

    /// `DOCKER_HOST` for this engine.
    pub fn host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    /// Run the docker client against this engine.
    pub fn docker(&self, args: &[&str]) -> Output {
        Command::new(DOCKER)
            .arg("-H")
            .arg(self.host())
            .args(args)
            .env("DOCKER_CONFIG", self.dir.join("client"))
            .output()
            .expect("docker runs")
    }

    /// Run the docker client, which must succeed; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(
            out.status.success(),
            "docker {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        // SIGTERM lets dockerd stop its containerd and unmount its layers.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Overlay mounts under the data root, if any were left, go first.
        crate::unmount_under(&self.dir);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn tempfile_dir() -> PathBuf {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = PathBuf::from(format!(
        "/tmp/hoist-dockerd-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
