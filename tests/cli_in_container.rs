//! hoist inside a rootless container (issue 6): `podman run` by an
//! ordinary user, runc, podman's default seccomp profile, no added
//! capabilities, and `hoist build` with `RUN` steps in it, as a user of the
//! container (`--user 1000:1000`) and as its root.
//!
//! The container's root is made offline (`podman run --rootfs DIR`): the
//! hoist binary, the libraries `ldd` lists, Debian's static busybox, a
//! busybox base image context (`FROM scratch` + `COPY rootfs/ /`) and the
//! test's Dockerfiles. What hoist builds is exported into the container's
//! `/work`, which the test reads from the host.
//!
//! In such a container the kernel refuses a fresh `/proc` (podman masks
//! parts of its own) and the seccomp profile refuses `sethostname`: hoist's
//! `auto` isolation binds the container's `/proc`, hides the processes
//! outside the step, and says so in its one isolation line; the explicit
//! modes fail saying why. A custom profile that refuses `unshare` (as
//! Docker's default one does) leaves only `--isolation=chroot`.
//!
//! The tests run as root (CI) and make a real user, `hoist-podman-test`,
//! with subordinate ids 300000+131072 (podman maps them into the
//! container); podman runs as that user through `runuser`. Without root
//! they are skipped (they cannot make users).

use hoist_test_support::users::{self, TestUser};

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const USER: &str = "hoist-podman-test";
const SUB_START: u32 = 300_000;
const SUB_COUNT: u32 = 131_072;

/// Make the user, its sub-id ranges and its runtime dir (idempotent,
/// under the lock every test that edits them takes); its uid. `None` when
/// not root.
fn user() -> Option<u32> {
    if !users::is_root() {
        eprintln!("skipped: the container tests make a user and need root");
        return None;
    }
    users::make(
        &[TestUser::new(USER).subids(SUB_START, SUB_COUNT)],
        &format!(
            "u=$(id -u {USER})\nmkdir -p /run/user/$u && chown {USER}: /run/user/$u && chmod 700 /run/user/$u"
        ),
    );
    Some(users::id(USER, "-u"))
}

/// A container root in a temp dir, and the user that runs it.
struct Container {
    _dir: tempfile::TempDir,
    base: PathBuf,
    rootfs: PathBuf,
    uid: u32,
}

/// Link `from` to `to` (same filesystem), else copy it.
fn place(from: &Path, to: &Path) {
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    if std::fs::hard_link(from, to).is_err() {
        std::fs::copy(from, to).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    }
}

/// busybox and its applets in `bin`.
fn busybox(bin: &Path) {
    place(Path::new("/bin/busybox"), &bin.join("busybox"));
    for applet in [
        "sh", "id", "touch", "chown", "cat", "echo", "ls", "readlink", "grep", "wc", "tr", "sleep",
        "true",
    ] {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
    }
}

