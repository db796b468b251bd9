//! The step's process as the sandbox starts it: exit status, output,
//! environment, working directory, hostname, user and groups, capabilities,
//! and the set-up failures (`SETUP_FAILED` with the report's error).

mod support;

use hoist_sandbox::SETUP_FAILED;
use support::{DOCKER_DEFAULT_CAPS, Fixture, assert_ok};

#[test]
fn exit_codes_propagate() {
    let f = Fixture::new();
    for (script, want) in [
        ("true", 0),
        ("exit 3", 3),
        ("exit 255", 255),
        ("kill -KILL $$", 128 + 9),
        ("kill -SEGV $$", 128 + 11),
    ] {
        let o = f.run(&f.sh(script));
        assert_eq!(o.code, want, "`{script}`: {o:#?}");
        // The step ran: that is no set-up failure, whatever its status.
        assert_eq!(o.report.error, None, "`{script}`: {o:#?}");
    }
}

/// The step's command starts as runc starts it: no signal blocked, so the
/// signals pid 1 forwards (and its own) are delivered.
#[test]
fn step_starts_with_no_blocked_signals() {
    let f = Fixture::new();
    let o = f.run(&f.spec(&["grep", "SigBlk", "/proc/self/status"]));
    assert_ok(&o);
    assert_eq!(o.stdout, "SigBlk:\t0000000000000000\n");
    for (script, want) in [
        ("kill -TERM $$", 128 + 15),
        ("kill -USR1 $$", 128 + 10),
        ("kill -HUP $$", 128 + 1),
    ] {
        let o = f.run(&f.sh(script));
        assert_eq!(o.code, want, "`{script}`: {o:#?}");
    }
}

#[test]
fn stdout_and_stderr_come_through_separately() {
    let f = Fixture::new();
    let o = f.run(&f.sh("echo to-out; echo to-err >&2; echo more-out; exit 3"));
    assert_eq!(o.code, 3);
    assert_eq!(o.stdout, "to-out\nmore-out\n");
    assert_eq!(o.stderr, "to-err\n");
    // stdin is /dev/null: a read sees end of file at once.
    let o = f.run(&f.sh("if read line; then echo got; else echo eof; fi"));
    assert_ok(&o);
    assert_eq!(o.stdout, "eof\n");
}

#[test]
fn environment_is_exactly_the_specs() {
    let f = Fixture::new();
    let mut spec = f.spec(&["env"]);
    spec.env = vec![
        "PATH=/bin".into(),
        "FOO=bar baz".into(),
        "EMPTY=".into(),
        "EQUALS=a=b".into(),
        "HOME=/nowhere".into(),
    ];
    let o = f.run(&spec);
    assert_ok(&o);
    let mut got: Vec<&str> = o.stdout.lines().collect();
    got.sort_unstable();
    let mut want: Vec<&str> = spec.env.iter().map(String::as_str).collect();
    want.sort_unstable();
    // Nothing of the test process's environment (CARGO_*, HOME, ...) leaks.
    assert_eq!(got, want);
    assert!(std::env::vars().count() > 0);
}

#[test]
fn missing_working_directory_is_made() {
    let f = Fixture::new();
    let mut spec = f.spec(&["pwd"]);
    spec.cwd = "/made/by/the/sandbox".into();
    let o = f.run(&spec);
    assert_ok(&o);
    assert_eq!(o.stdout, "/made/by/the/sandbox\n");
    // runc makes it as root, 0755, in the root (so in the upper dir).
    let made = f.upper.join("made/by/the/sandbox");
    let meta = std::fs::metadata(&made).unwrap();
    assert!(meta.is_dir());
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777,
        0o755
    );
    // An existing one is used as is.
    let mut spec = f.sh("pwd; ls");
    spec.cwd = "/etc".into();
    let o = f.run(&spec);
    assert_ok(&o);
    assert_eq!(o.stdout, "/etc\ngroup\nmotd\npasswd\n");
}

