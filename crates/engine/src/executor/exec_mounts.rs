//! `RUN --mount`: what each mount contributes to the step's cache key, and
//! the host paths the sandbox mounts when the step runs.
//!
//! - `bind`: a path of the context (only what `.dockerignore` lets through,
//!   copied to the step's scratch) or of a stage or image (its snapshot,
//!   read-only, or through an overlay when `rw`: writes are discarded). The
//!   key takes the content digest of what is mounted, as BuildKit's.
//! - `cache`: a directory in the store (`cache-mounts/`) kept across builds
//!   and never in the image; `sharing=shared|locked|private` by file locks.
//! - `tmpfs`: a fresh tmpfs.
//! - `secret`: a `--secret` copied to the scratch dir (mode 0400) or put in
//!   the step's environment; never in the key, the image or the logs.
//! - `ssh`: a `--ssh` agent socket, with `SSH_AUTH_SOCK` pointing at it.

use std::fs;
use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::ops::run::{MountKind, MountSpec};
use hoist_dockerfile::mount::{Mount, MountType, Sharing};

use super::build::Builder;
use super::state::ImageState;
use super::{BuildError, Secret};
use crate::digest::Digest;
use crate::ops::file::{CopyPlan, HiddenPaths, SourceSpec, apply_to_dir};
use crate::plan::op::ExecMount;

/// One mount, planned: its part of the key and how to make it.
#[derive(Debug)]
pub(super) struct Planned {
    mount: Mount,
    target: String,
    /// For a bind: where its source lives and whether it is a filesystem
    /// (a stage or image) rather than a context.
    source: Option<(PathBuf, bool)>,
    /// The key's view of this mount (never a secret's value).
    pub key: String,
}

/// What the sandbox gets, and what must live until the step ends.
#[derive(Debug, Default)]
pub(super) struct Prepared {
    pub mounts: Vec<MountSpec>,
    /// Variables added to the step's environment (secrets with `env=`, ssh).
    pub env: Vec<String>,
    /// Locks held on cache mounts while the step runs.
    _locks: Vec<OwnedFd>,
    /// `ssh` agent forwarders, stopped when the step ends.
    _forwards: Vec<SshForward>,
}

/// A socket in the step's scratch dir, with the mount's `uid=`, `gid=` and
/// `mode=` (BuildKit's default `0600`, root's), whose connections are
/// relayed to the agent: the agent's own socket is never mounted, so its
/// owner and mode on the host are never changed.
#[derive(Debug)]
struct SshForward {
    path: PathBuf,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl SshForward {
    fn start(path: PathBuf, agent: PathBuf, m: &Mount) -> Result<SshForward, BuildError> {
        use std::os::unix::net::{UnixListener, UnixStream};
        use std::sync::atomic::Ordering;
        let listener = UnixListener::bind(&path).map_err(|e| io_err(&path, e))?;
        set_owner_and_mode(&path, m, 0o600)?;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let (Ok(client), Ok(upstream)) = (client, UnixStream::connect(&agent)) else {
                    continue;
                };
                let relay = |mut from: UnixStream, to: UnixStream| {
                    std::thread::spawn(move || {
                        let mut to_w = &to;
                        let _ = std::io::copy(&mut from, &mut to_w);
                        let _ = to.shutdown(std::net::Shutdown::Write);
                    });
                };
                if let (Ok(c2), Ok(u2)) = (client.try_clone(), upstream.try_clone()) {
                    relay(client, upstream);
                    relay(u2, c2);
                }
            }
        });
        Ok(SshForward { path, stop })
    }
}

impl Drop for SshForward {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        // Wake the accept loop so it sees the flag and ends.
        let _ = std::os::unix::net::UnixStream::connect(&self.path);
    }
}