impl Container {
    fn new(uid: u32) -> Container {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().to_path_buf();
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755)).unwrap();
        let rootfs = base.join("rootfs");
        let hoist = Path::new(env!("CARGO_BIN_EXE_hoist"));
        place(hoist, &rootfs.join("bin/hoist"));
        let ldd = Command::new("ldd").arg(hoist).output().expect("ldd runs");
        for lib in String::from_utf8_lossy(&ldd.stdout)
            .split_whitespace()
            .filter(|w| w.starts_with('/'))
        {
            let real = std::fs::canonicalize(lib).unwrap();
            place(&real, &rootfs.join(lib.trim_start_matches('/')));
        }
        busybox(&rootfs.join("bin"));
        let etc = rootfs.join("etc");
        std::fs::create_dir_all(&etc).unwrap();
        let passwd = "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n";
        let group = "root:x:0:\napp:x:1000:\n";
        std::fs::write(etc.join("passwd"), passwd).unwrap();
        std::fs::write(etc.join("group"), group).unwrap();
        for d in ["tmp", "root", "home/app", "work"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::set_permissions(rootfs.join("tmp"), std::fs::Permissions::from_mode(0o1777))
            .unwrap();
        // The base image's context: busybox, passwd, group, /tmp.
        let ctx = rootfs.join("work/base");
        busybox(&ctx.join("rootfs/bin"));
        std::fs::create_dir_all(ctx.join("rootfs/etc")).unwrap();
        std::fs::write(ctx.join("rootfs/etc/passwd"), passwd).unwrap();
        std::fs::write(ctx.join("rootfs/etc/group"), group).unwrap();
        std::fs::create_dir(ctx.join("rootfs/tmp")).unwrap();
        std::fs::set_permissions(
            ctx.join("rootfs/tmp"),
            std::fs::Permissions::from_mode(0o1777),
        )
        .unwrap();
        std::fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY rootfs/ /\n").unwrap();
        let c = Container {
            _dir: dir,
            base,
            rootfs,
            uid,
        };
        // Container root is the user; /work and /home/app are container
        // uid 1000's, which the user's first subordinate range holds.
        let st = Command::new("chown")
            .arg(format!("{uid}:{uid}"))
            .args([
                &c.rootfs,
                &c.rootfs.join("root"),
                &c.rootfs.join("tmp"),
                &c.rootfs.join("etc"),
            ])
            .status()
            .unwrap();
        assert!(st.success());
        let app = c.host_id(1000);
        let st = Command::new("chown")
            .arg("-R")
            .arg(format!("{app}:{app}"))
            .args([c.rootfs.join("work"), c.rootfs.join("home/app")])
            .status()
            .unwrap();
        assert!(st.success());
        c
    }

    /// The host id of container id `id` (podman: 0 is the user, 1.. the
    /// subordinate range).
    fn host_id(&self, id: u32) -> u32 {
        if id == 0 {
            self.uid
        } else {
            SUB_START + id - 1
        }
    }

    /// A file in the container's `/work`.
    fn work(&self, rel: &str) -> PathBuf {
        self.rootfs.join("work").join(rel)
    }

    /// A Dockerfile context in `/work/NAME`, owned by container uid 1000.
    fn context(&self, name: &str, dockerfile: &str) {
        let dir = self.work(name);
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("Dockerfile"), dockerfile).unwrap();
        let app = self.host_id(1000);
        std::os::unix::fs::chown(&dir, Some(app), Some(app)).unwrap();
        std::os::unix::fs::chown(dir.join("Dockerfile"), Some(app), Some(app)).unwrap();
    }

    /// `podman run OPTS --rootfs ROOTFS sh -c SCRIPT` as the user, with
    /// runc, host ulimits (this VM refuses podman's defaults) and no
    /// network (slirp4netns needs /dev/net/tun). Runs are serialised: a
    /// user's first podman commands set up its storage and must not race.
    fn podman(&self, opts: &[&str], script: &str) -> Output {
        let mut c = Command::new("flock");
        c.args([
            "/run/lock/hoist-podman-run.lock",
            "runuser",
            "-u",
            USER,
            "--",
        ])
        .args([
            "env",
            "-i",
            "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
        ])
        .arg(format!("HOME=/home/{USER}"))
        .arg(format!("XDG_RUNTIME_DIR=/run/user/{}", self.uid))
        .args([
            "podman",
            "--runtime",
            "runc",
            "run",
            "--rm",
            "--network",
            "none",
        ])
        .args(["--ulimit", "host"])
        .args(opts)
        .arg("--rootfs")
        .arg(&self.rootfs)
        .args(["/bin/sh", "-c", script])
        .current_dir(&self.base);
        c.output()
            .expect("flock, runuser and podman (Debian packages util-linux, podman) run")
    }

    /// `podman` that must succeed; its stderr.
    fn ok(&self, opts: &[&str], script: &str) -> String {
        let out = self.podman(opts, script);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "podman {opts:?} {script:?} failed ({:?}):\n{}\n{stderr}",
            out.status,
            String::from_utf8_lossy(&out.stdout)
        );
        stderr
    }

    /// The owners of each layer of `/work/NAME.tar` (`hoist save`), bottom
    /// first: entry name → "uid/gid".
    fn layers(&self, name: &str) -> Vec<std::collections::BTreeMap<String, String>> {
        let unpacked = self.base.join(format!("saved-{name}"));
        std::fs::create_dir(&unpacked).unwrap();
        let st = Command::new("tar")
            .arg("-xf")
            .arg(self.work(&format!("{name}.tar")))
            .arg("-C")
            .arg(&unpacked)
            .status()
            .unwrap();
        assert!(st.success());
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(unpacked.join("manifest.json")).unwrap())
                .unwrap();
        manifest[0]["Layers"]
            .as_array()
            .expect("docker manifest.json")
            .iter()
            .map(|l| {
                let out = Command::new("tar")
                    .args(["--numeric-owner", "-tvf"])
                    .arg(unpacked.join(l.as_str().unwrap()))
                    .output()
                    .unwrap();
                assert!(out.status.success());
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .map(|line| {
                        let f: Vec<&str> = line.split_whitespace().collect();
                        (
                            f[f.len() - 1].trim_end_matches('/').to_string(),
                            f[1].to_string(),
                        )
                    })
                    .collect()
            })
            .collect()
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.work(rel)).unwrap_or_else(|e| panic!("/work/{rel}: {e}"))
    }
}

