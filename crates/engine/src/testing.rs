//! Small real images for tests of this crate and of the `hoist` binary:
//! built with the image model and written into a real store.

use std::io::Write;

use crate::digest::Digest;
use crate::image::{Descriptor, Manifest, Raw, media_types};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum TestImageError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Image(#[from] crate::image::ImageError),
    #[error("building the test layer: {0}")]
    Io(#[from] std::io::Error),
}

/// A one-layer gzip image holding `/hello.txt` (`hello from hoist\n`),
/// stored and tagged `name` (a full reference such as
/// `docker.io/library/hello:1`).
pub fn small_image(store: &Store, name: &str) -> Result<Raw<Manifest>, TestImageError> {
    let mut tar = tar::Builder::new(Vec::new());
    let body = b"hello from hoist\n";
    let mut h = tar::Header::new_ustar();
    h.set_size(body.len() as u64);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut h, "hello.txt", &body[..])?;
    let layer_tar = tar.into_inner()?;
    let diff_id = Digest::of(&layer_tar);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&layer_tar)?;
    let layer = gz.finish()?;
    let layer_info = store.put_blob_bytes(&layer)?;
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/hello.txt"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id.to_string()]},
        "history": [{"created_by": "COPY hello.txt /"}]
    });
    let config = serde_json::to_vec(&config).map_err(std::io::Error::other)?;
    let config_info = store.put_blob_bytes(&config)?;
    let manifest = Manifest::new(
        media_types::OCI_MANIFEST,
        Descriptor::new(
            media_types::OCI_CONFIG,
            config_info.digest,
            config_info.size,
        ),
        vec![Descriptor::new(
            media_types::OCI_LAYER_GZIP,
            layer_info.digest,
            layer_info.size,
        )],
    );
    let raw = Raw::from_value(manifest)?;
    store.put_blob_bytes(raw.bytes())?;
    store.set_ref(name, raw.digest(), Some(media_types::OCI_MANIFEST))?;
    Ok(raw)
}

/// A `docker-registry serve` (the CNCF distribution registry, Debian
/// package `docker-registry`) with empty storage on a free 127.0.0.1 port,
/// stopped on drop. For tests and benches.
pub struct Registry {
    pub port: u16,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// Start one with its storage in a temp dir under `parent` (the system
    /// temp dir when `None`); waits until it listens.
    pub fn start(parent: Option<&std::path::Path>) -> std::io::Result<Registry> {
        let dir = match parent {
            Some(p) => tempfile::tempdir_in(p)?,
            None => tempfile::tempdir()?,
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let config = format!(
            "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
            dir.path().join("data").display()
        );
        std::fs::write(dir.path().join("config.yml"), config)?;
        let child = std::process::Command::new("docker-registry")
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()?;
        let mut registry = Registry {
            port,
            child,
            _dir: dir,
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if std::time::Instant::now() > deadline || registry.child.try_wait()?.is_some() {
                return Err(std::io::Error::other(
                    "docker-registry did not start listening",
                ));
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Ok(registry)
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An `Executor` that starts no process, for tests of the build around a
/// `RUN`: a step whose argv ends in `fail` exits 3; any other writes
/// `/made` holding its argv, env and cwd. It counts and keeps the
/// requests it got.
#[derive(Debug, Default)]
pub struct FakeExecutor {
    pub calls: std::sync::atomic::AtomicUsize,
    pub seen: std::sync::Mutex<Vec<crate::ops::run::RunRequest>>,
}

impl crate::ops::run::Executor for FakeExecutor {
    fn run(
        &self,
        req: &crate::ops::run::RunRequest,
        on_line: &mut dyn FnMut(&str),
    ) -> Result<crate::ops::run::RunOutcome, crate::ops::run::RunError> {
        use crate::ops::run::{RunError, RunOutcome};
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(req.clone());
        on_line("fake output");
        if req.args.last().is_some_and(|a| a.ends_with("fail")) {
            return Ok(RunOutcome {
                code: 3,
                tail: vec!["fake output".into()],
            });
        }
        let made = req.upper.join("made");
        let body = format!("{:?} {:?} {}\n", req.args, req.env, req.cwd);
        std::fs::write(&made, body).map_err(|source| RunError::Io {
            what: "write",
            path: made,
            source,
        })?;
        Ok(RunOutcome {
            code: 0,
            tail: Vec::new(),
        })
    }
}
