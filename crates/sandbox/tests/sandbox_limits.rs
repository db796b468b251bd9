//! Resource limits: `--memory` and `--cpus` through a per-step cgroup,
//! `--shm-size`, `--ulimit` (as `docker build`'s flags do for RUN).

mod support;

use hoist_sandbox::{Limits, Ulimit};
use support::{Fixture, assert_ok, require_root};

fn limited(f: &Fixture, script: &str, limits: Limits) -> support::Outcome {
    let mut spec = f.sh(script);
    spec.limits = limits;
    f.run(&spec)
}

#[test]
fn ulimit_and_shm_size_reach_the_step() {
    require_root();
    let f = Fixture::new();
    let o = limited(
        &f,
        "ulimit -n; ulimit -Hn; df -k /dev/shm | tail -1",
        Limits {
            shm_size: Some(32 << 20),
            ulimits: vec![Ulimit {
                name: "nofile".into(),
                soft: 512,
                hard: 1024,
            }],
            ..Limits::default()
        },
    );
    assert_ok(&o);
    let lines: Vec<&str> = o.stdout.lines().collect();
    assert_eq!(lines[0], "512", "{o:#?}");
    assert_eq!(lines[1], "1024", "{o:#?}");
    assert!(lines[2].contains(" 32768 "), "shm size: {o:#?}");
    // The default /dev/shm is Docker's 64 MiB.
    let o = limited(&f, "df -k /dev/shm | tail -1", Limits::default());
    assert!(o.stdout.contains(" 65536 "), "{o:#?}");
}

#[test]
fn unknown_ulimit_is_a_setup_error() {
    require_root();
    let f = Fixture::new();
    let o = limited(
        &f,
        "true",
        Limits {
            ulimits: vec![Ulimit {
                name: "bogus".into(),
                soft: 1,
                hard: 1,
            }],
            ..Limits::default()
        },
    );
    assert_eq!(o.code, hoist_sandbox::SETUP_FAILED, "{o:#?}");
    assert!(o.report.error.unwrap_or_default().contains("bogus"));
}

/// A step over its memory limit is killed by the kernel (OOM: SIGKILL, 137),
/// one under it is not; the step's cgroup is gone afterwards.
#[test]
fn memory_limit_kills_a_step_over_it() {
    require_root();
    let f = Fixture::new();
    let name = format!("test-{}", std::process::id());
    let limits = Limits {
        memory: Some(32 << 20),
        cpus: Some(0.5),
        cgroup: Some(name.clone()),
        ..Limits::default()
    };
    // 64 MiB held in one shell variable's worth of memory: `head` into a
    // tmpfs file is page cache, so allocate in the process instead.
    let o = limited(
        &f,
        "cat /proc/self/cgroup; x=$(head -c 67108864 /dev/zero | tr '\\0' a); echo survived ${#x}",
        limits.clone(),
    );
    if o.stderr.contains("unavailable here") {
        panic!("this host gives no writable cgroup to root: {o:#?}");
    }
    assert!(
        o.stdout.contains(&format!("/hoist/{name}")),
        "not in its cgroup: {o:#?}"
    );
    assert!(
        !o.stdout.contains("survived"),
        "went past its memory limit: {o:#?}"
    );
    assert_ne!(o.code, 0, "{o:#?}");
    let o = limited(
        &f,
        "x=$(head -c 1048576 /dev/zero | tr '\\0' a); echo ok ${#x}",
        limits,
    );
    assert_ok(&o);
    assert!(o.stdout.contains("ok 1048576"), "{o:#?}");
    hoist_sandbox::cgroup::remove(&name);
    for dir in [
        "/sys/fs/cgroup/hoist",
        "/sys/fs/cgroup/memory/hoist",
        "/sys/fs/cgroup/cpu/hoist",
    ] {
        assert!(
            !std::path::Path::new(dir).join(&name).exists(),
            "cgroup {dir}/{name} left behind"
        );
    }
}