/// Build base:1 and then `/work/NAME` as `NAME:1` with `flags`, export it
/// to `/work/NAME-out`, save it to `/work/NAME.tar`. The store is
/// `/work/store` for a user, root's default for root.
fn build_script(name: &str, flags: &str) -> String {
    format!(
        "set -e; cd /work; export HOME=$(pwd); \
         hoist build -q -t base:1 base >/dev/null; \
         hoist build --progress=plain {flags} -t {name}:1 {name}; \
         hoist export {name}:1 -o type=local,dest=/work/{name}-out; \
         hoist save {name}:1 -o /work/{name}.tar"
    )
}

/// The isolation line of a build log.
fn isolation_line(log: &str) -> &str {
    log.lines()
        .find_map(|l| l.split_once(" isolation: ").map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("no isolation line:\n{log}"))
}

/// As container uid 1000: hoist's user namespace has a single id (no
/// ranges in the container's /etc/subuid); the container's /proc is
/// bound, its other processes hidden, the step cannot reach the
/// container's files through them; the layers are right.
#[test]
fn a_container_user_builds_run_steps_over_the_containers_proc() {
    let Some(uid) = user() else { return };
    let c = Container::new(uid);
    c.context(
        "app",
        "FROM base:1\n\
         RUN id -u > /u && echo hi > /hi && readlink /proc/self > /self\n\
         RUN for p in /proc/[0-9]*; do cat $p/root/work/secret; done > /seen 2>&1; \
             ls /proc | grep -c '^[0-9]' > /procs; cat /hi > /hi2\n",
    );
    let log = c.ok(
        &["--user", "1000:1000"],
        &format!(
            "echo hoist-container-secret > /work/secret; chmod 600 /work/secret; {}",
            build_script("app", "")
        ),
    );
    assert_eq!(
        isolation_line(&log),
        "rootless (user namespace, single id: 0→1000), mount/pid/ipc/uts namespaces, \
         /proc bound from hoist's (fresh /proc refused: EPERM; other processes present at a \
         step's start hidden), hostname not set (sethostname refused: EPERM), overlay",
        "{log}"
    );
    assert_eq!(
        log.matches(" isolation: ").count(),
        1,
        "one line per build: {log}"
    );
    assert_eq!(c.read("app-out/u"), "0\n", "root of hoist's user namespace");
    assert_eq!(c.read("app-out/hi2"), "hi\n");
    assert_ne!(
        c.read("app-out/self"),
        "",
        "/proc/self works in a bound /proc"
    );
    let seen = c.read("app-out/seen");
    assert!(
        !seen.contains("hoist-container-secret"),
        "a step read the container's files through /proc/PID/root: {seen}"
    );
    let layers = c.layers("app");
    assert_eq!(layers.len(), 3, "base and two RUN layers: {layers:?}");
    assert_eq!(layers[1].get("hi").map(String::as_str), Some("0/0"));
    assert_eq!(layers[2].get("hi2").map(String::as_str), Some("0/0"));
    for layer in &layers[1..] {
        for hidden in ["proc", "dev", "sys", "etc/hosts", "etc/resolv.conf"] {
            assert!(
                !layer.contains_key(hidden),
                "{hidden} in a layer: {layer:?}"
            );
        }
    }
}

