//! `RUN --mount` of every type, `--secret`, `--ssh`, and a build cancelled
//! mid-step, through the `hoist` binary with a real store. Each test names
//! the BuildKit behaviour it mirrors.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hoist_test_support::{bin, lab};
use lab::write;

/// `lab::hoist` with the hoist under test.
fn hoist(root: &Path, args: &[&str]) -> std::process::Output {
    lab::hoist(bin!(), root, args)
}

/// `lab::ok` with the hoist under test.
fn ok(root: &Path, args: &[&str]) -> String {
    lab::ok(bin!(), root, args)
}

/// A store with `base:1`: the host's busybox-static with its applets.
fn base(dir: &Path) -> PathBuf {
    let root = dir.join("store");
    let ctx = dir.join("base");
    write(
        &ctx,
        &[(
            "Dockerfile",
            "FROM scratch\nCOPY --from=bin busybox /bin/busybox\n\
             RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n\
             RUN echo 'root:x:0:0:root:/root:/bin/sh' > /etc/passwd\n",
        )],
    );
    ok(
        &root,
        &[
            "build",
            "-q",
            "--build-context",
            "bin=/bin",
            "-t",
            "base:1",
            ctx.to_str().unwrap(),
        ],
    );
    root
}

fn files_of(root: &Path, image: &str, dir: &Path) -> PathBuf {
    let out = dir.join(format!("fs-{}", image.replace(':', "-")));
    let spec = format!("type=local,dest={}", out.display());
    ok(root, &["export", image, "-o", &spec]);
    out
}

/// BuildKit: a context bind mount sees the context as sent (`.dockerignore`
/// applied), read-only by default, and nothing of it reaches the image; its
/// content is part of the cache key (a changed file reruns the step).
#[test]
fn bind_mount_of_the_context_is_read_only_filtered_and_keyed_by_content() {
    let dir = tempfile::tempdir().unwrap();
    let root = base(dir.path());
    let ctx = dir.path().join("ctx");
    write(
        &ctx,
        &[
            ("src/a.txt", "one\n"),
            ("src/hidden.txt", "ignored\n"),
            (".dockerignore", "src/hidden.txt\n"),
            (
                "Dockerfile",
                "FROM base:1\n\
                 RUN --mount=type=bind,target=/ctx ls /ctx/src > /seen && cat /ctx/src/a.txt >> /seen \
                 && (touch /ctx/new 2>/dev/null && echo writable || echo read-only) >> /seen\n",
            ),
        ],
    );
    let c = ctx.to_str().unwrap();
    ok(&root, &["build", "-q", "-t", "m:1", c]);
    let fs = files_of(&root, "m:1", dir.path());
    assert_eq!(
        std::fs::read_to_string(fs.join("seen")).unwrap(),
        "a.txt\none\nread-only\n"
    );
    assert!(!fs.join("ctx").exists(), "the mount point left a stub");
    let again = ok(&root, &["build", "--progress", "plain", "-t", "m:1", c]);
    assert!(again.contains("0 steps run"), "{again}");
    write(&ctx, &[("src/a.txt", "two\n")]);
    let changed = ok(&root, &["build", "--progress", "plain", "-t", "m:1", c]);
    assert!(changed.contains("1 steps run"), "{changed}");
    // An ignored file changing is not an input.
    write(&ctx, &[("src/hidden.txt", "still ignored\n")]);
    let ignored = ok(&root, &["build", "--progress", "plain", "-t", "m:1", c]);
    assert!(ignored.contains("0 steps run"), "{ignored}");
}

