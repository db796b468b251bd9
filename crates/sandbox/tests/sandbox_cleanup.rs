//! Nothing of a step outlives its sandbox: after success, failure, a
//! set-up failure, SIGKILL or SIGTERM of the sandbox process (or SIGKILL of
//! its pid 1) no process the step started is left on the host, and no mount
//! is left in the host's mount namespace.
//!
//! Each step starts two background `sleep 1000.<tag>` (one behind a shell)
//! and a foreground one; `<tag>` is unique, so a scan of every
//! `/proc/*/cmdline` on the host finds any survivor. While the step runs,
//! the sandbox's pid namespace is recorded too, and must end up empty.

mod support;

use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use hoist_sandbox::{RunSpec, SETUP_FAILED};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use support::{
    Fixture, bind, eventually, mounts_under, numeric_tag, pid_namespace, pids_in_namespace,
    pids_with_marker, sandbox_pid1, wait_deadline, wait_for_file,
};

/// Background sleeps, a file in the host dir saying they started, `tail`.
fn step(f: &Fixture, tag: &str, tail: &str) -> RunSpec {
    let mut spec = f.sh(&format!(
        "sleep 1000.{tag} & sh -c 'sleep 1000.{tag}; :' & touch /out/started; {tail}"
    ));
    spec.mounts = vec![bind(&f.host, "/out", false)];
    spec
}

/// No process carries `tag`, and nothing is mounted under the test's dir.
#[track_caller]
fn assert_nothing_left(f: &Fixture, tag: &str) {
    let left = pids_with_marker(tag);
    assert!(left.is_empty(), "processes left: {left:?}");
    let mounts = mounts_under(f.dir.path());
    assert!(mounts.is_empty(), "mounts left on the host: {mounts:?}");
    // The overlay's mount point is an empty host dir again.
    assert_eq!(std::fs::read_dir(&f.merged).unwrap().count(), 0);
}

#[test]
fn nothing_left_after_success() {
    let f = Fixture::new();
    let tag = numeric_tag();
    let o = f.run(&step(&f, &tag, "exit 0"));
    assert_eq!(o.code, 0, "{o:#?}");
    assert!(f.host.join("started").exists());
    // At once: pid 1's exit empties its namespace before the sandbox
    // process sees it.
    assert_nothing_left(&f, &tag);
}

#[test]
fn nothing_left_after_failure() {
    let f = Fixture::new();
    let tag = numeric_tag();
    let o = f.run(&step(&f, &tag, "exit 3"));
    assert_eq!(o.code, 3, "{o:#?}");
    assert!(f.host.join("started").exists());
    assert_nothing_left(&f, &tag);
}

#[test]
fn nothing_left_after_a_setup_failure() {
    let f = Fixture::new();
    let tag = numeric_tag();
    // After the root is built (bad USER), and before it (bad bind source).
    let mut bad_user = step(&f, &tag, "exit 0");
    bad_user.user = "nosuch".into();
    let mut bad_source = step(&f, &tag, "exit 0");
    bad_source
        .mounts
        .push(bind(&f.dir.path().join("no-such-source"), "/x", false));
    for spec in [bad_user, bad_source] {
        let o = f.run(&spec);
        assert_eq!(o.code, SETUP_FAILED, "{o:#?}");
        assert!(o.report.error.is_some());
        assert!(!f.host.join("started").exists());
        assert_nothing_left(&f, &tag);
    }
}

/// Start a step that runs until killed; its sandbox and namespace.
fn start_long_step(f: &Fixture, tag: &str) -> (std::process::Child, String) {
    let child = f.spawn(&step(f, tag, &format!("sleep 1000.{tag}")));
    wait_for_file(&f.host.join("started"));
    let pid1 = sandbox_pid1(child.id());
    let ns = pid_namespace(pid1).unwrap();
    assert_ne!(pid_namespace(std::process::id()).unwrap(), ns);
    // pid 1, the foreground sleep, the background sleep, its shell and
    // its sleep (the background ones may still be starting).
    assert!(
        eventually(Duration::from_secs(5), || pids_with_marker(tag).len() >= 4),
        "step processes: {:?}",
        pids_with_marker(tag)
    );
    assert!(pids_in_namespace(&ns).len() >= 5);
    (child, ns)
}

#[track_caller]
fn assert_namespace_empties(f: &Fixture, tag: &str, ns: &str) {
    assert!(
        eventually(Duration::from_secs(5), || pids_in_namespace(ns).is_empty()
            && pids_with_marker(tag).is_empty()),
        "left: {:?} {:?}",
        pids_in_namespace(ns),
        pids_with_marker(tag)
    );
    assert_nothing_left(f, tag);
}

#[test]
fn nothing_left_after_sigkill_of_the_sandbox() {
    let f = Fixture::new();
    let tag = numeric_tag();
    let (mut child, ns) = start_long_step(&f, &tag);
    kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).unwrap();
    let status = wait_deadline(&mut child, Duration::from_secs(5));
    assert_eq!(status.signal(), Some(9));
    // pid 1 dies with its parent (PR_SET_PDEATHSIG), the kernel kills the
    // rest of its namespace, and the mount namespace goes with them.
    assert_namespace_empties(&f, &tag, &ns);
}

#[test]
fn nothing_left_after_sigkill_of_pid1() {
    let f = Fixture::new();
    let tag = numeric_tag();
    let (child, ns) = start_long_step(&f, &tag);
    let pid1 = sandbox_pid1(child.id());
    kill(Pid::from_raw(pid1 as i32), Signal::SIGKILL).unwrap();
    let o = f.finish(child);
    assert_eq!(o.code, 128 + 9, "{o:#?}");
    assert_namespace_empties(&f, &tag, &ns);
}

#[test]
fn nothing_left_after_sigterm_of_the_sandbox() {
    let f = Fixture::new();
    let tag = numeric_tag();
    let (mut child, ns) = start_long_step(&f, &tag);
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    // The foreground sleep (sh exec'd it) dies of the forwarded SIGTERM.
    let status = wait_deadline(&mut child, Duration::from_secs(5));
    assert_eq!(status.code(), Some(128 + 15), "{status:?}");
    assert_namespace_empties(&f, &tag, &ns);
}