#[test]
fn hostname_is_the_specs_and_the_hosts_is_untouched() {
    let f = Fixture::new();
    let host_before = rustix::system::uname().nodename().to_owned();
    let mut spec = f.sh("hostname; cat /proc/sys/kernel/hostname");
    spec.hostname = "hoist-step".into();
    let o = f.run(&spec);
    assert_ok(&o);
    assert_eq!(o.stdout, "hoist-step\nhoist-step\n");
    assert_eq!(rustix::system::uname().nodename(), host_before.as_c_str());
}

/// `id` and the kernel's own `Groups:` line for each form of `USER`.
#[test]
fn user_by_name_uid_and_group() {
    let f = Fixture::new();
    // BuildKit's groups (runc's GetExecUser, then ensureAdditionalGids):
    // membership from /etc/group unless a group is given, and the primary
    // gid always.
    for (user, id, groups) in [
        ("", "uid=0(root) gid=0(root) groups=0(root)", "0"),
        ("root", "uid=0(root) gid=0(root) groups=0(root)", "0"),
        (
            "app",
            "uid=1000(app) gid=1000(app) groups=10(wheel),50(staff),1000(app)",
            "10 50 1000",
        ),
        (
            "1000",
            "uid=1000(app) gid=1000(app) groups=10(wheel),50(staff),1000(app)",
            "10 50 1000",
        ),
        (
            "app:staff",
            "uid=1000(app) gid=50(staff) groups=50(staff)",
            "50",
        ),
        (
            "app:1001",
            "uid=1000(app) gid=1001(other) groups=1001(other)",
            "1001",
        ),
        (
            "other",
            "uid=1001(other) gid=1001(other) groups=10(wheel),1001(other)",
            "10 1001",
        ),
        // No passwd entry: gid 0, which is also its only group.
        ("4242", "uid=4242 gid=0(root) groups=0(root)", "0"),
        ("4242:50", "uid=4242 gid=50(staff) groups=50(staff)", "50"),
    ] {
        let mut spec = f.sh("id; grep Groups: /proc/self/status");
        spec.user = user.into();
        let o = f.run(&spec);
        assert_ok(&o);
        let want = format!("{id}\nGroups:\t{groups} \n").replace("\t \n", "\t\n");
        let got = o.stdout.replace("\t \n", "\t\n");
        assert_eq!(got, want, "USER {user:?}");
    }
}

fn caps(status: &str, name: &str) -> u64 {
    let line = status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in {status}"));
    u64::from_str_radix(line.trim(), 16).unwrap()
}

#[test]
fn root_step_has_dockers_default_capabilities_only() {
    let f = Fixture::new();
    let o = f.run(&f.spec(&["cat", "/proc/self/status"]));
    assert_ok(&o);
    // The test runs with (nearly) every capability; the step must not.
    let mine = std::fs::read_to_string("/proc/self/status").unwrap();
    assert_ne!(caps(&mine, "CapBnd"), DOCKER_DEFAULT_CAPS);
    for set in ["CapBnd", "CapPrm", "CapEff"] {
        assert_eq!(
            caps(&o.stdout, set),
            DOCKER_DEFAULT_CAPS,
            "{set}: {}",
            o.stdout
        );
    }
    assert_eq!(caps(&o.stdout, "CapAmb"), 0);
    assert_eq!(caps(&o.stdout, "CapInh"), 0);
    // A capability outside the set really is missing: SYS_ADMIN (mount).
    let o = f.run(&f.sh("mkdir -p /m && mount -t tmpfs none /m && echo mounted"));
    assert_ne!(o.code, 0, "{o:#?}");
    assert!(!o.stdout.contains("mounted"));
    assert!(o.stderr.contains("permission denied"), "{o:#?}");
    // One inside it works: CHOWN.
    let o = f.run(&f.sh("touch /t && chown 1000:50 /t && stat -c %u:%g /t"));
    assert_ok(&o);
    assert_eq!(o.stdout, "1000:50\n");
}

