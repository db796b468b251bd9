//! The fallback rules, case by case: the facts of the hosts hoist meets
//! (a host as root, a rootless podman container, Docker's default seccomp
//! profile, a kernel out of pid namespaces) and what each mode makes of
//! them.

use super::*;

const EPERM: &str = "Operation not permitted (os error 1)";

fn refused() -> Result<(), Refused> {
    Err(EPERM.into())
}

/// A rootless podman container (runc, default seccomp, no added
/// capabilities), hoist run by a user there: its user namespace works,
/// the container's masked /proc makes the kernel refuse a fresh one.
fn podman_user() -> Facts {
    Facts {
        user: UserNs::Own {
            kind: "single id".into(),
            map: "0→1000".into(),
        },
        fresh_proc: refused(),
        chroot: false,
        mknod: false,
        ..Facts::default()
    }
}

/// Root of a Docker container under the default seccomp profile: no user
/// namespace, no mount namespace; CAP_SYS_CHROOT and CAP_MKNOD.
fn docker_root() -> Facts {
    let no = Err(Refused::from("no mount namespace"));
    Facts {
        user: UserNs::Refused {
            why: EPERM.into(),
            uid: 0,
        },
        namespaces: refused(),
        pid_ns: refused(),
        fresh_proc: no.clone(),
        bound_proc: no.clone(),
        hostname: no.clone(),
        overlay: no,
        chroot: true,
        mknod: true,
        seccomp: Ok(()),
        signal_scope: Ok(()),
    }
}

#[test]
fn a_host_as_root_gets_everything_in_auto_and_oci() {
    let f = Facts::default();
    for mode in [Mode::Auto, Mode::Oci] {
        assert_eq!(decide(mode, &f), Ok(Plan::default()), "{mode}");
    }
    assert_eq!(
        describe(Mode::Auto, &f, &Plan::default()),
        "isolation: oci (root, no user namespace), mount/pid/ipc/uts namespaces, fresh /proc"
    );
    let err = decide(Mode::Rootless, &f).unwrap_err().to_string();
    assert!(err.contains("use --isolation=oci or auto"), "{err}");
}

#[test]
fn a_rootless_container_binds_the_proc_it_has_in_auto_and_says_why() {
    let f = podman_user();
    let plan = decide(Mode::Auto, &f).unwrap();
    assert_eq!(
        plan,
        Plan {
            namespaces: true,
            pid_ns: true,
            proc: ProcSource::Bound,
            hostname: true,
            seccomp: true,
            signal_scope: false,
        }
    );
    assert!(plan.proc_shows_outside());
    assert_eq!(
        describe(Mode::Auto, &f, &plan),
        "isolation: rootless (user namespace, single id: 0→1000), mount/pid/ipc/uts namespaces, \
         /proc bound from hoist's (fresh /proc refused: EPERM; other processes present at a \
         step's start hidden)"
    );
}

#[test]
fn explicit_modes_never_fall_back_and_say_what_would_work() {
    let f = podman_user();
    let err = decide(Mode::Rootless, &f).unwrap_err().to_string();
    assert!(
        err.contains("needs a fresh /proc")
            && err.contains(EPERM)
            && err.contains("unmask=/proc/*")
            && err.contains("systempaths=unconfined")
            && err.contains("--isolation=auto"),
        "{err}"
    );
    let err = decide(Mode::Oci, &f).unwrap_err().to_string();
    assert!(
        err.contains("CAP_SYS_ADMIN") && err.contains("single id: 0→1000"),
        "{err}"
    );
    // chroot takes hoist's pid namespace and /proc, whatever else works.
    assert_eq!(
        decide(Mode::Chroot, &f),
        Ok(Plan {
            namespaces: true,
            pid_ns: false,
            proc: ProcSource::Bound,
            hostname: true,
            seccomp: true,
            signal_scope: true,
        })
    );
}

#[test]
fn without_any_namespace_only_chroot_runs_and_only_with_cap_sys_chroot() {
    let f = docker_root();
    let err = decide(Mode::Auto, &f).unwrap_err().to_string();
    assert!(
        err.contains("RUN needs a mount namespace")
            && err.contains("making a user namespace was refused")
            && err.contains("--isolation=chroot"),
        "{err}"
    );
    for mode in [Mode::Oci, Mode::Rootless] {
        assert!(decide(mode, &f).is_err(), "{mode}");
    }
    let plan = decide(Mode::Chroot, &f).unwrap();
    assert_eq!(
        plan,
        Plan {
            namespaces: false,
            pid_ns: false,
            proc: ProcSource::Absent,
            hostname: false,
            seccomp: true,
            signal_scope: true,
        }
    );
    assert!(!plan.proc_shows_outside(), "there is no /proc to hide in");
    assert_eq!(
        describe(Mode::Chroot, &f, &plan),
        "isolation: chroot (uid 0, user namespace refused: EPERM), no namespaces (refused: \
         EPERM): steps share hoist's mounts, network, IPC and hostname, and signal and ptrace \
         only their own processes (Landlock scope), no /proc, /dev nodes made with mknod"
    );
    let user = Facts {
        user: UserNs::Refused {
            why: EPERM.into(),
            uid: 1000,
        },
        chroot: false,
        ..docker_root()
    };
    let err = decide(Mode::Chroot, &user).unwrap_err().to_string();
    assert!(err.contains("needs CAP_SYS_CHROOT"), "{err}");
    let err = decide(Mode::Auto, &user).unwrap_err().to_string();
    assert!(
        err.contains("Docker's default refuses unshare")
            && err.contains("would need root with CAP_SYS_CHROOT"),
        "a user is not sent to a mode it cannot have: {err}"
    );
}

