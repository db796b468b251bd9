//! The store after maintenance: builds interleaved with `prune`, `prune
//! --all`, `rmi`, killed builds and damage, each followed by builds with
//! and without the cache (which must agree) and a `store check` that must
//! be clean; damage `store check` finds, `--repair` fixes. And builds
//! running while a prune waits: they hold their lease from resolving
//! their base to naming their image, so what they reuse stays and the
//! names they set survive `prune --all`.
//!
//! Real parts only: the built `hoist` binary on a registry-free busybox
//! base (`hoist_test_support::lab`), run as root.

use hoist_test_support::{bin, lab};

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use lab::{Lab, read, write};

/// Layers with opaque directories (a directory removed and made again in
/// a later `RUN`), whiteouts, hardlinks, a fifo, a setuid file, a socket
/// (from the context) and xattrs (from an `ADD`ed tar); `N` changes only
/// the last step of the first stage. The first `RUN` unpacks the base
/// whole (kept by its name through `prune`); the layers above it are
/// `RUN` diffs or layers unpacked alone in overlayfs's format.
const DOCKERFILE: &str = r#"FROM base:1 AS build
RUN mkdir -p /etc/foo /d && touch /etc/foo/a /d/gone && echo h > /d/h1 && chmod 4755 /d/h1 && mkfifo /d/fifo
ADD x.tar /x/
COPY sock/ /s/
RUN rm -rf /etc/foo /d/gone && mkdir /etc/foo && touch /etc/foo/b && ln /d/h1 /d/h2
ARG N=1
RUN echo $N > /n
FROM base:1
COPY --from=build /n /etc/foo /out/
COPY --from=build /d /out/d/
COPY --from=build /x /out/x/
RUN test -e /out/b && ! test -e /out/a && test -p /out/d/fifo
"#;

fn context(lab: &Lab) -> PathBuf {
    let ctx = lab.path("ctx");
    write(&ctx, &[("Dockerfile", DOCKERFILE)]);
    // A tar whose file carries a user xattr (PAX `SCHILY.xattr.`).
    let mut tar = tar::Builder::new(Vec::new());
    tar.append_pax_extensions([("SCHILY.xattr.user.hoist", &b"kept"[..])])
        .unwrap();
    let mut header = tar::Header::new_ustar();
    header.set_size(2);
    header.set_mode(0o644);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, "f", &b"x\n"[..]).unwrap();
    std::fs::write(ctx.join("x.tar"), tar.into_inner().unwrap()).unwrap();
    std::fs::create_dir_all(ctx.join("sock")).unwrap();
    let sock = ctx.join("sock/s");
    if !sock.exists() {
        let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        std::mem::forget(listener);
    }
    ctx
}