/// As container root: hoist has no CAP_SYS_ADMIN, so it makes a user
/// namespace mapping every id of the container one to one: chown to 1000
/// and USER 1000 work, and reach the layers as 1000.
#[test]
fn container_root_maps_the_containers_ids() {
    let Some(uid) = user() else { return };
    let c = Container::new(uid);
    c.context(
        "app",
        "FROM base:1\n\
         RUN id -u > /u && touch /f && chown 1000:1000 /f\n\
         USER 1000\n\
         RUN id -u > /tmp/v\n",
    );
    let log = c.ok(&[], &build_script("app", ""));
    let line = isolation_line(&log);
    assert!(
        line.starts_with(
            "rootless (user namespace, container ids: 0→0, 1-131072→1-131072), \
                          mount/pid/ipc/uts namespaces, /proc bound from hoist's"
        ),
        "{line}"
    );
    assert_eq!(c.read("app-out/u"), "0\n");
    assert_eq!(c.read("app-out/tmp/v"), "1000\n");
    let layers = c.layers("app");
    assert_eq!(layers.len(), 3, "{layers:?}");
    assert_eq!(layers[1].get("f").map(String::as_str), Some("1000/1000"));
    assert_eq!(
        layers[2].get("tmp/v").map(String::as_str),
        Some("1000/1000")
    );
    // Root's default store: /var/lib/hoist of the container.
    assert!(c.rootfs.join("var/lib/hoist").is_dir());
}

/// `--isolation=rootless` asks for a fresh /proc: refused in a default
/// container before any step runs, with the reason and the remedies; with
/// podman's masks lifted (`--security-opt unmask=/proc/*`) it is had, and
/// said.
#[test]
fn explicit_modes_fail_saying_why_and_unmasking_gives_a_fresh_proc() {
    let Some(uid) = user() else { return };
    let c = Container::new(uid);
    c.context("app", "FROM base:1\nRUN echo x > /x\n");
    let out = c.podman(
        &["--user", "1000:1000"],
        &build_script("app", "--isolation=rootless"),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("--isolation=rootless needs a fresh /proc")
            && err.contains("unmask=/proc/*")
            && !err.contains("#2 [stage-0] RUN"),
        "{err}"
    );
    assert!(
        !err.contains(" isolation: "),
        "no line for a mode not had: {err}"
    );
    let out = c.podman(
        &["--user", "1000:1000"],
        &build_script("app", "--isolation=oci"),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() == Some(1) && err.contains("--isolation=oci needs hoist to run as root"),
        "{err}"
    );
    let log = c.ok(
        &["--user", "1000:1000", "--security-opt", "unmask=/proc/*"],
        &build_script("app", "--isolation=rootless"),
    );
    assert_eq!(
        isolation_line(&log),
        "rootless (user namespace, single id: 0→1000), mount/pid/ipc/uts namespaces, \
         fresh /proc, hostname not set (sethostname refused: EPERM), overlay"
    );
    assert_eq!(c.read("app-out/x"), "x\n");
}

/// `--isolation=chroot`: the step shares hoist's pid namespace (it is not
/// pid 1) and the container's /proc; a mount namespace still. What it
/// leaves running is killed when it ends (no pid namespace does that).
#[test]
fn chroot_isolation_shares_the_pid_namespace() {
    let Some(uid) = user() else { return };
    let c = Container::new(uid);
    c.context(
        "app",
        "FROM base:1\nRUN sleep 30 & readlink /proc/self > /self; echo done > /done\n",
    );
    let started = std::time::Instant::now();
    let log = c.ok(
        &["--user", "1000:1000"],
        &build_script("app", "--isolation=chroot"),
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "the step's background sleep outlived it: {:?}",
        started.elapsed()
    );
    assert_eq!(
        isolation_line(&log),
        "chroot (user namespace, single id: 0→1000), mount/ipc/uts namespaces, no pid \
         namespace (chroot isolation): steps signal and ptrace only their own processes \
         (Landlock scope), /proc bound from hoist's (other processes present at a step's start \
         hidden), hostname not set (sethostname refused: EPERM), overlay"
    );
    let pid: u32 = c.read("app-out/self").trim().parse().unwrap();
    assert!(
        pid > 2,
        "the step sees the container's pids, not its own namespace's: {pid}"
    );
    assert_eq!(c.read("app-out/done"), "done\n");
}

