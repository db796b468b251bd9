//! What a step may ask of the kernel, run for real as root:
//!
//! - Docker's default seccomp profile (issue item 4): a new user namespace,
//!   keyrings, io_uring, bpf, perf events and userfaultfd are refused
//!   (`EPERM`, `clone3` `ENOSYS` as Docker answers it) where the host's
//!   kernel allows each to the same root; ordinary programs (threads, fork,
//!   mmap, files, sockets; the host's python3 and gcc) still work;
//!   `RUN --security=insecure` gets the kernel's own answers.
//! - Without a pid namespace (issue item 5): a step cannot signal or
//!   ptrace a host process owned by root or by another user, through its
//!   Landlock scope; where Landlock is unavailable it has no `CAP_KILL`
//!   and cannot reach another user's processes.

mod support;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::symlink;
use std::process::{Child, Command, Stdio};

use hoist_sandbox::Security;
use hoist_sandbox::isolation::Plan;
use support::{Fixture, assert_ok, bind, syscalls_binary};

/// What Docker's profile refuses that the kernel gives root.
const REFUSED: [&str; 6] = [
    "unshare-user",
    "keyctl",
    "io_uring_setup",
    "bpf",
    "perf_event_open",
    "userfaultfd",
];

/// `NAME RESULT` lines.
fn answers(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A fixture whose image has `/bin/syscalls`, and the host's answers to it.
fn with_syscalls() -> (Fixture, BTreeMap<String, String>) {
    let f = Fixture::new();
    let bin = syscalls_binary(f.dir.path());
    fs::copy(&bin, f.lower.join("bin/syscalls")).unwrap();
    let out = Command::new(&bin).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let host = answers(&String::from_utf8_lossy(&out.stdout));
    for name in REFUSED {
        assert_eq!(
            host.get(name).map(String::as_str),
            Some("ok"),
            "the host's kernel refuses {name} to root itself, so a refusal in the step would \
             prove nothing: {host:?}"
        );
    }
    (f, host)
}

#[test]
fn dockers_profile_refuses_user_namespaces_keyrings_io_uring_bpf_perf_and_userfaultfd() {
    let (f, _) = with_syscalls();
    let o = f.run(&f.spec(&["/bin/syscalls"]));
    assert_ok(&o);
    let step = answers(&o.stdout);
    for name in REFUSED {
        assert_eq!(
            step.get(name).map(String::as_str),
            Some("EPERM"),
            "{name}: {o:#?}"
        );
    }
    assert_eq!(
        step.get("clone3").map(String::as_str),
        Some("ENOSYS"),
        "{o:#?}"
    );
    assert_eq!(
        step.get("ordinary").map(String::as_str),
        Some("ok"),
        "{o:#?}"
    );
}

#[test]
fn an_insecure_step_gets_the_kernels_own_answers() {
    let (f, host) = with_syscalls();
    let mut spec = f.spec(&["/bin/syscalls"]);
    spec.security = Security::Insecure;
    let o = f.run(&spec);
    assert_ok(&o);
    let step = answers(&o.stdout);
    for name in REFUSED {
        assert_eq!(step.get(name), host.get(name), "{name}: {o:#?}");
    }
    assert_eq!(
        step.get("ordinary").map(String::as_str),
        Some("ok"),
        "{o:#?}"
    );
}

#[test]
fn a_step_whose_filter_cannot_be_read_does_not_run() {
    let f = Fixture::new();
    let mut spec = f.sh("echo ran");
    spec.seccomp = Some("not a filter".into());
    let o = f.run(&spec);
    assert_eq!(o.code, hoist_sandbox::SETUP_FAILED, "{o:#?}");
    assert!(!o.stdout.contains("ran"), "{o:#?}");
    assert!(
        o.report
            .error
            .as_deref()
            .is_some_and(|e| e.contains("seccomp")),
        "{o:#?}"
    );
}

/// The host's `/usr` (Debian: merged, so `/lib` and `/lib64` too) bound
/// read-only: its python3 and gcc run under the filter as a step's
/// toolchain would.
#[test]
fn the_hosts_python_and_gcc_work_under_the_filter() {
    let f = Fixture::new();
    for (link, to) in [("lib", "usr/lib"), ("lib64", "usr/lib64")] {
        symlink(to, f.lower.join(link)).unwrap();
    }
    fs::create_dir(f.lower.join("src")).unwrap();
    fs::write(
        f.lower.join("src/hello.c"),
        "#include <pthread.h>\n#include <stdio.h>\n\
         static void *run(void *a) { return a; }\n\
         int main(void) { pthread_t t; pthread_create(&t, 0, run, 0); pthread_join(t, 0);\n\
         puts(\"hello from gcc\"); return 0; }\n",
    )
    .unwrap();
    let python = "import hashlib, socket, subprocess, threading\n\
        t = threading.Thread(target=lambda: None); t.start(); t.join()\n\
        out = subprocess.run(['/bin/echo', 'child'], capture_output=True, check=True).stdout\n\
        s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(1)\n\
        c = socket.create_connection(s.getsockname()); a, _ = s.accept(); c.sendall(out)\n\
        print('python', a.recv(16).decode().strip(), hashlib.sha256(b'x').hexdigest()[:8])\n";
    let mut spec =
        f.sh("python3 -c \"$1\" && gcc -O1 -pthread -o /tmp/hello /src/hello.c && /tmp/hello");
    spec.args.extend(["sh".into(), python.into()]);
    spec.env = vec!["PATH=/usr/bin:/bin".into(), "HOME=/root".into()];
    spec.mounts = vec![bind(std::path::Path::new("/usr"), "/usr", true)];
    let o = f.run(&spec);
    assert_ok(&o);
    assert_eq!(
        o.stdout, "python child 2d711642\nhello from gcc\n",
        "{o:#?}"
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

fn alive(child: &mut Child) -> bool {
    child.try_wait().unwrap().is_none()
}

/// Signals and ptrace at both sleepers, then at a process of the step's own.
fn reach(f: &Fixture, plan: Plan, root: &Child, other: &Child) -> support::Outcome {
    let mut spec = f.sh(
        "for p in $1 $2; do kill -9 $p; echo kill $p $?; /bin/syscalls attach $p; done; \
         sleep 100 & kill -9 $!; echo own $?",
    );
    spec.args
        .extend(["sh".into(), root.id().to_string(), other.id().to_string()]);
    spec.isolation = plan;
    f.run(&spec)
}

#[test]
fn without_a_pid_namespace_a_landlock_scope_keeps_the_step_to_its_own_processes() {
    let (f, _) = with_syscalls();
    let (mut root, mut other) = host_sleepers();
    let plan = Plan {
        pid_ns: false,
        signal_scope: true,
        ..Plan::default()
    };
    let o = reach(&f, plan, &root, &other);
    let (root_alive, other_alive) = (alive(&mut root), alive(&mut other));
    for c in [&mut root, &mut other] {
        let _ = c.kill();
        let _ = c.wait();
    }
    assert_ok(&o);
    assert!(
        root_alive && other_alive,
        "a host process was killed: {o:#?}"
    );
    let (r, u) = (root.id(), other.id());
    assert!(
        o.stdout.starts_with(&format!(
            "kill {r} 1\nptrace EPERM\nkill {u} 1\nptrace EPERM\n"
        )),
        "{o:#?}"
    );
    assert!(
        o.stdout.ends_with("own 0\n"),
        "the step's own process: {o:#?}"
    );
    assert!(o.stderr.contains("Operation not permitted"), "{o:#?}");
}

#[test]
fn without_a_pid_namespace_or_landlock_the_step_has_no_cap_kill() {
    let (f, _) = with_syscalls();
    let (mut root, mut other) = host_sleepers();
    let plan = Plan {
        pid_ns: false,
        signal_scope: false,
        ..Plan::default()
    };
    let o = reach(&f, plan, &other, &other);
    let other_alive = alive(&mut other);
    for c in [&mut root, &mut other] {
        let _ = c.kill();
        let _ = c.wait();
    }
    assert_ok(&o);
    assert!(other_alive, "another user's process was killed: {o:#?}");
    let u = other.id();
    assert!(
        o.stdout.starts_with(&format!("kill {u} 1\nptrace EPERM\n")),
        "{o:#?}"
    );
    assert!(o.stdout.ends_with("own 0\n"), "{o:#?}");
}