/// Build the sequence image with `N`, with and without the cache; the
/// two results must hold the same files, as the Dockerfile says.
fn build_both(lab: &Lab, ctx: &Path, n: u32, tag: &str) {
    let arg = format!("N={n}");
    let ctx = ctx.to_str().unwrap();
    for extra in [&[][..], &["--no-cache"][..]] {
        let mut args = vec!["build", "-q", "-t", tag, "--build-arg", &arg];
        args.extend_from_slice(extra);
        args.push(ctx);
        let out = lab.hoist(&args);
        assert!(
            out.status.success(),
            "hoist {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let root = lab.rootfs(tag);
        let out = root.join("out");
        assert_eq!(read(&out.join("n")), format!("{n}\n"), "{args:?}");
        assert!(
            out.join("b").exists() && !out.join("a").exists(),
            "{args:?}"
        );
        let h1 = std::fs::symlink_metadata(out.join("d/h1")).unwrap();
        assert_eq!(h1.permissions().mode() & 0o7777, 0o4755, "{args:?}");
        assert!(out.join("d/h2").exists() && !out.join("d/gone").exists());
        let fifo = std::fs::symlink_metadata(out.join("d/fifo")).unwrap();
        assert!(fifo.file_type().is_fifo(), "{args:?}");
        assert_eq!(read(&out.join("x/f")), "x\n");
        std::fs::remove_dir_all(&root).unwrap();
    }
}

/// `store check` must say the store is consistent.
fn check_clean(lab: &Lab, after: &str) {
    let out = lab.hoist(&["store", "check"]);
    assert!(
        out.status.success(),
        "store check after {after}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The base image again after `prune --all` removed it.
fn rebuild_base(lab: &Lab) {
    let ctx = lab.path("base-base-1");
    lab.ok(&["build", "-q", "-t", "base:1", ctx.to_str().unwrap()]);
}

/// Every file below `dir` (deepest trees first).
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

/// The issue's reproduction: a cached rebuild after `prune` unpacks the
/// pruned `RUN` diffs again from their blobs, in overlay format, with an
/// opaque directory. Failed with `marking an overlay opaque directory
/// "etc/foo/.wh..wh..opq": Bad file descriptor`.
#[test]
fn store_cached_rebuild_after_prune_unpacks_opaque_dirs() {
    let lab = Lab::new(bin!());
    let ctx = lab.path("opq");
    write(
        &ctx,
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
    lab.ok(&["build", "-q", "-t", "opq:1", ctx]);
    lab.ok(&["prune", "--force"]);
    lab.ok(&["build", "-q", "-t", "opq:2", "--build-arg", "N=2", ctx]);
    let root = lab.rootfs("opq:2");
    assert_eq!(read(&root.join("out/n")), "2\n");
    assert!(root.join("out/b").exists());
    assert!(
        !root.join("out/a").exists(),
        "the opaque dir hid /etc/foo/a"
    );
    check_clean(&lab, "the rebuild");
}

#[test]
fn store_sequence_of_builds_prunes_removals_kills_and_damage() {
    let lab = Lab::new(bin!());
    let ctx = context(&lab);

    build_both(&lab, &ctx, 1, "seq:1");
    check_clean(&lab, "the first builds");

    // Unreferenced diffs and snapshots go; the cached build unpacks them
    // again from blobs.
    lab.ok(&["prune", "--force"]);
    check_clean(&lab, "prune");
    build_both(&lab, &ctx, 2, "seq:2");

    // The image gone, then everything unreferenced.
    lab.ok(&["rmi", "seq:1"]);
    lab.ok(&["prune", "--force"]);
    check_clean(&lab, "rmi and prune");
    build_both(&lab, &ctx, 3, "seq:3");

    // Everything gone, the base too.
    lab.ok(&["prune", "--all", "--force"]);
    check_clean(&lab, "prune --all");
    rebuild_base(&lab);
    build_both(&lab, &ctx, 4, "seq:4");

    // A build killed in a RUN step (its earlier steps committed).
    let gate = Gate::new(&lab, "kill");
    let mut child = gate.spawn_build("killed:1", Some("FROM seq:4\n"));
    gate.wait_started(&mut child);
    child.kill().unwrap();
    child.wait().unwrap();
    check_clean(&lab, "a killed build");
    build_both(&lab, &ctx, 5, "seq:5");
    lab.ok(&["prune", "--force"]);
    check_clean(&lab, "prune after a killed build");
    build_both(&lab, &ctx, 5, "seq:5");

    // Damage a build would trip on: a tree that lost a file, a
    // non-directory in place of a tree, a corrupt path index. Check finds
    // each, repair removes them, the builds make them again.
    let store = &lab.root;
    let diffs: Vec<PathBuf> = std::fs::read_dir(store.join("diffs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let victim = diffs
        .iter()
        .find(|d| !files(d).is_empty())
        .expect("a RUN diff with files");
    std::fs::remove_file(&files(victim)[0]).unwrap();
    let fake = store.join("snapshots").join(format!("{:064x}", 7));
    std::fs::write(&fake, "not a tree").unwrap();
    let index = std::fs::read_dir(store.join("indexes"))
        .unwrap()
        .next()
        .expect("a path index")
        .unwrap()
        .path();
    let mut bytes = std::fs::read(&index).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&index, bytes).unwrap();

    let out = lab.hoist(&["store", "check"]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(!out.status.success(), "damage found:\n{text}");
    assert!(
        text.contains("bad-tree") && text.contains("bad-index"),
        "{text}"
    );
    for path in [victim, &fake, &index] {
        let name = path.file_name().unwrap().to_str().unwrap();
        assert!(text.contains(name), "{name} reported:\n{text}");
    }
    let (repaired, _) = lab.ok(&["store", "check", "--repair"]);
    assert!(repaired.contains("repaired: removed"), "{repaired}");
    assert!(!victim.exists() && !fake.exists() && !index.exists());
    check_clean(&lab, "repair");
    build_both(&lab, &ctx, 6, "seq:6");
    check_clean(&lab, "the last builds");
}

/// A `RUN` step that waits for the test: it says it started (a file in a
/// cache mount) and runs until the test makes `go` there.
struct Gate {
    ctx: PathBuf,
    root: PathBuf,
}

impl Gate {
    fn new(lab: &Lab, name: &str) -> Gate {
        let ctx = lab.path(&format!("gate-{name}"));
        std::fs::create_dir_all(&ctx).unwrap();
        Gate {
            ctx,
            root: lab.root.clone(),
        }
    }

    /// `hoist build -t TAG` of `from` plus the waiting step, started.
    fn spawn_build(&self, tag: &str, from: Option<&str>) -> Child {
        let from = from.unwrap_or("FROM base:1\n");
        let id = self.ctx.file_name().unwrap().to_str().unwrap();
        let df = format!(
            "{from}ARG R\n\
             RUN --mount=type=cache,target=/gate,id={id} \
             echo $R > /r && touch /gate/started && while ! test -e /gate/go; do sleep 0.05; done\n\
             RUN echo after > /after\n"
        );
        std::fs::write(self.ctx.join("Dockerfile"), df).unwrap();
        Command::new(env!("CARGO_BIN_EXE_hoist"))
            .arg("--root")
            .arg(&self.root)
            .args(["build", "-q", "-t", tag, "--build-arg"])
            .arg(format!("R={tag}"))
            .arg(&self.ctx)
            .env_remove("SOURCE_DATE_EPOCH")
            .env_remove("HOIST_ROOT")
            .env("DOCKER_CONFIG", self.root.join("docker-config"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// The gate directory in the store's cache mounts, once the step made
    /// `started` in it; fails if the build ends first.
    fn wait_started(&self, build: &mut Child) -> PathBuf {
        loop {
            if let Ok(dirs) = std::fs::read_dir(self.root.join("cache-mounts")) {
                for d in dirs {
                    let d = d.unwrap().path();
                    if d.join("started").exists() {
                        return d;
                    }
                }
            }
            if let Some(status) = build.try_wait().unwrap() {
                let out = build.stderr.take().map(std::io::read_to_string);
                panic!("the build ended before its step started: {status}: {out:?}");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

/// Waits until `pid` is blocked on a `flock` (a `->` line of
/// `/proc/locks`): the prune is waiting for the running build's lease.
fn wait_blocked_on_lock(child: &mut Child) {
    let pid = child.id().to_string();
    loop {
        let locks = std::fs::read_to_string("/proc/locks").unwrap();
        let blocked = locks.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.get(1) == Some(&"->") && f.get(5) == Some(&pid.as_str())
        });
        if blocked {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.stdout.take().map(std::io::read_to_string);
            panic!("the prune ended without waiting for the build: {status}: {out:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The names in the store.
fn names(lab: &Lab) -> Vec<String> {
    let (json, _) = lab.ok(&["images", "--format", "json"]);
    let list: serde_json::Value = serde_json::from_str(&json).unwrap();
    let mut names: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

fn spawn(lab: &Lab, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_hoist"))
        .arg("--root")
        .arg(&lab.root)
        .args(args)
        .env_remove("HOIST_ROOT")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn finish(child: Child, what: &str) -> String {
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{what} failed:\n{text}");
    text
}

/// `hoist rmi X && hoist prune --force` while a build on X runs: the
/// prune waits for the build, which keeps X's layers until its own image
/// is named. Failed with `blob … is not in the store` (the lease ended
/// when solving did, before the name was set). Then `prune --all` while
/// a build runs: the name that build sets stays (it was removed), names
/// from before the prune go.
#[test]
fn store_running_build_keeps_what_it_reuses_and_names_through_prunes() {
    let lab = Lab::new(bin!());
    let x = lab.path("x");
    write(&x, &[("Dockerfile", "FROM base:1\nRUN echo x > /x\n")]);
    lab.ok(&["build", "-q", "-t", "x:1", x.to_str().unwrap()]);

    let gate = Gate::new(&lab, "lease");
    let mut build = gate.spawn_build("b:1", Some("FROM x:1\n"));
    let dir = gate.wait_started(&mut build);
    lab.ok(&["rmi", "x:1"]);
    let mut prune = spawn(&lab, &["prune", "--force"]);
    wait_blocked_on_lock(&mut prune);
    std::fs::write(dir.join("go"), "").unwrap();
    finish(build, "the build whose base was removed");
    finish(prune, "prune");
    assert_eq!(
        names(&lab),
        ["docker.io/library/b:1", "docker.io/library/base:1"]
    );
    let root = lab.rootfs("b:1");
    assert_eq!(read(&root.join("x")), "x\n");
    assert_eq!(read(&root.join("after")), "after\n");
    check_clean(&lab, "prune during a build");

    std::fs::remove_file(dir.join("go")).unwrap();
    std::fs::remove_file(dir.join("started")).unwrap();
    let mut build = gate.spawn_build("c:1", None);
    let dir = gate.wait_started(&mut build);
    let mut prune = spawn(&lab, &["prune", "--all", "--force"]);
    wait_blocked_on_lock(&mut prune);
    std::fs::write(dir.join("go"), "").unwrap();
    finish(build, "the build during prune --all");
    let pruned = finish(prune, "prune --all");
    assert!(
        pruned.contains("Untagged: docker.io/library/b:1"),
        "{pruned}"
    );
    assert!(!pruned.contains("c:1"), "{pruned}");
    assert_eq!(names(&lab), ["docker.io/library/c:1"], "{pruned}");
    let root = lab.rootfs("c:1");
    assert_eq!(read(&root.join("after")), "after\n");
    check_clean(&lab, "prune --all during a build");
}