impl Builder<'_> {
    /// Check the mounts and compute their key parts (hashing bind sources).
    pub(super) fn plan_mounts(
        &self,
        mounts: &[ExecMount],
        cwd: &str,
        inputs: &[Arc<ImageState>],
    ) -> Result<Vec<Planned>, BuildError> {
        let mut out = Vec::new();
        for (i, em) in mounts.iter().enumerate() {
            let target = target_of(&em.spec, cwd, i)?;
            let mut planned = Planned {
                key: String::new(),
                target: target.clone(),
                source: None,
                mount: em.spec.clone(),
            };
            let m = &planned.mount;
            planned.key = match m.kind {
                MountType::Bind => {
                    let (root, fs_source) = self.source_root(&em.from, inputs)?;
                    let source = m.source.clone().unwrap_or_else(|| ".".into());
                    let digest = self
                        .hash_sources(
                            &root,
                            fs_source,
                            m.from.is_some(),
                            std::slice::from_ref(&source),
                            &[],
                        )?
                        .digest;
                    planned.source = Some((root, fs_source));
                    format!(
                        "bind {target} from={} source={source} ro={} content={digest}",
                        m.from.as_deref().unwrap_or("context"),
                        m.read_only
                    )
                }
                MountType::Cache => {
                    if m.from.is_some() {
                        return Err(BuildError::Unsupported(
                            "RUN --mount=type=cache,from=... is not supported yet".into(),
                        ));
                    }
                    let source = cache_source(m)?;
                    format!(
                        "cache {target} id={} sharing={:?} mode={:?} uid={:?} gid={:?} ro={}{}",
                        cache_id(m, &target),
                        m.sharing.unwrap_or(Sharing::Shared),
                        m.mode,
                        m.uid,
                        m.gid,
                        m.read_only,
                        source.map(|s| format!(" source={s}")).unwrap_or_default()
                    )
                }
                MountType::Tmpfs => format!("tmpfs {target} size={:?}", m.size_limit),
                MountType::Secret => format!(
                    "secret {target} id={} env={:?} required={}",
                    secret_id(m),
                    m.env,
                    m.required
                ),
                MountType::Ssh => format!(
                    "ssh {target} id={} required={}{}",
                    m.id.as_deref().unwrap_or("default"),
                    m.required,
                    // BuildKit keys the socket's owner and mode; unset,
                    // the key stays as it was.
                    match (m.uid, m.gid, m.mode) {
                        (None, None, None) => String::new(),
                        (u, g, mode) => format!(" uid={u:?} gid={g:?} mode={mode:?}"),
                    }
                ),
            };
            out.push(planned);
        }
        Ok(out)
    }

    /// Make each mount's host side in `scratch` (the step's own directory).
    pub(super) fn prepare_mounts(
        &self,
        planned: &[Planned],
        scratch: &Path,
    ) -> Result<Prepared, BuildError> {
        let mut out = Prepared::default();
        for (i, p) in planned.iter().enumerate() {
            let m = &p.mount;
            let target = p.target.clone();
            let kind = match m.kind {
                MountType::Bind => {
                    let (root, fs_source) = p.source.clone().ok_or_else(|| {
                        BuildError::Internal("bind mount without a source".into())
                    })?;
                    let source = m.source.clone().unwrap_or_else(|| ".".into());
                    if fs_source {
                        let path = contained(&root, &source)?;
                        if m.read_only {
                            MountKind::Bind {
                                source: path,
                                read_only: true,
                            }
                        } else {
                            let upper = mkdir(&scratch.join(format!("mount-{i}-upper")))?;
                            let work = mkdir(&scratch.join(format!("mount-{i}-work")))?;
                            MountKind::Overlay {
                                lower: vec![path],
                                upper,
                                work,
                            }
                        }
                    } else {
                        let copy = mkdir(&scratch.join(format!("mount-{i}")))?;
                        let hidden = (m.from.is_none()).then(|| HiddenPaths {
                            root: root.clone(),
                            matcher: self.context.ignore().clone(),
                        });
                        let plan = CopyPlan {
                            sources: vec![
                                SourceSpec::context(&root, source.clone()).hiding(hidden),
                            ],
                            dest: "/".into(),
                            workdir: "/".into(),
                            ..CopyPlan::default()
                        };
                        apply_to_dir(&plan, &copy)?;
                        let path = if root.join(&source).is_dir() {
                            copy
                        } else {
                            let name = Path::new(&source)
                                .file_name()
                                .map(PathBuf::from)
                                .unwrap_or_default();
                            copy.join(name)
                        };
                        MountKind::Bind {
                            source: path,
                            read_only: m.read_only,
                        }
                    }
                }
                MountType::Cache => {
                    let (dir, lock) = self.cache_dir(m, &target, scratch, i)?;
                    out._locks.extend(lock);
                    // `source=`: a directory inside the cache, never
                    // through a link leading out of it.
                    let dir = match cache_source(m)? {
                        Some(sub) => contained(&dir, &sub).map_err(|e| {
                            BuildError::Run(format!("RUN --mount=type=cache,source={sub}: {e}"))
                        })?,
                        None => dir,
                    };
                    MountKind::Bind {
                        source: dir,
                        read_only: m.read_only,
                    }
                }
                MountType::Tmpfs => MountKind::Tmpfs {
                    size: m.size_limit,
                    mode: None,
                },
                MountType::Secret => {
                    let id = secret_id(m);
                    let Some(value) = self.secret_value(&id)? else {
                        if m.required {
                            return Err(BuildError::Run(format!(
                                "secret {id}: not found (pass --secret id={id},src=FILE)"
                            )));
                        }
                        continue;
                    };
                    if let Some(var) = &m.env {
                        out.env
                            .push(format!("{var}={}", String::from_utf8_lossy(&value)));
                        if m.target.is_none() {
                            continue;
                        }
                    }
                    let file = scratch.join(format!("secret-{i}"));
                    fs::write(&file, &value).map_err(|e| io_err(&file, e))?;
                    set_owner_and_mode(&file, m, 0o400)?;
                    MountKind::Bind {
                        source: file,
                        read_only: true,
                    }
                }
                MountType::Ssh => {
                    let id = m.id.clone().unwrap_or_else(|| "default".into());
                    let Some(sock) = self.opts.ssh.get(&id) else {
                        if m.required {
                            return Err(BuildError::Run(format!(
                                "ssh {id}: no agent given (pass --ssh {id}[=SOCKET])"
                            )));
                        }
                        continue;
                    };
                    out.env.push(format!("SSH_AUTH_SOCK={target}"));
                    let proxy = scratch.join(format!("ssh-{i}.sock"));
                    out._forwards
                        .push(SshForward::start(proxy.clone(), sock.clone(), m)?);
                    MountKind::Bind {
                        source: proxy,
                        read_only: false,
                    }
                }
            };
            out.mounts.push(MountSpec { target, kind });
        }
        Ok(out)
    }

    fn secret_value(&self, id: &str) -> Result<Option<Vec<u8>>, BuildError> {
        match self.opts.secrets.get(id) {
            None => Ok(None),
            Some(Secret::File(path)) => fs::read(path)
                .map(Some)
                .map_err(|e| BuildError::Run(format!("secret {id}: {}: {e}", path.display()))),
            Some(Secret::Env(var)) => Ok(std::env::var_os(var).map(|v| {
                use std::os::unix::ffi::OsStrExt;
                v.as_bytes().to_vec()
            })),
        }
    }

    /// The cache mount's directory (made on first use) and the lock its
    /// sharing mode takes; `private` falls back to a throw-away directory
    /// when another step holds the shared one.
    fn cache_dir(
        &self,
        m: &Mount,
        target: &str,
        scratch: &Path,
        i: usize,
    ) -> Result<(PathBuf, Option<OwnedFd>), BuildError> {
        let id = cache_id(m, target);
        let base = self.store.root().join("cache-mounts");
        let name = Digest::of(id.as_bytes()).hex().to_string();
        let dir = base.join(&name);
        if !dir.exists() {
            // An imported cache may carry it (`cache-mounts=true`).
            self.import_cache_mount(&name, &base, scratch, i)?;
        }
        self.ledger.mount(&name, dir.clone());
        if !dir.exists() {
            let tmp = mkdir(&scratch.join(format!("cache-{i}")))?;
            set_owner_and_mode(&tmp, m, 0o755)?;
            crate::store::create_private_dir(&base)?;
            // Another build may have made it first; theirs wins.
            let _ = fs::rename(&tmp, &dir);
        }
        let lock_path = base.join(format!("{}.lock", Digest::of(id.as_bytes()).hex()));
        let lock: OwnedFd = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| io_err(&lock_path, e))?
            .into();
        use rustix::fs::FlockOperation as Op;
        match m.sharing.unwrap_or(Sharing::Shared) {
            Sharing::Shared => {
                rustix::fs::flock(&lock, Op::LockShared)
                    .map_err(|e| io_err(&lock_path, e.into()))?;
            }
            Sharing::Locked => {
                rustix::fs::flock(&lock, Op::LockExclusive)
                    .map_err(|e| io_err(&lock_path, e.into()))?;
            }
            Sharing::Private => {
                if rustix::fs::flock(&lock, Op::NonBlockingLockExclusive).is_err() {
                    let own = mkdir(&scratch.join(format!("cache-{i}-private")))?;
                    return Ok((own, None));
                }
            }
        }
        Ok((dir, Some(lock)))
    }
}