#[test]
fn non_root_step_has_no_effective_capabilities() {
    let f = Fixture::new();
    for user in ["app", "4242", "app:0"] {
        let mut spec = f.spec(&["cat", "/proc/self/status"]);
        spec.user = user.into();
        let o = f.run(&spec);
        assert_ok(&o);
        assert_eq!(caps(&o.stdout, "CapEff"), 0, "USER {user}");
        assert_eq!(caps(&o.stdout, "CapPrm"), 0, "USER {user}");
        assert_eq!(caps(&o.stdout, "CapAmb"), 0, "USER {user}");
        assert_eq!(caps(&o.stdout, "CapBnd"), DOCKER_DEFAULT_CAPS);
    }
    // And it cannot write what only root may.
    let mut spec = f.sh("echo x >> /etc/passwd");
    spec.user = "app".into();
    let o = f.run(&spec);
    assert_ne!(o.code, 0);
    assert!(o.stderr.contains("Permission denied"), "{o:#?}");
}

#[test]
fn missing_command_is_a_setup_failure_naming_it() {
    let f = Fixture::new();
    for prog in ["no-such-program-hoist", "/bin/no-such-program-hoist"] {
        let o = f.run(&f.spec(&[prog, "arg"]));
        assert_eq!(o.code, SETUP_FAILED, "{o:#?}");
        let err = o.report.error.unwrap_or_default();
        assert!(err.contains(prog), "error {err:?} should name {prog}");
        assert!(err.contains("No such file"), "{err}");
    }
    // A command that exists but is not executable.
    let o = f.run(&f.spec(&["/etc/motd"]));
    assert_eq!(o.code, SETUP_FAILED, "{o:#?}");
    assert!(o.report.error.unwrap_or_default().contains("/etc/motd"));
    // No command at all.
    let o = f.run(&f.spec(&[]));
    assert_eq!(o.code, SETUP_FAILED);
    assert!(o.report.error.unwrap_or_default().contains("no command"));
}

#[test]
fn bad_user_is_a_setup_failure_with_a_clear_error() {
    let f = Fixture::new();
    for (user, want) in [
        ("nosuch", "unable to find user nosuch"),
        ("nosuch:staff", "unable to find user nosuch"),
        ("app:nogroup-here", "unable to find group nogroup-here"),
    ] {
        let mut spec = f.sh("touch /ran");
        spec.user = user.into();
        let o = f.run(&spec);
        assert_eq!(o.code, SETUP_FAILED, "USER {user}: {o:#?}");
        let err = o.report.error.unwrap_or_default();
        assert!(err.contains(&format!("USER {user}")), "{err}");
        assert!(err.contains(want), "{err}");
        // The command never ran.
        assert!(!f.upper.join("ran").exists());
    }
}

#[test]
fn unreadable_spec_is_a_setup_failure() {
    let f = Fixture::new();
    let bad = f.dir.path().join("bad.json");
    std::fs::write(&bad, "{not json").unwrap();
    let o = hoist_sandbox::command(std::path::Path::new(support::PROBE), &bad)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(SETUP_FAILED));
    assert!(String::from_utf8_lossy(&o.stderr).contains("bad run spec"));
    let missing = f.dir.path().join("missing.json");
    let o = hoist_sandbox::command(std::path::Path::new(support::PROBE), &missing)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(SETUP_FAILED));
    assert!(String::from_utf8_lossy(&o.stderr).contains("missing.json"));
}

/// hoist as a container's entrypoint is pid 1 of its pid namespace; its
/// sandbox process then has a parent pid of 1 while the parent is alive.
#[test]
fn engine_running_as_pid1_of_a_container_runs_steps() {
    let f = Fixture::new();
    let path = f.write_spec(&f.sh("echo ran"));
    // `sh` stays pid 1 of the new namespace (it has more to run after the
    // sandbox), and the sandbox is its child.
    let out = std::process::Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "/bin/sh", "-c"])
        .arg("\"$0\" __hoist-sandbox \"$1\"; echo rc=$?; echo pid=$$")
        .arg(support::PROBE)
        .arg(&path)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("unshare (util-linux) is needed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.ends_with("pid=1\n"), "{out:?}");
    assert_eq!(stdout, "ran\nrc=0\npid=1\n", "{:?}", f.report());
}
