//! hoist run by an ordinary user ("rootless", as `buildah unshare`): hoist
//! re-executes itself as root of a user namespace whose ids come from
//! `/etc/subuid` and `/etc/subgid` through `newuidmap`/`newgidmap`.
//!
//! The tests run as root (CI) and make two real users: `hoist-rootless-test`
//! with the range 200000:65536 and `hoist-rootless-noids` with none. hoist
//! runs as them through `setpriv` (which execs, so the pid we hold is
//! hoist's). Without root they are skipped (they cannot make users).

use hoist_test_support::dockerd;
use hoist_test_support::users::{self, TestUser, id as id_of, is_root};

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const RANGED: &str = "hoist-rootless-test";
const NO_IDS: &str = "hoist-rootless-noids";
const SUB_START: u32 = 200_000;
const SUB_COUNT: u32 = 65_536;

/// Make both users and their sub-id lines (idempotent, under the lock
/// every test that edits them takes). `None` when not root.
fn users() -> Option<()> {
    if !is_root() {
        eprintln!("skipped: rootless tests make users and need root");
        return None;
    }
    users::make(
        &[
            TestUser::new(RANGED).subids(SUB_START, SUB_COUNT),
            TestUser::new(NO_IDS),
        ],
        "",
    );
    Some(())
}

/// A scratch area the users can reach: the hoist binary (linked or copied
/// where the user can execute it), a context owned by root, and a home
/// and an output directory owned by the user.
struct Area {
    _dir: tempfile::TempDir,
    base: PathBuf,
    bin: PathBuf,
    user: &'static str,
}

impl Area {
    fn new(user: &'static str) -> Area {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().to_path_buf();
        std::fs::set_permissions(&base, std::fs::Permissions::from_mode(0o755)).unwrap();
        // The target dir may sit where the user cannot go (/root/...).
        let bin = base.join("hoist");
        if std::fs::hard_link(env!("CARGO_BIN_EXE_hoist"), &bin).is_err() {
            std::fs::copy(env!("CARGO_BIN_EXE_hoist"), &bin).unwrap();
        }
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let (uid, gid) = (id_of(user, "-u"), id_of(user, "-g"));
        for d in ["home", "out"] {
            std::fs::create_dir(base.join(d)).unwrap();
            std::os::unix::fs::chown(base.join(d), Some(uid), Some(gid)).unwrap();
        }
        Area {
            _dir: dir,
            base,
            bin,
            user,
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.base.join(rel)
    }

    fn store(&self) -> PathBuf {
        self.path("out/store")
    }

    /// A context (owned by root, readable by all).
    fn context(&self, name: &str, files: &[(&str, &str)]) -> PathBuf {
        let ctx = self.path(name);
        std::fs::create_dir(&ctx).unwrap();
        for (file, body) in files {
            std::fs::write(ctx.join(file), body).unwrap();
            std::fs::set_permissions(ctx.join(file), std::fs::Permissions::from_mode(0o644))
                .unwrap();
        }
        std::fs::set_permissions(&ctx, std::fs::Permissions::from_mode(0o755)).unwrap();
        ctx
    }

    /// `hoist ARGS` as the user, with a clean environment and HOME in the area.
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("setpriv");
        c.args([
            "--reuid",
            self.user,
            "--regid",
            self.user,
            "--init-groups",
            "--",
        ])
        .arg(&self.bin)
        .args(args)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
        .env("HOME", self.path("home"))
        .current_dir(&self.base);
        c
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("setpriv runs")
    }

    /// `hoist --root STORE ARGS` as the user; must succeed; its stderr.
    fn ok(&self, args: &[&str]) -> String {
        let store = self.store();
        let mut all = vec!["--root", store.to_str().unwrap()];
        all.extend_from_slice(args);
        let out = self.run(&all);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "hoist {args:?} as {} failed ({:?}):\n{stderr}",
            self.user,
            out.status
        );
        stderr
    }
}