impl Builder<'_> {
    /// Unpack the cache-mount directory `name` from an imported cache
    /// into `base` (nothing when no imported cache has it).
    fn import_cache_mount(
        &self,
        name: &str,
        base: &Path,
        scratch: &Path,
        i: usize,
    ) -> Result<(), BuildError> {
        let Some(blob) = self.opts.cache_from.iter().find_map(|c| {
            c.mounts
                .iter()
                .find(|(dir, _)| dir == name)
                .map(|(_, blob)| blob.clone())
        }) else {
            return Ok(());
        };
        if !self.store.ensure_blob(&blob.digest)? {
            return Ok(());
        }
        let tmp = mkdir(&scratch.join(format!("cache-import-{i}")))?;
        let mut opts = crate::layer::UnpackOptions::new(blob.digest.clone());
        opts.size = Some(blob.size);
        let reader = std::io::BufReader::new(self.store.open_blob(&blob.digest)?);
        crate::layer::unpack(reader, &tmp, &opts)?;
        crate::store::create_private_dir(base)?;
        // Another build may have made it first; theirs wins.
        let _ = fs::rename(&tmp, base.join(name));
        Ok(())
    }
}

/// The mount's target: as written, relative ones under the working
/// directory; defaults for secrets and ssh as BuildKit's.
fn target_of(m: &Mount, cwd: &str, index: usize) -> Result<String, BuildError> {
    let t = match (&m.target, m.kind) {
        (Some(t), _) => t.clone(),
        (None, MountType::Secret) => format!("/run/secrets/{}", secret_id(m)),
        (None, MountType::Ssh) => format!("/run/buildkit/ssh_agent.{index}"),
        (None, _) => {
            return Err(BuildError::Run("RUN --mount needs a target".into()));
        }
    };
    let abs = if t.starts_with('/') {
        t
    } else {
        format!("{}/{t}", cwd.trim_end_matches('/'))
    };
    Ok(super::build::normalize_path(&abs))
}