/// A container engine's profile that refuses `seccomp` and Landlock
/// (`EPERM`): the steps run without hoist's filter and, without a pid
/// namespace, without CAP_KILL, and the isolation line says both; the
/// steps still run.
#[test]
fn a_refused_seccomp_filter_and_landlock_scope_are_said_in_the_line() {
    let Some(uid) = user() else { return };
    let c = Container::new(uid);
    let mut profile: serde_json::Value =
        serde_json::from_slice(&std::fs::read("/usr/share/containers/seccomp.json").expect(
            "podman's default seccomp profile (Debian package golang-github-containers-common)",
        ))
        .unwrap();
    let refused = [
        "seccomp",
        "landlock_create_ruleset",
        "landlock_add_rule",
        "landlock_restrict_self",
    ];
    for rule in profile["syscalls"].as_array_mut().unwrap() {
        if let Some(names) = rule["names"].as_array_mut() {
            names.retain(|n| !refused.iter().any(|r| n == r));
        }
    }
    profile["syscalls"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "names": refused, "action": "SCMP_ACT_ERRNO", "errnoRet": 1
        }));
    let path = c.base.join("no-seccomp.json");
    std::fs::write(&path, serde_json::to_vec(&profile).unwrap()).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let seccomp = format!("seccomp={}", path.display());
    c.context("app", "FROM base:1\nRUN echo ok > /ok\n");
    let log = c.ok(
        &["--user", "1000:1000", "--security-opt", &seccomp],
        &build_script("app", ""),
    );
    assert_eq!(
        isolation_line(&log),
        "rootless (user namespace, single id: 0→1000), mount/pid/ipc/uts namespaces, /proc \
         bound from hoist's (fresh /proc refused: EPERM; other processes present at a step's \
         start hidden), hostname not set (sethostname refused: EPERM), no seccomp filter \
         (loading Docker's default profile refused: EPERM), overlay"
    );
    assert_eq!(c.read("app-out/ok"), "ok\n");
    c.context("chroot", "FROM base:1\nRUN echo ok > /ok\n");
    let log = c.ok(
        &["--user", "1000:1000", "--security-opt", &seccomp],
        &build_script("chroot", "--no-cache --isolation=chroot"),
    );
    assert_eq!(
        isolation_line(&log),
        "chroot (user namespace, single id: 0→1000), mount/ipc/uts namespaces, no pid \
         namespace (chroot isolation): steps may signal and ptrace the processes running as \
         their own uid, a root step hoist's and every other process of hoist's uid (no Landlock \
         signal scope: EPERM; CAP_KILL dropped), /proc bound from hoist's (other processes \
         present at a step's start hidden), hostname not set (sethostname refused: EPERM), no \
         seccomp filter (loading Docker's default profile refused: EPERM), overlay"
    );
    assert_eq!(c.read("chroot-out/ok"), "ok\n");
}

/// A seccomp profile that refuses `unshare` (Docker's default does, to a
/// container without CAP_SYS_ADMIN): no user namespace, no mount
/// namespace. `auto` refuses to build and names `--isolation=chroot`;
/// with it, root of the container builds in a plain chroot of a copy, and
/// nothing hoist put in the root for the step reaches the layer.
#[test]
fn without_namespaces_only_chroot_isolation_builds() {
    let Some(uid) = user() else { return };
    let c = Container::new(uid);
    let mut profile: serde_json::Value =
        serde_json::from_slice(&std::fs::read("/usr/share/containers/seccomp.json").expect(
            "podman's default seccomp profile (Debian package golang-github-containers-common)",
        ))
        .unwrap();
    for rule in profile["syscalls"].as_array_mut().unwrap() {
        if let Some(names) = rule["names"].as_array_mut() {
            names.retain(|n| n != "unshare");
        }
    }
    profile["syscalls"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "names": ["unshare"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1
        }));
    let path = c.base.join("no-unshare.json");
    std::fs::write(&path, serde_json::to_vec(&profile).unwrap()).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let seccomp = format!("seccomp={}", path.display());
    c.context(
        "app",
        "FROM base:1\nRUN id -u > /u && cat /etc/hosts > /hosts-seen && ls /proc > /procs 2>&1; \
         echo ok > /ok\n",
    );
    let out = c.podman(&["--security-opt", &seccomp], &build_script("app", ""));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("RUN needs a mount namespace")
            && err.contains("making a user namespace was refused (Operation not permitted")
            && err.contains("--isolation=chroot"),
        "{err}"
    );
    let log = c.ok(
        &["--security-opt", &seccomp],
        &build_script("app", "--isolation=chroot"),
    );
    assert_eq!(
        isolation_line(&log),
        "chroot (uid 0, user namespace refused: EPERM), no namespaces (refused: EPERM): steps \
         share hoist's mounts, network, IPC and hostname, and signal and ptrace only their own \
         processes (Landlock scope), no /proc, no /dev nodes, copy snapshotter (overlay \
         refused: no mount namespace)"
    );
    assert_eq!(c.read("app-out/u"), "0\n");
    assert_eq!(c.read("app-out/ok"), "ok\n");
    assert!(
        c.rootfs.join("var/lib/hoist").is_dir(),
        "root without a user namespace keeps root's store"
    );
    assert!(
        c.read("app-out/hosts-seen").contains("buildkitsandbox"),
        "the step's /etc/hosts is hoist's"
    );
    let layers = c.layers("app");
    assert_eq!(layers.len(), 2, "{layers:?}");
    let names: Vec<&String> = layers[1].keys().collect();
    assert_eq!(
        names,
        ["hosts-seen", "ok", "procs", "u"],
        "only the step's own files reach the layer"
    );
}