/// BuildKit: `from=STAGE` binds the stage's filesystem; `rw` writes are
/// thrown away; cache mounts persist across builds, never in the image;
/// tmpfs is empty each time.
#[test]
fn stage_binds_cache_and_tmpfs_mounts() {
    let dir = tempfile::tempdir().unwrap();
    let root = base(dir.path());
    let ctx = dir.path().join("ctx");
    write(
        &ctx,
        &[(
            "Dockerfile",
            "FROM base:1 AS gen\nRUN echo generated > /gen.txt\n\
             FROM base:1\n\
             RUN --mount=type=bind,from=gen,source=/gen.txt,target=/in cat /in > /copied\n\
             RUN --mount=type=bind,from=gen,target=/g,rw sh -c 'echo scribble > /g/gen.txt; cat /g/gen.txt > /rw'\n\
             RUN --mount=type=bind,from=gen,target=/g cat /g/gen.txt > /after\n\
             ARG RUNS=1\n\
             RUN --mount=type=cache,target=/var/cache/x sh -c 'echo $RUNS >> /var/cache/x/log; cat /var/cache/x/log > /cachelog'\n\
             RUN --mount=type=tmpfs,target=/scratch sh -c 'ls /scratch | wc -l > /tmpcount; echo x > /scratch/f'\n",
        )],
    );
    let c = ctx.to_str().unwrap();
    ok(&root, &["build", "-q", "-t", "m:1", c]);
    let fs = files_of(&root, "m:1", dir.path());
    let read = |p: &str| std::fs::read_to_string(fs.join(p)).unwrap();
    assert_eq!(read("copied"), "generated\n");
    assert_eq!(read("rw"), "scribble\n");
    assert_eq!(read("after"), "generated\n", "an rw bind changed its stage");
    assert_eq!(read("cachelog"), "1\n");
    assert_eq!(read("tmpcount"), "0\n");
    assert!(!fs.join("var/cache/x").exists(), "cache mount in the image");
    assert!(
        !fs.join("scratch").exists(),
        "tmpfs mount point in the image"
    );
    ok(
        &root,
        &["build", "-q", "--build-arg", "RUNS=2", "-t", "m:2", c],
    );
    let fs2 = files_of(&root, "m:2", dir.path());
    assert_eq!(
        std::fs::read_to_string(fs2.join("cachelog")).unwrap(),
        "1\n2\n",
        "the cache mount kept the first build's contents"
    );
    // prune --all takes cache mounts with the build cache.
    ok(&root, &["prune", "--all", "--force"]);
    assert!(!root.join("cache-mounts").exists());
}

/// BuildKit/buildx: `--secret id=X,src=FILE` reaches `/run/secrets/X` (or
/// an env var with `env=`) and nothing of it reaches the image, the store
/// or the cache key; a required secret that is missing fails the step.
#[test]
fn secrets_never_reach_the_image_or_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let root = base(dir.path());
    let ctx = dir.path().join("ctx");
    let secret_value = format!("s3cr3t-{}", std::process::id());
    let secret = dir.path().join("token");
    std::fs::write(&secret, &secret_value).unwrap();
    write(
        &ctx,
        &[(
            "Dockerfile",
            "FROM base:1\n\
             RUN --mount=type=secret,id=tok sh -c 'wc -c < /run/secrets/tok > /len; stat -c %a /run/secrets/tok > /mode'\n\
             RUN --mount=type=secret,id=tok,env=TOKEN sh -c 'echo ${#TOKEN} > /envlen'\n",
        )],
    );
    let c = ctx.to_str().unwrap();
    let spec = format!("id=tok,src={}", secret.display());
    ok(&root, &["build", "-q", "--secret", &spec, "-t", "s:1", c]);
    let fs = files_of(&root, "s:1", dir.path());
    let n = secret_value.len().to_string();
    assert_eq!(std::fs::read_to_string(fs.join("len")).unwrap().trim(), n);
    assert_eq!(
        std::fs::read_to_string(fs.join("mode")).unwrap().trim(),
        "400"
    );
    assert_eq!(
        std::fs::read_to_string(fs.join("envlen")).unwrap().trim(),
        n
    );
    assert!(!fs.join("run/secrets").exists());
    // Not one byte of it anywhere in the store (blobs, records, snapshots).
    let grep = Command::new("grep")
        .args(["-r", "-l", &secret_value])
        .arg(&root)
        .output()
        .unwrap();
    assert!(
        grep.stdout.is_empty(),
        "secret found in the store: {}",
        String::from_utf8_lossy(&grep.stdout)
    );
    // Another value, same id: the steps are cached (values are not keys).
    std::fs::write(&secret, "other").unwrap();
    let log = ok(
        &root,
        &[
            "build",
            "--progress",
            "plain",
            "--secret",
            &spec,
            "-t",
            "s:1",
            c,
        ],
    );
    assert!(log.contains("0 steps run"), "{log}");
    // required and missing: the step fails, naming the secret.
    write(
        &ctx,
        &[(
            "Dockerfile",
            "FROM base:1\nRUN --mount=type=secret,id=absent,required true\n",
        )],
    );
    let out = hoist(&root, &["build", "-q", c]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    // BuildKit's words, which scripts match on.
    assert!(err.contains("secret absent: not found"), "{err}");
    assert!(err.contains(":2"), "names the Dockerfile line: {err}");
}