/// The owners in each layer of `image` as the user's `hoist save` writes
/// it, bottom first: entry name → "uid/gid" (`tar --numeric-owner -tv`).
fn layer_owners(area: &Area, image: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    let name = image.replace(':', "-");
    let archive = area.path(&format!("out/{name}.tar"));
    area.ok(&["save", image, "-o", archive.to_str().unwrap()]);
    let unpacked = area.path(&format!("saved-{name}"));
    std::fs::create_dir(&unpacked).unwrap();
    let st = Command::new("tar")
        .arg("-xf")
        .arg(&archive)
        .arg("-C")
        .arg(&unpacked)
        .status()
        .unwrap();
    assert!(st.success());
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(unpacked.join("manifest.json")).unwrap()).unwrap();
    let layers = manifest[0]["Layers"]
        .as_array()
        .expect("docker manifest.json");
    layers
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
                    (f[f.len() - 1].to_string(), f[1].to_string())
                })
                .collect()
        })
        .collect()
}

/// Every path under `dir` (not following symlinks) with its owner.
fn owners(dir: &Path) -> Vec<(PathBuf, u32, u32)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        let m = std::fs::symlink_metadata(&p).unwrap();
        out.push((p.clone(), m.uid(), m.gid()));
        if m.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
        }
    }
    out
}

const CHOWN_DOCKERFILE: &str = "FROM scratch\nCOPY --chown=1000:1000 f /f\nCOPY g /g\n";

#[test]
fn rootless_build_with_subordinate_ids_keeps_chown_and_the_store_is_the_users() {
    if users().is_none() {
        return;
    }
    let area = Area::new(RANGED);
    let ctx = area.context(
        "ctx",
        &[("Dockerfile", CHOWN_DOCKERFILE), ("f", "f\n"), ("g", "g\n")],
    );
    let log = area.ok(&["build", "-t", "rootless:a", ctx.to_str().unwrap()]);
    assert!(!log.contains("warning"), "a user with ranges: {log}");

    let layers = layer_owners(&area, "rootless:a");
    assert_eq!(layers.len(), 2);
    assert_eq!(layers[0].get("f").map(String::as_str), Some("1000/1000"));
    assert_eq!(layers[1].get("g").map(String::as_str), Some("0/0"));

    // On the host: the user (container 0) or a subordinate id, never root.
    let (uid, gid) = (id_of(RANGED, "-u"), id_of(RANGED, "-g"));
    let sub = SUB_START..SUB_START + SUB_COUNT;
    let all = owners(&area.store());
    for (path, u, g) in &all {
        assert!(
            (*u == uid || sub.contains(u)) && (*g == gid || sub.contains(g)),
            "{} is owned by {u}:{g}",
            path.display()
        );
    }
    // Unpacking chowns inside the namespace: container 1000:1000 is host
    // SUB_START + 999, container 0 the user.
    let fs = rootfs(&area, "rootless:a");
    let mapped = SUB_START + 1000 - 1;
    let f = std::fs::symlink_metadata(fs.join("f")).unwrap();
    assert_eq!((f.uid(), f.gid()), (mapped, mapped));
    let g = std::fs::symlink_metadata(fs.join("g")).unwrap();
    assert_eq!((g.uid(), g.gid()), (uid, gid));
}

#[test]
fn rootless_default_store_is_the_users_not_var_lib() {
    if users().is_none() {
        return;
    }
    let area = Area::new(RANGED);
    // Inside, the euid is 0: the engine alone would pick /var/lib/hoist.
    let out = area.run(&["images"]);
    assert!(out.status.success(), "{out:?}");
    let store = area.path("home/.local/share/hoist");
    let meta = std::fs::metadata(store.join("version")).expect("store under ~/.local/share");
    assert_eq!(meta.uid(), id_of(RANGED, "-u"));
    let xdg = area.path("out/xdg");
    let out = area
        .command(&["images"])
        .env("XDG_DATA_HOME", &xdg)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(xdg.join("hoist/version").is_file(), "$XDG_DATA_HOME/hoist");
}

