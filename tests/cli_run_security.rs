//! What a `RUN` step may ask of the kernel, as a user meets it through
//! `hoist build` (issue items 4 and 5):
//!
//! - every step runs under Docker's default seccomp profile (BuildKit's
//!   through runc): a new user namespace, keyrings, io_uring, bpf, perf
//!   events and userfaultfd are refused; `RUN --security=insecure` runs
//!   without it, and only with `--allow security.insecure` (BuildKit's
//!   entitlement, refused with its message otherwise);
//! - under `--isolation=chroot` (no pid namespace) a step cannot kill a
//!   host process, root's or another user's, whose pid it is given.

use hoist_test_support::{bin, lab};

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use lab::Lab;

/// What Docker's profile refuses that the kernel gives root.
const REFUSED: [&str; 6] = [
    "unshare-user",
    "keyctl",
    "io_uring_setup",
    "bpf",
    "perf_event_open",
    "userfaultfd",
];

/// `crates/sandbox/tests/support/syscalls.c` built static into `dir`.
fn syscalls_binary(dir: &Path) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/sandbox/tests/support/syscalls.c");
    let st = Command::new("gcc")
        .args(["-static", "-O1", "-o"])
        .arg(dir.join("syscalls"))
        .arg(&src)
        .arg("-lpthread")
        .status()
        .expect("gcc (with libc6-dev's static libc) is needed");
    assert!(st.success());
}

/// `NAME RESULT` lines of one step in a plain progress log (`#N SECONDS
/// NAME RESULT`).
fn answers(log: &str, step: &str) -> BTreeMap<String, String> {
    let num = log
        .lines()
        .find(|l| l.ends_with(step))
        .and_then(|l| l.split_once(' '))
        .map(|(n, _)| format!("{n} "))
        .unwrap_or_else(|| panic!("no step {step:?} in:\n{log}"));
    log.lines()
        .filter_map(|l| l.strip_prefix(&num))
        .filter_map(|l| l.split_once(' ').map(|(_, rest)| rest))
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn run_steps_get_dockers_seccomp_profile_and_insecure_ones_need_allow() {
    let lab = Lab::new(bin!());
    let ctx = lab.path("seccomp");
    std::fs::create_dir(&ctx).unwrap();
    syscalls_binary(&ctx);
    let host = Command::new(ctx.join("syscalls")).output().unwrap();
    let host = String::from_utf8_lossy(&host.stdout).into_owned();
    for name in REFUSED {
        assert!(
            host.contains(&format!("{name} ok\n")),
            "the host's kernel refuses {name} to root itself: {host}"
        );
    }
    std::fs::write(
        ctx.join("Dockerfile"),
        "FROM base:1\nCOPY syscalls /bin/syscalls\nRUN syscalls\n\
         RUN --security=insecure syscalls\n",
    )
    .unwrap();
    let c = ctx.to_str().unwrap();
    // BuildKit: without the entitlement the step is refused, at its line,
    // before anything runs (it validates entitlements as it loads the LLB).
    let out = lab.hoist(&["build", "--progress", "plain", c]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(!err.contains("unshare-user"), "a step ran: {err}");
    assert!(
        err.contains("Dockerfile:4")
            && err.contains("security.insecure is not allowed")
            && err.contains("--allow security.insecure"),
        "{err}"
    );
    let (_, log) = lab.ok(&[
        "build",
        "--progress",
        "plain",
        "--allow",
        "security.insecure",
        c,
    ]);
    let filtered = answers(&log, "RUN syscalls");
    let insecure = answers(&log, "RUN --security=insecure syscalls");
    for name in REFUSED {
        assert_eq!(
            filtered.get(name).map(String::as_str),
            Some("EPERM"),
            "{name}:\n{log}"
        );
        assert_eq!(
            insecure.get(name).map(String::as_str),
            Some("ok"),
            "{name}:\n{log}"
        );
    }
    assert_eq!(
        filtered.get("clone3").map(String::as_str),
        Some("ENOSYS"),
        "{log}"
    );
    assert_eq!(
        filtered.get("ordinary").map(String::as_str),
        Some("ok"),
        "{log}"
    );
    assert!(
        log.contains("RUN --security=insecure: no seccomp filter, every capability"),
        "{log}"
    );
}

/// A root-owned and a nobody-owned `sleep` on the host.
fn host_sleepers() -> (Child, Child) {
    let spawn = |cmd: &mut Command| cmd.stdin(Stdio::null()).spawn().unwrap();
    let root = spawn(Command::new("sleep").arg("120"));
    let other = spawn(Command::new("setpriv").args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "sleep",
        "120",
    ]));
    (root, other)
}

#[test]
fn chroot_steps_cannot_kill_host_processes_of_root_or_another_user() {
    let lab = Lab::new(bin!());
    let ctx = lab.path("kill");
    lab::write(
        &ctx,
        &[(
            "Dockerfile",
            "FROM base:1\nARG ROOT_PID\nARG OTHER_PID\nRUN kill -9 $ROOT_PID $OTHER_PID\n",
        )],
    );
    let (mut root, mut other) = host_sleepers();
    let (r, u) = (root.id().to_string(), other.id().to_string());
    let out = lab.hoist(&[
        "build",
        "--progress",
        "plain",
        "--isolation=chroot",
        "--build-arg",
        &format!("ROOT_PID={r}"),
        "--build-arg",
        &format!("OTHER_PID={u}"),
        ctx.to_str().unwrap(),
    ]);
    let alive = [&mut root, &mut other].map(|c| c.try_wait().unwrap().is_none());
    for c in [&mut root, &mut other] {
        let _ = c.kill();
        let _ = c.wait();
    }
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(alive, [true, true], "a host process was killed:\n{log}");
    assert!(!out.status.success(), "kill must fail:\n{log}");
    for pid in [&r, &u] {
        assert!(
            log.contains(&format!("can't kill pid {pid}: Operation not permitted")),
            "the kill of {pid} was not tried and refused:\n{log}"
        );
    }
    assert!(
        log.contains(
            "no pid namespace (chroot isolation): steps signal and ptrace only their own \
             processes (Landlock scope)"
        ),
        "{log}"
    );
}
