//! Real parts for `tests/examples_ci.rs`: a `docker-registry` with htpasswd
//! auth, an ordinary user with sub-ids, a scratch area with the `hoist`
//! binary and a busybox base image in the registry, the platforms' ways of
//! running a command (`Runner`), and the run-twice check of the registry
//! cache (`twice`).

use hoist_test_support::users::{self, TestUser};

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The ordinary user the rootless runs use, and its sub-id range.
pub const USER: &str = "hoist-examples-ci";
/// Clear of `cli_rootless.rs` (200000+65536) and `cli_in_container.rs`
/// (300000+131072).
pub const SUBIDS: (u32, u32) = (500_000, 65_536);
pub use hoist_test_support::registry::{AuthRegistry, PASSWORD as REG_PASSWORD, USER as REG_USER};
pub const SHA: &str = "3f786850e387550fdab836ed7e6dc881de23001b";
/// Docker's default capabilities: what root of an unprivileged container has.
pub const DOCKER_CAPS: &str = "-all,+chown,+dac_override,+fowner,+fsetid,+kill,+setgid,+setuid,\
     +setpcap,+net_bind_service,+net_raw,+sys_chroot,+mknod,+audit_write,+setfcap";

pub use hoist_test_support::users::is_root;

/// The ordinary user with its sub-id range (idempotent), under the lock
/// the other tests that edit `/etc/subuid` and `/etc/subgid` take; the
/// range overlaps none of theirs.
pub fn make_user() {
    users::make(
        &[TestUser::new(USER).subids(SUBIDS.0, SUBIDS.1).no_home()],
        "",
    );
}

pub fn id_of(flag: &str) -> u32 {
    users::id(USER, flag)
}

/// Who runs a platform's commands (as root; otherwise the test's own user).
#[derive(Clone, Copy, PartialEq)]
pub enum Runner {
    /// An ordinary user (GitHub's runner user).
    User,
    /// Root of an unprivileged container (GitLab's job container).
    ContainerRoot,
    /// An ordinary user with `no_new_privs` (the restricted pod).
    RestrictedPod,
}

/// A scratch area every user can reach: `bin/hoist`, the registry with
/// the base image `REGISTRY/base/busybox:1`, contexts, fresh dirs.
pub struct Area {
    _dir: tempfile::TempDir,
    pub base: PathBuf,
    registry: AuthRegistry,
    /// Run as root: the platforms' users and capabilities are reproduced.
    pub root: bool,
}

impl Area {
    pub fn new() -> Area {
        let root = is_root();
        if root {
            make_user();
        }
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().to_path_buf();
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir(base.join("bin")).unwrap();
        // The target dir may sit where the user cannot go (/root/...).
        let bin = base.join("bin/hoist");
        if std::fs::hard_link(env!("CARGO_BIN_EXE_hoist"), &bin).is_err() {
            std::fs::copy(env!("CARGO_BIN_EXE_hoist"), &bin).unwrap();
        }
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let registry = AuthRegistry::start();
        let area = Area {
            _dir: dir,
            base,
            registry,
            root,
        };
        // The base image from the host's busybox-static, pushed.
        let dockerfile = "FROM scratch\nCOPY --from=bin busybox /bin/busybox\n\
                          RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n";
        let ctx = area.files("base-ctx", &[("Dockerfile", dockerfile)]);
        let name = format!("{}/base/busybox:1", area.reg());
        let ctx = ctx.to_str().unwrap();
        area.hoist(&[
            "build",
            "-q",
            "--build-context",
            "bin=/bin",
            "-t",
            &name,
            ctx,
        ]);
        area.hoist(&["login", "-u", REG_USER, "--password-stdin", area.reg()]);
        area.hoist(&["push", &name]);
        area
    }

    pub fn reg(&self) -> &str {
        self.registry.addr()
    }

    /// A fresh directory the commands' user owns.
    pub fn fresh(&self, name: &str) -> PathBuf {
        let p = self.base.join(name);
        std::fs::create_dir_all(&p).unwrap();
        if self.root {
            std::os::unix::fs::chown(&p, Some(id_of("-u")), Some(id_of("-g"))).unwrap();
        }
        p
    }

    /// Files (readable by all) under `name`.
    pub fn files(&self, name: &str, files: &[(&str, &str)]) -> PathBuf {
        let dir = self.base.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for (file, body) in files {
            std::fs::write(dir.join(file), body).unwrap();
        }
        Command::new("chmod")
            .arg("-R")
            .arg("a+rX")
            .arg(&dir)
            .status()
            .unwrap();
        dir
    }

