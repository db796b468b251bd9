//! Users, the canary tree, hostile tars, and hoist run as someone.

use hoist_test_support::users::{self, TestUser};

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The user who builds rootless.
pub const BUILDER: &str = "hoist-sec-builder";
/// Another local user, who must reach nothing of the builder's or root's.
pub const OTHER: &str = "hoist-sec-other";

pub use hoist_test_support::users::is_root;

/// Makes the test users (no sub-ids: a rootless build gets a one-id map).
/// `None` when not root. Under the lock every test that edits
/// `/etc/passwd` or `/etc/subuid` takes.
pub fn users() -> Option<()> {
    if !is_root() {
        eprintln!("skipped: the security tests make users and need root");
        return None;
    }
    users::make(&[TestUser::new(BUILDER), TestUser::new(OTHER)], "");
    Some(())
}

pub fn id_of(user: &str) -> (u32, u32) {
    (users::id(user, "-u"), users::id(user, "-g"))
}

/// A scratch area everyone can traverse, with the hoist binary where
/// every user can run it.
pub struct Area {
    pub dir: tempfile::TempDir,
    pub bin: PathBuf,
}

impl Area {
    pub fn new() -> Area {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let bin = dir.path().join("hoist");
        if std::fs::hard_link(env!("CARGO_BIN_EXE_hoist"), &bin).is_err() {
            std::fs::copy(env!("CARGO_BIN_EXE_hoist"), &bin).unwrap();
        }
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        Area { dir, bin }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// A directory owned by `user` (root when `None`), mode 0755.
    pub fn owned_dir(&self, rel: &str, user: Option<&str>) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(&p).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        if let Some(u) = user {
            let (uid, gid) = id_of(u);
            std::os::unix::fs::chown(&p, Some(uid), Some(gid)).unwrap();
        }
        p
    }

    /// `hoist ARGS` as `user` (root when `None`) with a clean environment.
    pub fn hoist(&self, user: Option<&str>, args: &[&str], stdin: Option<&Path>) -> Output {
        let mut c = match user {
            None => Command::new(&self.bin),
            Some(u) => {
                let mut c = Command::new("setpriv");
                c.args(["--reuid", u, "--regid", u, "--init-groups", "--"])
                    .arg(&self.bin);
                c
            }
        };
        let home = match user {
            None => self.path("root-home"),
            Some(u) => self.path(&format!("home-{u}")),
        };
        c.args(args)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .env("HOME", &home)
            .env("DOCKER_CONFIG", home.join(".docker"))
            .current_dir(self.dir.path());
        c.stdin(match stdin {
            Some(p) => Stdio::from(std::fs::File::open(p).unwrap()),
            None => Stdio::null(),
        });
        c.output().expect("hoist runs")
    }

    /// Like [`Area::hoist`], which must succeed; stdout and stderr.
    pub fn ok(&self, user: Option<&str>, args: &[&str]) -> String {
        let out = self.hoist(user, args, None);
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "hoist {args:?} as {user:?} failed:\n{text}"
        );
        text
    }
}

/// What is checked of every canary entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    mode: u32,
    uid: u32,
    gid: u32,
    mtime: (i64, i64),
    nlink: u64,
    data: Vec<u8>,
}

/// A tree outside every store and output: a "host tool", a directory with
/// a subdirectory and a file, all with fixed old times. Hostile inputs aim
/// their symlinks at it.
pub struct Canary {
    pub root: PathBuf,
    before: BTreeMap<PathBuf, Seen>,
}

impl Canary {
    /// Made in `area`, owned by `owner` (root when `None`).
    pub fn new(area: &Area, owner: Option<&str>) -> Canary {
        let root = area.path("canary");
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::create_dir_all(root.join("dir/f")).unwrap();
        std::fs::write(root.join("bin/tool"), b"#!/bin/sh\necho host tool\n").unwrap();
        std::fs::write(root.join("dir/file"), b"host data\n").unwrap();
        for (p, mode) in [
            ("bin/tool", 0o755),
            ("dir/file", 0o644),
            ("dir/f", 0o755),
            ("dir", 0o755),
            ("bin", 0o755),
            ("", 0o755),
        ] {
            std::fs::set_permissions(root.join(p), std::fs::Permissions::from_mode(mode)).unwrap();
        }
        let ids = owner.map(id_of).unwrap_or((0, 0));
        for p in ["bin/tool", "dir/file", "dir/f", "dir", "bin", ""] {
            let path = root.join(p);
            std::os::unix::fs::lchown(&path, Some(ids.0), Some(ids.1)).unwrap();
            let t = rustix::fs::Timespec {
                tv_sec: 1_500_000_000,
                tv_nsec: 0,
            };
            rustix::fs::utimensat(
                rustix::fs::CWD,
                &path,
                &rustix::fs::Timestamps {
                    last_access: t,
                    last_modification: t,
                },
                rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
            )
            .unwrap();
        }
        let before = snapshot(&root);
        Canary { root, before }
    }