/// Outside any container the same modes, on the host: root gets `oci`
/// (and `chroot` when asked, in hoist's pid namespace), refuses
/// `rootless`; a user gets `rootless` with their subordinate ids and is
/// refused `oci`.
#[test]
fn on_the_host_each_mode_is_what_it_says() {
    let Some(uid) = user() else { return };
    let c = Container::new(uid);
    c.context("app", "FROM base:1\nRUN readlink /proc/self > /self\n");
    let hoist = |as_user: bool, store: &Path, args: &[&str]| -> Output {
        let mut cmd = if as_user {
            let mut s = Command::new("setpriv");
            s.args(["--reuid", USER, "--regid", USER, "--init-groups", "--"])
                .arg(c.rootfs.join("bin/hoist"))
                .env_clear()
                .env("PATH", "/usr/local/bin:/usr/bin:/bin")
                .env("HOME", &c.base);
            s
        } else {
            Command::new(env!("CARGO_BIN_EXE_hoist"))
        };
        cmd.arg("--root")
            .arg(store)
            .args(args)
            .current_dir(c.work(""));
        cmd.output().unwrap()
    };
    let ok = |as_user: bool, store: &Path, args: &[&str]| -> String {
        let out = hoist(as_user, store, args);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "hoist {args:?}: {err}");
        err
    };
    let root_store = c.base.join("root-store");
    ok(false, &root_store, &["build", "-q", "-t", "base:1", "base"]);
    let log = ok(
        false,
        &root_store,
        &["build", "--progress=plain", "--isolation=oci", "app"],
    );
    assert_eq!(
        isolation_line(&log),
        "oci (root, no user namespace), mount/pid/ipc/uts namespaces, fresh /proc, overlay"
    );
    let log = ok(
        false,
        &root_store,
        &[
            "build",
            "--progress=plain",
            "--no-cache",
            "--isolation=chroot",
            "app",
        ],
    );
    assert_eq!(
        isolation_line(&log),
        "chroot (root, no user namespace), mount/ipc/uts namespaces, no pid namespace (chroot \
         isolation): steps signal and ptrace only their own processes (Landlock scope), /proc \
         bound from hoist's (other processes present at a step's start hidden), overlay"
    );
    let out = hoist(
        false,
        &root_store,
        &["build", "--isolation=rootless", "app"],
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() == Some(1) && err.contains("use --isolation=oci or auto"),
        "{err}"
    );

    let user_store = c.base.join("user-store");
    std::fs::create_dir(&user_store).unwrap();
    std::os::unix::fs::chown(&user_store, Some(uid), Some(uid)).unwrap();
    ok(true, &user_store, &["build", "-q", "-t", "base:1", "base"]);
    let log = ok(true, &user_store, &["build", "--progress=plain", "app"]);
    assert_eq!(
        isolation_line(&log),
        format!(
            "rootless (user namespace, subids: 0→{uid}, 1-{SUB_COUNT}→{SUB_START}-{}), \
             mount/pid/ipc/uts namespaces, fresh /proc, overlay",
            SUB_START + SUB_COUNT - 1
        )
    );
    let out = hoist(true, &user_store, &["build", "--isolation=oci", "app"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() == Some(1) && err.contains("--isolation=oci needs hoist to run as root"),
        "{err}"
    );
}