    /// `hoist` as this process, with a store and Docker config of its own
    /// (the password on stdin, for `login`).
    pub fn hoist(&self, args: &[&str]) -> String {
        let mut child = Command::new(self.base.join("bin/hoist"))
            .arg("--root")
            .arg(self.base.join("admin-store"))
            .args(args)
            .env("DOCKER_CONFIG", self.base.join("admin-docker"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        std::io::Write::write_all(&mut stdin, format!("{REG_PASSWORD}\n").as_bytes()).unwrap();
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        let log = log_of(&out);
        assert!(out.status.success(), "hoist {args:?}:\n{log}");
        log
    }

    /// The context the CI examples build (`.` in their commands).
    pub fn ci_context(&self) -> PathBuf {
        let dockerfile = format!(
            "FROM {}/base/busybox:1\nWORKDIR /app\nCOPY greeting.txt .\n\
             RUN echo \"built as uid $(id -u)\" >> greeting.txt && cat greeting.txt\n\
             CMD [\"cat\", \"/app/greeting.txt\"]\n",
            self.reg()
        );
        let files = [
            ("Dockerfile", dockerfile.as_str()),
            ("greeting.txt", "hello from CI\n"),
        ];
        self.files("ctx", &files)
    }

    /// `argv` as the runner, in `cwd`, with exactly `env` (and a PATH that
    /// finds `bin/hoist` first).
    pub fn run(
        &self,
        runner: Runner,
        argv: &[String],
        env: &BTreeMap<String, String>,
        cwd: &Path,
    ) -> Output {
        let mut c = Command::new(if self.root { "setpriv" } else { "env" });
        if self.root {
            match runner {
                Runner::User => c.args(["--reuid", USER, "--regid", USER, "--init-groups"]),
                Runner::RestrictedPod => c.args([
                    "--reuid",
                    USER,
                    "--regid",
                    USER,
                    "--init-groups",
                    "--no-new-privs",
                ]),
                Runner::ContainerRoot => {
                    c.args(["--bounding-set", DOCKER_CAPS, "--inh-caps", "-all"])
                }
            };
        }
        let path = format!(
            "{}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
            self.base.join("bin").display()
        );
        c.arg("--")
            .args(argv)
            .env_clear()
            .env("PATH", path)
            .envs(env);
        if runner != Runner::User {
            // Where the container's seccomp profile refuses user namespaces.
            c.env("HOIST_IN_USERNS", "1");
        }
        c.current_dir(cwd).stdin(Stdio::null()).output().unwrap()
    }

    /// Pull `image` and read `file` from its filesystem.
    pub fn pulled_file(&self, image: &str, file: &str) -> (String, std::fs::Metadata) {
        self.hoist(&["pull", image]);
        let dest = self
            .base
            .join(format!("rootfs-{}", image.replace(['/', ':'], "_")));
        self.hoist(&[
            "export",
            image,
            "-o",
            &format!("type=local,dest={}", dest.display()),
        ]);
        let path = dest.join(file.trim_start_matches('/'));
        let meta =
            std::fs::symlink_metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        (std::fs::read_to_string(&path).unwrap_or_default(), meta)
    }
}

pub fn log_of(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `(image digest, steps run, steps cached)` from a build's summary line.
pub fn summary(log: &str) -> (String, usize, usize) {
    let line = log
        .lines()
        .find(|l| l.starts_with("writing image "))
        .unwrap_or_else(|| panic!("no build summary in:\n{log}"));
    let digest = line.split_whitespace().nth(2).unwrap().to_string();
    let nums: Vec<usize> = line
        .split(['(', ' ', ','])
        .filter_map(|w| w.parse().ok())
        .collect();
    (digest, nums[0], nums[1])
}

/// Runs one pipeline twice, each time with what `per_run(run)` gives (its
/// commands and their environment, with fresh per-run directories), and
/// checks the cache story: run 1 builds and exports the registry cache,
/// run 2 imports it and runs nothing. Returns both build logs.
pub fn twice(
    area: &Area,
    runner: Runner,
    cwd: &Path,
    cache: &str,
    mut per_run: impl FnMut(usize) -> (Vec<Vec<String>>, BTreeMap<String, String>),
) -> [String; 2] {
    let mut logs = [String::new(), String::new()];
    for (run, log) in logs.iter_mut().enumerate() {
        let (commands, env) = per_run(run);
        for argv in &commands {
            let out = area.run(runner, argv, &env, cwd);
            let text = log_of(&out);
            assert!(
                out.status.success(),
                "run {} of {argv:?} failed:\n{text}",
                run + 1
            );
            if text.contains("writing image ") {
                *log = text;
            }
        }
        assert!(!log.is_empty(), "no hoist build among {commands:?}");
    }
    let (d1, ran1, cached1) = summary(&logs[0]);
    let (d2, ran2, cached2) = summary(&logs[1]);
    assert!(ran1 > 0 && cached1 == 0, "run 1 starts cold:\n{}", logs[0]);
    let no_cache_yet = format!("warning: importing cache registry {cache}");
    assert!(
        logs[0].contains(&no_cache_yet),
        "run 1 has no cache yet:\n{}",
        logs[0]
    );
    assert!(
        logs[0].contains(&format!("exporting cache registry {cache}")),
        "{}",
        logs[0]
    );
    assert_eq!(
        (ran2, cached2),
        (0, ran1),
        "run 2 runs no step:\n{}",
        logs[1]
    );
    assert!(
        logs[1].contains(&format!("imported cache: {ran1} steps hit")),
        "{}",
        logs[1]
    );
    assert_eq!(d1, d2, "the cache gives the same image");
    logs
}
