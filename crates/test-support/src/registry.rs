//! A `docker-registry` with htpasswd auth (the plain one is
//! `hoist_engine::testing::Registry`).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The one account of an [`AuthRegistry`].
pub const USER: &str = "ci-bot";
pub const PASSWORD: &str = "s3cret-token";

/// A `docker-registry` with htpasswd (bcrypt) auth for [`USER`] and
/// [`PASSWORD`] on a free 127.0.0.1 port, killed on drop.
pub struct AuthRegistry {
    addr: String,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl AuthRegistry {
    pub fn start() -> AuthRegistry {
        for _ in 0..3 {
            let dir = tempfile::tempdir().unwrap();
            let htpasswd = dir.path().join("htpasswd");
            let hash = bcrypt::hash(PASSWORD, 4).unwrap();
            std::fs::write(&htpasswd, format!("{USER}:{hash}\n")).unwrap();
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let port = listener.local_addr().unwrap().port();
            drop(listener);
            let config = format!(
                "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n\
                 http:\n  addr: 127.0.0.1:{port}\n\
                 auth:\n  htpasswd:\n    realm: hoist-examples\n    path: {}\n",
                dir.path().join("data").display(),
                htpasswd.display(),
            );
            std::fs::write(dir.path().join("config.yml"), config).unwrap();
            let mut child = Command::new("docker-registry")
                .arg("serve")
                .arg(dir.path().join("config.yml"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("docker-registry (Debian package docker-registry) must be installed");
            let deadline = Instant::now() + Duration::from_secs(15);
            // Until it listens; exited: the port was most likely taken meanwhile.
            while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    let addr = format!("127.0.0.1:{port}");
                    return AuthRegistry {
                        addr,
                        child,
                        _dir: dir,
                    };
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("docker-registry did not start three times");
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        &self.addr
    }
}

impl Drop for AuthRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