/// Buildah in the single-id case fails both ways: its copier lchowns a
/// `COPY --chown` on disk (EINVAL: "copier: put: error setting ownership")
/// and containers/storage refuses layers with unmapped owners unless
/// `ignore_chown_errors` is set. hoist writes a `COPY` layer straight from
/// the context, so `--chown=1000:1000` is recorded exactly as asked; where
/// the files must be on disk (a snapshot, `export -o type=local`) an
/// unmapped owner stays the user's, with a warning, as
/// `ignore_chown_errors` does. So the build succeeds (deliberately).
#[test]
fn rootless_without_ranges_maps_one_id_warns_and_builds() {
    if users().is_none() {
        return;
    }
    let area = Area::new(NO_IDS);
    let ctx = area.context(
        "ctx",
        &[("Dockerfile", CHOWN_DOCKERFILE), ("f", "f\n"), ("g", "g\n")],
    );
    let log = area.ok(&["build", "-t", "rootless:b", ctx.to_str().unwrap()]);
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains("warning")).collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(
        warnings[0].contains("only your own id is mapped")
            && warnings[0].contains("no ranges in /etc/subuid"),
        "{log}"
    );
    let layers = layer_owners(&area, "rootless:b");
    assert_eq!(layers[0].get("f").map(String::as_str), Some("1000/1000"));

    let (uid, gid) = (id_of(NO_IDS, "-u"), id_of(NO_IDS, "-g"));
    for (path, u, g) in owners(&area.store()) {
        assert_eq!((u, g), (uid, gid), "{}", path.display());
    }
    let dest = area.path("out/rootfs-b");
    let log = area.ok(&[
        "export",
        "rootless:b",
        "-o",
        &format!("type=local,dest={}", dest.display()),
    ]);
    assert!(
        log.contains("owner 1000:1000 is not mapped in this user namespace"),
        "{log}"
    );
    let f = std::fs::symlink_metadata(dest.join("f")).unwrap();
    assert_eq!((f.uid(), f.gid()), (uid, gid));
    assert_eq!(std::fs::read_to_string(dest.join("f")).unwrap(), "f\n");

    // Without --chown nothing needs another id.
    let plain = area.context(
        "plain",
        &[("Dockerfile", "FROM scratch\nCOPY g /g\n"), ("g", "g\n")],
    );
    area.ok(&["build", "-t", "rootless:plain", plain.to_str().unwrap()]);
}

#[test]
fn rootless_device_nodes_are_skipped_with_a_warning() {
    if users().is_none() {
        return;
    }
    let area = Area::new(RANGED);
    let ctx = area.context(
        "ctx",
        &[
            ("Dockerfile", "FROM scratch\nCOPY null /null\nCOPY g /g\n"),
            ("g", "g\n"),
        ],
    );
    let st = Command::new("mknod")
        .arg(ctx.join("null"))
        .args(["c", "1", "3"])
        .status()
        .unwrap();
    assert!(st.success());
    // The layer records the device; a snapshot or an export cannot make it
    // (EPERM in a user namespace) and skips it, as Buildah does.
    area.ok(&["build", "-t", "rootless:dev", ctx.to_str().unwrap()]);
    let layers = layer_owners(&area, "rootless:dev");
    assert!(layers[0].contains_key("null"), "{layers:?}");
    let dest = area.path("out/rootfs");
    let log = area.ok(&[
        "export",
        "rootless:dev",
        "-o",
        &format!("type=local,dest={}", dest.display()),
    ]);
    assert!(log.contains("device node skipped"), "{log}");
    assert!(!dest.join("null").exists());
    assert!(dest.join("g").is_file());
}