/// buildx: `--ssh default` forwards the agent socket; `SSH_AUTH_SOCK`
/// points at it inside the step.
#[test]
fn ssh_mount_forwards_the_agent_socket() {
    let dir = tempfile::tempdir().unwrap();
    let root = base(dir.path());
    let sock = dir.path().join("agent.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let ctx = dir.path().join("ctx");
    write(
        &ctx,
        &[(
            "Dockerfile",
            "FROM base:1\n\
             RUN --mount=type=ssh sh -c 'echo $SSH_AUTH_SOCK > /sockpath; test -S $SSH_AUTH_SOCK && echo socket > /reply'\n",
        )],
    );
    let spec = format!("default={}", sock.display());
    ok(
        &root,
        &[
            "build",
            "-q",
            "--ssh",
            &spec,
            "-t",
            "ssh:1",
            ctx.to_str().unwrap(),
        ],
    );
    let fs = files_of(&root, "ssh:1", dir.path());
    assert_eq!(
        std::fs::read_to_string(fs.join("sockpath")).unwrap(),
        "/run/buildkit/ssh_agent.0\n"
    );
    assert_eq!(
        std::fs::read_to_string(fs.join("reply")).unwrap_or_default(),
        "socket\n",
        "the agent's socket is not at SSH_AUTH_SOCK in the step"
    );
    assert!(
        !fs.join("run/buildkit").exists(),
        "the mount point stayed in the image"
    );
}

/// docker build: Ctrl-C (SIGINT) or SIGTERM stops a build mid-step: the
/// step's processes are gone at once, no mount remains, the scratch
/// directories are removed, the exit code is 128 + the signal, and the
/// store is consistent for the next build.
#[test]
fn sigint_and_sigterm_cancel_a_running_step_and_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = base(dir.path());
    let tag = format!("hoist-cancel-{}", std::process::id());
    for (sig, name) in [(libc_sig::SIGINT, "INT"), (libc_sig::SIGTERM, "TERM")] {
        let ctx = dir.path().join(format!("ctx-{name}"));
        write(
            &ctx,
            &[(
                "Dockerfile",
                &format!("FROM base:1\nRUN sleep 300 & sleep 301; echo {tag}-{name}\n"),
            )],
        );
        let mut child = Command::new(env!("CARGO_BIN_EXE_hoist"))
            .arg("--root")
            .arg(&root)
            .args(["build", "--progress", "plain", ctx.to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Wait until the step runs.
        let started = Instant::now();
        while !processes_with(&format!("{tag}-{name}")) {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "step never started"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let t0 = Instant::now();
        Command::new("kill")
            .args([format!("-{name}"), child.id().to_string()])
            .status()
            .unwrap();
        let status = child.wait().unwrap();
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "cancel took {:?}",
            t0.elapsed()
        );
        assert_eq!(status.code(), Some(128 + sig), "exit code after SIG{name}");
        std::thread::sleep(Duration::from_millis(200));
        assert!(
            !processes_with(&format!("{tag}-{name}")),
            "the step's processes outlived SIG{name}"
        );
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert!(
            !mounts.contains(root.to_str().unwrap()),
            "a mount under the store remains"
        );
        let tmp: Vec<_> = std::fs::read_dir(root.join("tmp"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(tmp.is_empty(), "scratch left after SIG{name}: {tmp:?}");
        ok(&root, &["store", "check"]);
    }
}

/// Processes whose command line contains `needle` (the step's shell has it).
fn processes_with(needle: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        std::fs::read(e.path().join("cmdline"))
            .map(|c| String::from_utf8_lossy(&c).contains(needle))
            .unwrap_or(false)
    })
}

mod libc_sig {
    pub const SIGINT: i32 = 2;
    pub const SIGTERM: i32 = 15;
}

/// Of two stages failing together, the one that failed first is the
/// build's error, as BuildKit reports it, not the one earlier in the file.
/// The stages meet through a shared cache mount: `fast` fails and leaves a
/// mark, `slow` fails after seeing it (or after 10 s without it).
#[test]
fn the_first_failing_instruction_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let root = base(dir.path());
    let ctx = dir.path().join("ctx");
    write(
        &ctx,
        &[(
            "Dockerfile",
            "FROM base:1 AS slow\n\
             RUN --mount=type=cache,id=order,target=/s,sharing=shared sh -c 'i=0; while [ ! -e /s/failed ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; sleep 5; exit 3'\n\
             FROM base:1 AS fast\n\
             RUN --mount=type=cache,id=order,target=/s,sharing=shared sh -c 'touch /s/failed; exit 4'\n\
             FROM base:1\n\
             COPY --from=slow /etc/passwd /a\n\
             COPY --from=fast /etc/passwd /b\n",
        )],
    );
    let out = hoist(&root, &["build", "-q", ctx.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(":4: ") && err.contains("exit code: 4"),
        "{err}"
    );
    assert!(!err.contains("exit code: 3"), "{err}");
}
