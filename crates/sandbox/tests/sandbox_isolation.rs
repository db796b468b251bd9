//! The weaker plans `--isolation` falls back to (or is asked for), run for
//! real on the host as root: each still holds what it promises.
//!
//! - `/proc` bound from the host (a container's masked `/proc` makes the
//!   kernel refuse a fresh one): host processes present at the step's
//!   start are hidden; none is reachable through `/proc/PID/root`.
//! - No pid namespace: what the step leaves running is killed when it ends.
//! - No namespaces at all (a chroot into a copy): no way back out by
//!   `chroot` or `mknod`, files that would be bound are copied in and taken
//!   out again, directory mounts and `--network=none` are refused.

mod support;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::process::{Command, Stdio};

use hoist_sandbox::Network;
use hoist_sandbox::isolation::{Plan, ProcSource};
use support::{Fixture, assert_ok, bind, marker};

/// A host file with a marker in it, and a root-owned, dumpable host
/// process whose `/proc/PID/root` is the host's `/`.
fn host_secret_and_process(f: &Fixture) -> (String, String, std::process::Child) {
    let m = marker("isolation");
    let path = f.dir.path().join(format!("{m}.txt"));
    fs::write(&path, &m).unwrap();
    let sleeper = Command::new("sleep")
        .arg("60")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    (path.display().to_string(), m, sleeper)
}

#[test]
fn a_bound_proc_hides_the_hosts_processes_from_the_step() {
    let f = Fixture::new();
    let (secret, content, mut sleeper) = host_secret_and_process(&f);
    let mut spec = f.sh("cat /proc/$1/root$2; cat /proc/$1/cmdline; echo; \
         for p in 1 $1 $3; do [ -e /proc/$p/stat ] && echo visible $p; done; \
         readlink /proc/self");
    spec.args.extend([
        "sh".into(),
        sleeper.id().to_string(),
        secret.clone(),
        std::process::id().to_string(),
    ]);
    spec.isolation = Plan {
        proc: ProcSource::Bound,
        ..Plan::default()
    };
    let o = f.run(&spec);
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    assert_ok(&o);
    assert!(
        !o.stdout.contains(&content),
        "the step read a host file through a host process: {o:#?}"
    );
    assert!(!o.stdout.contains("sleep"), "a host process showed: {o:#?}");
    assert!(
        !o.stdout.contains("visible"),
        "host processes present at the start show: {o:#?}"
    );
    let own = o.stdout.lines().last().unwrap_or_default();
    assert!(own.parse::<u32>().is_ok(), "/proc/self works: {o:#?}");
}

#[test]
fn without_a_pid_namespace_what_the_step_leaves_running_is_killed() {
    let f = Fixture::new();
    let m = marker("leftover");
    // A fresh /proc of the host's pid namespace (root may): the step is
    // not pid 1. One sleep stays in the step's session, one leaves it.
    let spec = f.sh(&format!(
        "sleep 1000 {m} & echo $! > /tmp/left; (setsid sleep 1000 {m} & echo $! > /tmp/left2); \
         readlink /proc/self"
    ));
    let mut spec = spec;
    spec.isolation = Plan {
        pid_ns: false,
        ..Plan::default()
    };
    let started = std::time::Instant::now();
    let o = f.run(&spec);
    assert_ok(&o);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "the leftover sleep held the step open"
    );
    let own: u32 = o.stdout.trim().parse().unwrap();
    assert!(own > 1, "no pid namespace: the step is not pid 1 ({own})");
    for file in ["tmp/left", "tmp/left2"] {
        let left: u32 = fs::read_to_string(f.upper.join(file))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let alive = fs::read(format!("/proc/{left}/cmdline"))
            .map(|c| String::from_utf8_lossy(&c).contains(&m))
            .unwrap_or(false);
        assert!(
            !alive,
            "the step's background sleep ({file}: {left}) outlived it"
        );
    }
    assert!(support::pids_with_marker(&m).is_empty());
}

/// `merged` as the copying snapshotter leaves it: a plain copy of the image.
fn copied_root(f: &Fixture) {
    let st = Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", f.lower.display()))
        .arg(&f.merged)
        .status()
        .unwrap();
    assert!(st.success());
}

fn no_namespaces() -> Plan {
    Plan {
        namespaces: false,
        pid_ns: false,
        proc: ProcSource::Absent,
        hostname: false,
        seccomp: true,
        signal_scope: false,
    }
}

#[test]
fn a_plain_chroot_cannot_be_left_and_leaves_nothing_behind() {
    let f = Fixture::new();
    copied_root(&f);
    let motd = f.merged.join("etc/motd");
    let before = fs::metadata(&motd).unwrap();
    fs::write(f.host.join("hosts"), "127.0.0.1 from-the-engine\n").unwrap();
    fs::write(f.host.join("motd"), "bound over motd\n").unwrap();
    let mut spec = f.sh("cat /etc/hosts /etc/motd; \
         (chroot / true 2>/dev/null && echo chroot-ok || echo chroot-refused); \
         (mknod /tmp/n c 1 3 2>/dev/null && echo mknod-ok || echo mknod-refused); \
         ls /proc 2>/dev/null || echo no-proc; echo x > /dev/null && echo null-ok; \
         hostname; touch /made");
    spec.rootfs.copy = true;
    spec.network = Network::Host;
    spec.isolation = no_namespaces();
    spec.mounts = vec![
        bind(&f.host.join("hosts"), "/etc/hosts", true),
        bind(&f.host.join("motd"), "/etc/motd", true),
    ];
    let o = f.run(&spec);
    assert_ok(&o);
    let host_name = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(
        o.stdout,
        format!(
            "127.0.0.1 from-the-engine\nbound over motd\nchroot-refused\nmknod-refused\n\
             no-proc\nnull-ok\n{host_name}"
        )
    );
    // What hoist put in the root for the step is gone; the image's own
    // file is back, bytes and times.
    assert!(f.merged.join("made").exists());
    assert!(!f.merged.join("etc/hosts").exists());
    assert!(!f.merged.join("dev").exists());
    let after = fs::metadata(&motd).unwrap();
    assert_eq!(fs::read_to_string(&motd).unwrap(), "from the lower layer\n");
    assert_eq!(
        (after.mtime(), after.mtime_nsec()),
        (before.mtime(), before.mtime_nsec())
    );
}

#[test]
fn a_plain_chroot_refuses_what_needs_a_namespace() {
    let f = Fixture::new();
    copied_root(&f);
    let mut spec = f.sh("true");
    spec.rootfs.copy = true;
    spec.isolation = no_namespaces();
    spec.network = Network::None;
    let o = f.run(&spec);
    assert_eq!(o.code, hoist_sandbox::SETUP_FAILED);
    assert!(
        o.report
            .error
            .as_deref()
            .is_some_and(|e| e.contains("--network=none needs a network namespace")),
        "{o:#?}"
    );
    spec.network = Network::Host;
    spec.mounts = vec![bind(&f.host, "/mnt", true)];
    let o = f.run(&spec);
    assert!(
        o.report
            .error
            .as_deref()
            .is_some_and(|e| e.contains("a mount at /mnt: chroot isolation without namespaces")),
        "{o:#?}"
    );
    // The overlay: the engine must give a copy.
    spec.mounts.clear();
    spec.rootfs.copy = false;
    let o = f.run(&spec);
    assert!(
        o.report
            .error
            .as_deref()
            .is_some_and(|e| e.starts_with(hoist_sandbox::OVERLAY_UNAVAILABLE)),
        "{o:#?}"
    );
}