#[test]
fn rootless_exit_code_is_the_childs() {
    if users().is_none() {
        return;
    }
    let area = Area::new(RANGED);
    let ctx = area.context(
        "ctx",
        &[("Dockerfile", "FROM scratch\nNOTANINSTRUCTION x\n")],
    );
    let store = area.store();
    let out = area.run(&[
        "--root",
        store.to_str().unwrap(),
        "build",
        ctx.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("NOTANINSTRUCTION"),
        "the child's error reaches the user: {out:?}"
    );
    // clap's usage error is 2.
    assert_eq!(area.run(&["no-such-command"]).status.code(), Some(2));
    let out = area.run(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("hoist "));
}

/// The pids whose parent is `pid`.
fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        // pid (comm) state ppid …; comm may hold spaces.
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let ppid: u32 = after.split(' ').nth(1).unwrap().parse().unwrap();
        if ppid == pid {
            out.push(p);
        }
    }
    out
}

/// Gone, or a zombie nobody has reaped yet.
fn dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat[stat.rfind(')').unwrap() + 2..].starts_with('Z'),
    }
}

fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "timed out: {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `hoist load` as the user, blocked reading stdin (held open by the
/// returned handle); its re-executed child's pid (in the user namespace).
fn blocked_hoist(area: &Area) -> (std::process::Child, std::process::ChildStdin, u32) {
    let store = area.store();
    let mut parent = area
        .command(&["--root", store.to_str().unwrap(), "load"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdin = parent.stdin.take().unwrap();
    let pid = parent.id();
    let child = wait_for("the re-executed child", || {
        let c = children(pid);
        let c = *c.first()?;
        // Mapped once its uid_map has the sub-id line.
        let map = std::fs::read_to_string(format!("/proc/{c}/uid_map")).ok()?;
        (map.lines().count() == 2).then_some(c)
    });
    (parent, stdin, child)
}

#[test]
fn rootless_signals_reach_the_child_and_nothing_is_left() {
    if users().is_none() {
        return;
    }
    let area = Area::new(RANGED);
    let uid = id_of(RANGED, "-u");

    // SIGTERM to the parent: passed on; the parent exits with 128 + 15.
    let (mut parent, stdin, child) = blocked_hoist(&area);
    let map = std::fs::read_to_string(format!("/proc/{child}/uid_map")).unwrap();
    let lines: Vec<Vec<u32>> = map
        .lines()
        .map(|l| l.split_whitespace().map(|n| n.parse().unwrap()).collect())
        .collect();
    assert_eq!(
        lines,
        vec![vec![0, uid, 1], vec![1, SUB_START, SUB_COUNT]],
        "container 0 = the user, 1..=65536 = the range"
    );
    let status = std::fs::read_to_string(format!("/proc/{child}/status")).unwrap();
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("CapEff:") && !l.ends_with("0000000000000000")),
        "the child is root (with capabilities) in its namespace: {status}"
    );
    Command::new("kill")
        .args(["-TERM", &parent.id().to_string()])
        .status()
        .unwrap();
    let status = parent.wait().unwrap();
    assert_eq!(status.code(), Some(128 + 15), "{status:?}");
    assert!(dead(child), "the child was reaped by the parent");
    drop(stdin);

    // SIGKILL to the parent (nothing to pass on): the child dies with it.
    let (mut parent, stdin, child) = blocked_hoist(&area);
    parent.kill().unwrap();
    parent.wait().unwrap();
    wait_for("the child to die with its parent", || {
        dead(child).then_some(())
    });
    drop(stdin);
    assert!(children(child).iter().all(|&p| dead(p)));
}