/// A cache mount's `source=`, cleaned (`None`: the whole cache). One that
/// leads out of the cache (`../..`) is refused here, when the step is
/// planned, rather than left to the mount.
fn cache_source(m: &Mount) -> Result<Option<String>, BuildError> {
    let Some(src) = m.source.as_deref() else {
        return Ok(None);
    };
    let mut parts: Vec<&str> = Vec::new();
    for c in src.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(BuildError::Run(format!(
                        "RUN --mount=type=cache,source={src}: the source leads out of the cache \
                         mount (it must name a directory inside it)"
                    )));
                }
            }
            c => parts.push(c),
        }
    }
    Ok((!parts.is_empty()).then(|| parts.join("/")))
}

fn cache_id(m: &Mount, target: &str) -> String {
    m.id.clone().unwrap_or_else(|| target.to_string())
}

fn secret_id(m: &Mount) -> String {
    m.id.clone()
        .or_else(|| {
            m.target
                .as_deref()
                .and_then(|t| Path::new(t).file_name())
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_default()
}

/// `root/rel` with no `..` or symlink leading out of `root`.
fn contained(root: &Path, rel: &str) -> Result<PathBuf, BuildError> {
    let root_c = fs::canonicalize(root).map_err(|e| io_err(root, e))?;
    let joined = root.join(rel.trim_start_matches('/'));
    let real = fs::canonicalize(&joined).map_err(|e| io_err(&joined, e))?;
    if !real.starts_with(&root_c) {
        return Err(BuildError::Run(format!(
            "RUN --mount source {rel} leads out of its root"
        )));
    }
    Ok(real)
}

fn mkdir(p: &Path) -> Result<PathBuf, BuildError> {
    fs::DirBuilder::new()
        .mode(0o755)
        .create(p)
        .map_err(|e| io_err(p, e))?;
    Ok(p.to_path_buf())
}

/// The mount's `mode=` (else `default_mode`), `uid=` and `gid=` (else 0)
/// on what hoist made for it.
fn set_owner_and_mode(path: &Path, m: &Mount, default_mode: u32) -> Result<(), BuildError> {
    fs::set_permissions(
        path,
        fs::Permissions::from_mode(m.mode.unwrap_or(default_mode)),
    )
    .map_err(|e| io_err(path, e))?;
    rustix::fs::chown(
        path,
        Some(rustix::fs::Uid::from_raw(m.uid.unwrap_or(0))),
        Some(rustix::fs::Gid::from_raw(m.gid.unwrap_or(0))),
    )
    .map_err(|e| io_err(path, e.into()))
}

fn io_err(p: &Path, e: std::io::Error) -> BuildError {
    BuildError::Run(format!("{}: {e}", p.display()))
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    use std::os::unix::net::{UnixListener, UnixStream};

    use super::*;

    fn mount(spec: &str) -> Mount {
        let mut same = |w: &str| Ok(w.to_string());
        hoist_dockerfile::mount::parse_mount(spec, Some(&mut same)).unwrap()
    }

    /// BuildKit's `testCacheMountSourceEscape`, the lexical half: `source=`
    /// is cleaned inside the cache; leading out is refused.
    #[test]
    fn cache_source_is_cleaned_inside_the_cache_and_refused_out_of_it() {
        let src = |s: &str| cache_source(&mount(&format!("type=cache,target=/c,source={s}")));
        assert_eq!(src("sel").unwrap().as_deref(), Some("sel"));
        assert_eq!(src("/a/./b/../c/").unwrap().as_deref(), Some("a/c"));
        assert_eq!(src(".").unwrap(), None);
        assert_eq!(src("a/..").unwrap(), None);
        for bad in ["..", "../..", "a/../../b", "/.."] {
            let e = src(bad).unwrap_err().to_string();
            assert!(e.contains("leads out of the cache"), "{bad}: {e}");
        }
        assert_eq!(cache_source(&mount("type=cache,target=/c")).unwrap(), None);
    }

    /// The ssh relay: the step's socket has the mount's owner and mode,
    /// and what a client writes reaches the agent and back.
    #[test]
    fn ssh_forward_relays_to_the_agent_with_the_mounts_owner_and_mode() {
        let dir = tempfile::tempdir().unwrap();
        let agent_path = dir.path().join("agent.sock");
        let agent = UnixListener::bind(&agent_path).unwrap();
        std::thread::spawn(move || {
            let (mut s, _) = agent.accept().unwrap();
            let mut buf = [0u8; 4];
            s.read_exact(&mut buf).unwrap();
            s.write_all(b"pong").unwrap();
        });
        let (uid, gid) = (
            rustix::process::getuid().as_raw(),
            rustix::process::getgid().as_raw(),
        );
        let m = mount(&format!("type=ssh,mode=0741,uid={uid},gid={gid}"));
        let proxy = dir.path().join("ssh-0.sock");
        let forward = SshForward::start(proxy.clone(), agent_path, &m).unwrap();
        let meta = fs::metadata(&proxy).unwrap();
        assert!(meta.file_type().is_socket());
        assert_eq!((meta.mode() & 0o7777, meta.uid()), (0o741, uid));
        let mut c = UnixStream::connect(&proxy).unwrap();
        c.write_all(b"ping").unwrap();
        let mut reply = String::new();
        c.read_to_string(&mut reply).unwrap();
        assert_eq!(reply, "pong");
        drop(forward);
    }
}
