//! Signals: what the engine sends the sandbox process reaches the step's
//! command (through pid 1), and pid 1 reaps the orphans the step leaves it.

mod support;

use std::fs;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use support::{Fixture, assert_ok, bind, numeric_tag, pids_with_marker, wait_for_file};

/// A shell `trap` in the step sees each forwarded signal, records it in a
/// bind-mounted host dir and exits 0: the sandbox exits 0.
#[test]
fn forwarded_signals_reach_the_steps_trap() {
    for sig in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
    ] {
        let f = Fixture::new();
        let tag = numeric_tag();
        let name = sig.as_str().trim_start_matches("SIG");
        let mut spec = f.sh(&format!(
            "trap 'echo {name} > /out/got; exit 0' {name}; touch /out/ready; \
             sleep 1000.{tag} & wait"
        ));
        spec.mounts = vec![bind(&f.host, "/out", false)];
        let child = f.spawn(&spec);
        wait_for_file(&f.host.join("ready"));
        kill(Pid::from_raw(child.id() as i32), sig).unwrap();
        let mut child = child;
        let status = support::wait_deadline(&mut child, Duration::from_secs(5));
        assert_eq!(status.code(), Some(0), "{name}: {status:?}");
        assert_eq!(
            fs::read_to_string(f.host.join("got")).unwrap(),
            format!("{name}\n")
        );
        // The background sleep went with the sandbox.
        assert!(pids_with_marker(&tag).is_empty());
    }
}

/// Processes whose parent exits are reparented to pid 1 of the sandbox,
/// which reaps each as it exits: the step never sees a zombie.
#[test]
fn orphans_are_reparented_to_pid1_and_reaped() {
    let f = Fixture::new();
    // Five double forks: each subshell starts a short sleep and exits at
    // once, leaving the sleep an orphan; one orphan is a shell that
    // orphans a sleep of its own.
    let o = f.run(&f.sh(
        "for i in 1 2 3 4 5; do ( sleep 0.5 & echo $! >> /tmp/orphans ); done; \
         ( sh -c 'sleep 0.5 & echo $! >> /tmp/orphans; sleep 0.05' & ); \
         sleep 0.25; \
         for p in $(cat /tmp/orphans); do grep PPid: /proc/$p/status; done; \
         sleep 0.6; \
         for p in $(cat /tmp/orphans); do test -e /proc/$p && echo LEFT $p $(grep State /proc/$p/status); done; \
         grep -l 'State:.Z' /proc/[0-9]*/status; \
         echo checked $(wc -l < /tmp/orphans)",
    ));
    assert_ok(&o);
    let lines: Vec<&str> = o.stdout.lines().collect();
    // Six orphans, all children of pid 1 while they ran...
    assert_eq!(lines.len(), 7, "{o:#?}");
    for l in &lines[..6] {
        assert_eq!(*l, "PPid:\t1", "{o:#?}");
    }
    // ... and none left, not even as a zombie, once they exited.
    assert_eq!(lines[6], "checked 6", "{o:#?}");
}

/// A step whose command exits while its children still run: the sandbox
/// exits with the command's status at once (it does not wait for them).
#[test]
fn command_exit_ends_the_step_with_children_running() {
    let f = Fixture::new();
    let tag = numeric_tag();
    let start = std::time::Instant::now();
    let o = f.run(&f.sh(&format!("sleep 1000.{tag} & sleep 1000.{tag} & exit 7")));
    assert_eq!(o.code, 7, "{o:#?}");
    assert!(start.elapsed() < Duration::from_secs(10));
    assert!(pids_with_marker(&tag).is_empty());
}