/// A busybox base (`FROM scratch` + `COPY rootfs/ /`: Debian's static
/// `/bin/busybox` with applet links, `/etc/passwd`, `/etc/group`, `/tmp`),
/// built as the user into the area's store as `base:1`.
fn busybox_base(area: &Area) {
    let ctx = area.context("base", &[("Dockerfile", "FROM scratch\nCOPY rootfs/ /\n")]);
    let bin = ctx.join("rootfs/bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy("/bin/busybox", bin.join("busybox"))
        .expect("/bin/busybox (Debian busybox-static) is installed");
    for applet in [
        "sh", "id", "touch", "chown", "cat", "mknod", "echo", "true", "rm", "mkdir",
    ] {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
    }
    let etc = ctx.join("rootfs/etc");
    std::fs::create_dir(&etc).unwrap();
    std::fs::write(
        etc.join("passwd"),
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(etc.join("group"), "root:x:0:\napp:x:1000:\n").unwrap();
    std::fs::create_dir(ctx.join("rootfs/tmp")).unwrap();
    std::fs::set_permissions(
        ctx.join("rootfs/tmp"),
        std::fs::Permissions::from_mode(0o1777),
    )
    .unwrap();
    let st = Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(&ctx)
        .status()
        .unwrap();
    assert!(st.success());
    area.ok(&["build", "-q", "-t", "base:1", ctx.to_str().unwrap()]);
}

/// The image's root filesystem, exported as the user.
fn rootfs(area: &Area, image: &str) -> PathBuf {
    let dest = area.path(&format!("out/rootfs-{}", image.replace(':', "-")));
    area.ok(&[
        "export",
        image,
        "-o",
        &format!("type=local,dest={}", dest.display()),
    ]);
    dest
}

#[test]
fn rootless_run_steps_are_root_of_the_namespace_and_other_ids_reach_the_layer() {
    if users().is_none() {
        return;
    }
    let area = Area::new(RANGED);
    busybox_base(&area);
    let ctx = area.context(
        "run",
        &[(
            "Dockerfile",
            "FROM base:1\nRUN id -u > /u && id -g >> /u && touch /f && chown 1000:1000 /f\n\
             USER 1000\nRUN id -u > /tmp/v\n",
        )],
    );
    area.ok(&["build", "-t", "run:1", ctx.to_str().unwrap()]);
    let fs = rootfs(&area, "run:1");
    assert_eq!(
        std::fs::read_to_string(fs.join("u")).unwrap(),
        "0\n0\n",
        "the step runs as root of the namespace"
    );
    assert_eq!(std::fs::read_to_string(fs.join("tmp/v")).unwrap(), "1000\n");
    let layers = layer_owners(&area, "run:1");
    assert_eq!(layers.len(), 3, "base and two RUN layers: {layers:?}");
    assert_eq!(layers[1].get("u").map(String::as_str), Some("0/0"));
    assert_eq!(
        layers[1].get("f").map(String::as_str),
        Some("1000/1000"),
        "a subordinate id chowned to in RUN is container id 1000 in the layer"
    );
    assert_eq!(
        layers[2].get("tmp/v").map(String::as_str),
        Some("1000/1000"),
        "USER 1000 is a mapped id"
    );
}

#[test]
fn rootless_run_without_ranges_is_root_of_a_one_id_namespace() {
    if users().is_none() {
        return;
    }
    // Buildah with a single-id map runs steps as root too (its chroot
    // isolation), and fails a step that needs any other id.
    let area = Area::new(NO_IDS);
    busybox_base(&area);
    let ctx = area.context(
        "run",
        &[("Dockerfile", "FROM base:1\nRUN id -u > /u && touch /f\n")],
    );
    area.ok(&["build", "-t", "run:1", ctx.to_str().unwrap()]);
    let fs = rootfs(&area, "run:1");
    assert_eq!(std::fs::read_to_string(fs.join("u")).unwrap(), "0\n");
    let layers = layer_owners(&area, "run:1");
    assert_eq!(layers[1].get("f").map(String::as_str), Some("0/0"));
    let ctx = area.context(
        "run-other",
        &[("Dockerfile", "FROM base:1\nUSER 1000\nRUN id -u > /tmp/v\n")],
    );
    let store = area.store();
    let out = area.run(&[
        "--root",
        store.to_str().unwrap(),
        "build",
        ctx.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "USER 1000 has no id here: {out:?}"
    );
}

/// The escape attempts of the sandbox's own tests, rootless: a file on the
/// host the user could read is not reachable from a step through `..`,
/// `/proc/self/root`, `/proc/1/root` or `/proc/1/cwd`; a device node cannot
/// be made; the step's `/proc/sys` is read-only.
#[test]
fn rootless_steps_cannot_reach_the_host() {
    if users().is_none() {
        return;
    }
    let area = Area::new(RANGED);
    busybox_base(&area);
    let marker = format!("hoist-rootless-marker-{}", std::process::id());
    let host_file = area.path("marker.txt");
    std::fs::write(&host_file, &marker).unwrap();
    std::fs::set_permissions(&host_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let p = host_file.display();
    let script = format!(
        "for f in {p} /..{p} /../../..{p} /proc/self/root{p} /proc/self/root/..{p} \
         /proc/1/root{p} /proc/1/cwd/..{p}; do cat $f 2>/dev/null; done > /seen; \
         (mknod /tmp/null c 1 3 2>/dev/null && echo mknod-ok || echo mknod-refused) > /dev-node; \
         (echo x > /proc/sys/kernel/hostname 2>/dev/null && echo sys-writable || echo sys-ro) > /sys-state"
    );
    let ctx = area.context(
        "escape",
        &[("Dockerfile", &format!("FROM base:1\nRUN {script}\n"))],
    );
    area.ok(&["build", "-t", "escape:1", ctx.to_str().unwrap()]);
    let fs = rootfs(&area, "escape:1");
    let seen = std::fs::read_to_string(fs.join("seen")).unwrap();
    assert!(
        !seen.contains(&marker),
        "a rootless step read a host file: {seen}"
    );
    assert_eq!(
        std::fs::read_to_string(fs.join("dev-node")).unwrap(),
        "mknod-refused\n"
    );
    assert_eq!(
        std::fs::read_to_string(fs.join("sys-state")).unwrap(),
        "sys-ro\n"
    );
}

/// Docker's seccomp profile holds rootless too: what the kernel gives root
/// of hoist's user namespace (a nested user namespace, a keyring, an
/// io_uring, a user-mode userfaultfd) a step gets only with
/// `--security=insecure`.
#[test]
fn rootless_steps_get_dockers_seccomp_profile() {
    if users().is_none() {
        return;
    }
    let area = Area::new(RANGED);
    busybox_base(&area);
    let ctx = area.context(
        "seccomp",
        &[(
            "Dockerfile",
            "FROM base:1\nCOPY syscalls /bin/syscalls\nRUN syscalls > /filtered\n\
             RUN --security=insecure syscalls > /insecure\n",
        )],
    );
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/sandbox/tests/support/syscalls.c");
    let st = Command::new("gcc")
        .args(["-static", "-O1", "-o"])
        .arg(ctx.join("syscalls"))
        .arg(&src)
        .arg("-lpthread")
        .status()
        .expect("gcc (with libc6-dev's static libc) is needed");
    assert!(st.success());
    std::fs::set_permissions(ctx.join("syscalls"), std::fs::Permissions::from_mode(0o755)).unwrap();
    area.ok(&[
        "build",
        "--allow",
        "security.insecure",
        "-t",
        "seccomp:1",
        ctx.to_str().unwrap(),
    ]);
    let fs = rootfs(&area, "seccomp:1");
    let read = |f: &str| std::fs::read_to_string(fs.join(f)).unwrap();
    let (filtered, insecure) = (read("filtered"), read("insecure"));
    for name in ["unshare-user", "keyctl", "io_uring_setup", "userfaultfd"] {
        assert!(
            insecure.contains(&format!("{name} ok\n")),
            "the kernel refuses {name} to a rootless step itself: {insecure}"
        );
        assert!(
            filtered.contains(&format!("{name} EPERM\n")),
            "{name} under the filter: {filtered}"
        );
    }
    assert!(filtered.ends_with("ordinary ok\n"), "{filtered}");
}

/// With a single-id map a step whose USER is not mapped fails, and the
/// message says why (not "Invalid argument").
#[test]
fn rootless_single_id_map_names_the_unmapped_user() {
    if users().is_none() {
        return;
    }
    let area = Area::new(NO_IDS);
    busybox_base(&area);
    let ctx = area.context(
        "unmapped",
        &[("Dockerfile", "FROM base:1\nUSER 1000\nRUN true\n")],
    );
    let store = area.store();
    let out = area.run(&[
        "--root",
        store.to_str().unwrap(),
        "build",
        ctx.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not mapped") && err.contains("/etc/subuid") && err.contains("Dockerfile:3"),
        "{err}"
    );
}

/// Issue 12's reproduction, rootless: after `prune` the cached build
/// unpacks the `RUN` diffs again from their blobs in overlayfs's format,
/// marking the opaque directory with `user.overlay.opaque`. Failed with
/// `marking an overlay opaque directory "etc/foo/.wh..wh..opq": Bad file
/// descriptor` (the xattr was set through an `O_PATH` descriptor).
#[test]
fn rootless_cached_rebuild_after_prune_unpacks_opaque_dirs() {
    if users().is_none() {
        return;
    }
    let area = Area::new(RANGED);
    busybox_base(&area);
    let ctx = area.context(
        "opq",
        &[(
            "Dockerfile",
            "FROM base:1 AS build\n\
             RUN mkdir -p /etc/foo && touch /etc/foo/a\n\
             RUN rm -rf /etc/foo && mkdir /etc/foo && touch /etc/foo/b\n\
             ARG N=1\n\
             RUN echo $N > /n\n\
             FROM base:1\n\
             COPY --from=build /n /etc/foo /out/\n",
        )],
    );
    let ctx = ctx.to_str().unwrap();
    area.ok(&["build", "-q", "-t", "opq:1", ctx]);
    area.ok(&["prune", "--force"]);
    area.ok(&["build", "-q", "-t", "opq:2", "--build-arg", "N=2", ctx]);
    let fs = rootfs(&area, "opq:2");
    assert_eq!(std::fs::read_to_string(fs.join("out/n")).unwrap(), "2\n");
    assert!(fs.join("out/b").exists());
    assert!(!fs.join("out/a").exists(), "the opaque dir hid /etc/foo/a");
    area.ok(&["store", "check"]);
}

#[test]
fn rootless_load_reaches_a_docker_socket_the_user_may_use() {
    // `--load` from hoist's user namespace: the socket is reached with the
    // user's own credentials (here a private dockerd's socket given to the
    // user, as docker's group gives /var/run/docker.sock).
    if users().is_none() {
        return;
    }
    let area = Area::new(RANGED);
    let ctx = area.context(
        "ctx",
        &[("Dockerfile", "FROM scratch\nCOPY f /f\n"), ("f", "f\n")],
    );
    let engine = dockerd::Dockerd::start();
    let (uid, gid) = (id_of(RANGED, "-u"), id_of(RANGED, "-g"));
    std::os::unix::fs::chown(engine.socket(), Some(uid), Some(gid)).unwrap();
    let store = area.store();
    let out = area
        .command(&[
            "--root",
            store.to_str().unwrap(),
            "build",
            "--load",
            "-t",
            "rootless-load:1",
            ctx.to_str().unwrap(),
        ])
        .env("DOCKER_HOST", engine.host())
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("loading image into docker"), "{log}");
    let listed = engine.ok(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(listed.contains("rootless-load:1"), "{listed}");
}