#[test]
fn a_refused_pid_namespace_is_dropped_only_by_auto() {
    let f = Facts {
        pid_ns: Err("No space left on device (os error 28)".into()),
        ..Facts::default()
    };
    let plan = decide(Mode::Auto, &f).unwrap();
    assert_eq!(
        plan,
        Plan {
            namespaces: true,
            pid_ns: false,
            proc: ProcSource::Fresh,
            hostname: true,
            seccomp: true,
            signal_scope: true,
        }
    );
    assert!(
        plan.proc_shows_outside(),
        "a fresh /proc of hoist's pid namespace"
    );
    let line = describe(Mode::Auto, &f, &plan);
    assert!(
        line.contains("no pid namespace (refused: ENOSPC)")
            && line.contains("fresh /proc; other processes present at a step's start hidden"),
        "{line}"
    );
    let err = decide(Mode::Oci, &f).unwrap_err().to_string();
    assert!(err.contains("needs a pid namespace"), "{err}");
}

#[test]
fn no_proc_at_all_is_an_error_even_in_auto() {
    let f = Facts {
        fresh_proc: refused(),
        bound_proc: Err("Invalid argument (os error 22)".into()),
        ..podman_user()
    };
    let err = decide(Mode::Auto, &f).unwrap_err().to_string();
    assert!(
        err.contains("fresh /proc was refused") && err.contains("Invalid argument"),
        "{err}"
    );
}

#[test]
fn a_rootless_user_without_a_user_namespace_is_told_why() {
    let f = Facts {
        user: UserNs::Refused {
            why: "No space left on device (os error 28)".into(),
            uid: 1000,
        },
        ..docker_root()
    };
    let err = decide(Mode::Rootless, &f).unwrap_err().to_string();
    assert!(
        err.contains("making a user namespace was refused (No space left on device")
            && err.contains("docs/rootless.md"),
        "{err}"
    );
}

/// podman's and Docker's seccomp profiles refuse `sethostname` to a
/// container without CAP_SYS_ADMIN, even in a uts namespace of its own.
#[test]
fn a_refused_hostname_is_kept_in_every_mode_and_said() {
    let f = Facts {
        hostname: Err(EPERM.into()),
        ..Facts::default()
    };
    for mode in [Mode::Auto, Mode::Oci, Mode::Chroot] {
        let plan = decide(mode, &f).unwrap();
        assert!(!plan.hostname && plan.namespaces, "{mode}");
        assert!(
            describe(mode, &f, &plan).ends_with(", hostname not set (sethostname refused: EPERM)"),
            "{mode}"
        );
    }
    assert!(decide(Mode::Auto, &Facts::default()).unwrap().hostname);
}

#[test]
fn modes_parse_by_buildahs_names() {
    for (text, mode) in [
        ("auto", Mode::Auto),
        ("OCI", Mode::Oci),
        (" rootless", Mode::Rootless),
        ("chroot", Mode::Chroot),
    ] {
        assert_eq!(text.parse::<Mode>(), Ok(mode));
        assert_eq!(mode.to_string().parse::<Mode>(), Ok(mode));
    }
    let err = "namespaces".parse::<Mode>().unwrap_err().to_string();
    assert!(err.contains("auto, oci, rootless or chroot"), "{err}");
}

#[test]
fn without_a_pid_namespace_the_line_says_which_processes_a_step_reaches() {
    let scoped = decide(Mode::Chroot, &podman_user()).unwrap();
    assert!(scoped.signal_scope);
    let line = describe(Mode::Chroot, &podman_user(), &scoped);
    assert!(
        line.contains("no pid namespace (chroot isolation): steps signal and ptrace only their own processes (Landlock scope)"),
        "{line}"
    );
    let f = Facts {
        signal_scope: Err("Invalid argument (os error 22)".into()),
        ..docker_root()
    };
    let plan = decide(Mode::Chroot, &f).unwrap();
    assert!(!plan.signal_scope);
    let line = describe(Mode::Chroot, &f, &plan);
    assert!(
        line.contains(
            "steps share hoist's mounts, network, IPC and hostname, and may signal and ptrace \
             the processes running as their own uid, a root step hoist's and every other \
             process of hoist's uid (no Landlock signal scope: EINVAL; CAP_KILL dropped)"
        ),
        "{line}"
    );
    // With a pid namespace the scope is not needed, and not used.
    assert!(!decide(Mode::Auto, &Facts::default()).unwrap().signal_scope);
}

#[test]
fn a_seccomp_filter_hoist_cannot_load_is_said_in_every_mode() {
    for (mode, f) in [
        (Mode::Auto, Facts::default()),
        (Mode::Oci, Facts::default()),
        (Mode::Chroot, docker_root()),
    ] {
        let f = Facts {
            seccomp: Err("Operation not permitted (os error 1)".into()),
            ..f
        };
        let plan = decide(mode, &f).unwrap();
        assert!(!plan.seccomp, "{mode}");
        let line = describe(mode, &f, &plan);
        assert!(
            line.ends_with("no seccomp filter (loading Docker's default profile refused: EPERM)"),
            "{mode}: {line}"
        );
    }
    let plan = decide(Mode::Auto, &Facts::default()).unwrap();
    assert!(plan.seccomp);
    assert!(!describe(Mode::Auto, &Facts::default(), &plan).contains("seccomp"));
}