    pub fn path(&self, rel: &str) -> String {
        self.root.join(rel).to_string_lossy().into_owned()
    }

    /// Panics naming what changed.
    pub fn assert_unchanged(&self, what: &str) {
        let after = snapshot(&self.root);
        assert_eq!(
            self.before, after,
            "{what}: the canary tree outside the store changed"
        );
    }
}

fn snapshot(root: &Path) -> BTreeMap<PathBuf, Seen> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let m = std::fs::symlink_metadata(&p).unwrap();
        let data = if m.is_file() {
            std::fs::read(&p).unwrap()
        } else {
            Vec::new()
        };
        if m.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
        }
        out.insert(
            p.strip_prefix(root).unwrap().to_path_buf(),
            Seen {
                mode: m.mode(),
                uid: m.uid(),
                gid: m.gid(),
                mtime: (m.mtime(), m.mtime_nsec()),
                // Directories' link counts move with their subdirectories.
                nlink: if m.is_dir() { 0 } else { m.nlink() },
                data,
            },
        );
    }
    out
}

/// One entry of a hand-made tar.
pub enum E<'a> {
    Dir(&'a str, u32),
    File(&'a str, u32, &'a [u8]),
    Symlink(&'a str, &'a str),
    Hardlink(&'a str, &'a str),
    Fifo(&'a str, u32),
}

/// A tar of `entries` in that order, every time 0 (1970), as hostile as
/// it is written.
pub fn tar(entries: &[E<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for e in entries {
        let mut h = tar::Header::new_gnu();
        h.set_mtime(0);
        h.set_uid(0);
        h.set_gid(0);
        let (path, data): (&str, &[u8]) = match e {
            E::Dir(p, mode) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(*mode);
                (p, &[])
            }
            E::File(p, mode, data) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                (p, data)
            }
            E::Symlink(p, target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_link_name(target).unwrap();
                (p, &[])
            }
            E::Hardlink(p, target) => {
                h.set_entry_type(tar::EntryType::Link);
                h.set_mode(0o644);
                h.set_link_name(target).unwrap();
                (p, &[])
            }
            E::Fifo(p, mode) => {
                h.set_entry_type(tar::EntryType::Fifo);
                h.set_mode(*mode);
                (p, &[])
            }
        };
        h.set_size(data.len() as u64);
        // `append_data` would refuse `..`; the hostile names are set raw.
        let name = h.as_old_mut().name.as_mut();
        name.fill(0);
        name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

/// The hostile entry lists, each aimed at `canary`: (name, entries).
pub fn hostile_cases(canary: &Canary) -> Vec<(&'static str, Vec<u8>)> {
    let tool = canary.path("bin/tool");
    let dir = canary.path("dir");
    let bin = canary.path("bin");
    vec![
        (
            "a setuid directory replaced by a symlink to a host binary",
            tar(&[E::Dir("d", 0o4755), E::Symlink("d", &tool)]),
        ),
        (
            "a parent directory replaced by a symlink to a host directory",
            tar(&[
                E::Dir("e", 0o777),
                E::Dir("e/f", 0o777),
                E::Symlink("e", &dir),
            ]),
        ),
        (
            "entry order swapped: the symlink first, then entries through it",
            tar(&[
                E::Symlink("e", &dir),
                E::Dir("e/f", 0o4777),
                E::File("e/new", 0o4755, b"planted\n"),
                E::Symlink("up", "../../../../../../../../../../../.."),
                E::Dir(&format!("up{dir}"), 0o777),
            ]),
        ),
        (
            "a hardlink through a symlinked parent to a host file",
            tar(&[
                E::Symlink("l", &bin),
                E::Hardlink("hl", "l/tool"),
                E::Dir("h", 0o4755),
                E::Hardlink("h", "l/tool"),
            ]),
        ),
        (
            "a fifo through a symlinked parent, a directory replaced by a fifo then a symlink",
            tar(&[
                E::Symlink("m", &dir),
                E::Fifo("m/fifo", 0o666),
                E::Dir("q", 0o777),
                E::Fifo("q", 0o666),
                E::Symlink("q", &dir),
            ]),
        ),
    ]
}
