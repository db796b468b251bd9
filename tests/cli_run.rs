//! `RUN` as a user meets it: `hoist build` on the Dockerfiles in
//! `testdata/run/`, over a busybox base image built in each test's own
//! store (no registry), the result read back from `hoist save` and
//! `hoist export`. Each test names the BuildKit behaviour it mirrors.
//! Layer contents (whiteouts, special files, empty steps, mount points)
//! are in `cli_run_layers.rs`.

use hoist_test_support::{bin, lab};

use std::process::Command;

use lab::{Lab, entry, read};

/// `(step text, cached)` for each RUN/COPY step of a plain progress log.
fn step_states(log: &str) -> Vec<(String, bool)> {
    let mut steps: Vec<(String, String, bool)> = Vec::new();
    for line in log.lines() {
        let Some((num, rest)) = line.split_once(' ') else {
            continue;
        };
        if rest.starts_with('[') && (rest.contains("] RUN ") || rest.contains("] COPY ")) {
            steps.push((num.to_string(), rest.to_string(), false));
        } else if rest == "CACHED"
            && let Some(s) = steps.iter_mut().find(|s| s.0 == num)
        {
            s.2 = true;
        }
    }
    steps.into_iter().map(|(_, t, c)| (t, c)).collect()
}

#[test]
fn multistage_run_in_two_stages_and_copy_from_a_run_output() {
    // BuildKit: `COPY --from` reads the stage's filesystem after its RUN;
    // a stage the target does not depend on is never solved (here it would
    // fail the build).
    let lab = Lab::new(bin!());
    let log = lab.build_case("multistage", "multi:1", &[]);
    assert!(!log.contains("unused-stage-ran"), "{log}");
    assert!(!log.contains("[unused]"), "the unused stage ran:\n{log}");
    let steps = step_states(&log);
    assert_eq!(
        steps.len(),
        3,
        "build RUN, COPY --from, final RUN: {steps:?}"
    );
    let img = lab.image("multi:1");
    lab::assert_no_mount_points(&img);
    assert_eq!(img.layers.len(), 3, "base, COPY --from, RUN");
    let copied = entry(&img.layers[1], "artifact");
    assert_eq!(copied.data, b"built\n");
    let fs = lab.rootfs("multi:1");
    assert_eq!(read(&fs.join("final")), "built\nfinal\n");
    assert!(
        !fs.join("out").exists(),
        "only the copied file comes from the build stage"
    );
}

#[test]
fn user_switching_owns_files_and_resolves_names() {
    // BuildKit runs each step as the stage's USER, resolved in the image's
    // own /etc/passwd (runc's GetExecUser): a numeric uid gets its passwd
    // entry's gid and the groups listing its name; files it makes carry its
    // ids in the layer tar.
    let lab = Lab::new(bin!());
    lab.build_case("user", "user:1", &[]);
    let img = lab.image("user:1");
    lab::assert_no_mount_points(&img);
    assert_eq!(img.layers.len(), 4, "base + three RUN layers");
    let a = entry(&img.layers[1], "a");
    assert_eq!((a.uid, a.gid, a.data.as_slice()), (0, 0, &b"0\n"[..]));
    let b = entry(&img.layers[2], "tmp/b");
    assert_eq!((b.uid, b.gid), (1000, 1000), "made by USER 1000");
    assert_eq!(b.data, b"1000\n1000\n");
    let sorted = |d: &[u8]| {
        let mut g: Vec<u32> = String::from_utf8_lossy(d)
            .split_whitespace()
            .map(|w| w.parse().unwrap())
            .collect();
        g.sort();
        g.dedup();
        g
    };
    assert_eq!(
        sorted(&entry(&img.layers[2], "tmp/b-groups").data),
        [10, 50, 1000],
        "USER 1000: primary group from passwd, wheel and staff from /etc/group"
    );
    let c = entry(&img.layers[3], "tmp/c");
    assert_eq!((c.uid, c.gid), (1000, 1000), "USER app is uid 1000");
    assert_eq!(c.data, b"app\n");
    assert_eq!(
        sorted(&entry(&img.layers[3], "tmp/c-groups").data),
        [10, 50, 1000]
    );
    assert_eq!(img.config["config"]["User"], "app");
    // /tmp itself is in each user's layer (the parent of the new file), as
    // root's with its sticky mode, not as the user's.
    let tmp = entry(&img.layers[2], "tmp");
    assert_eq!((tmp.kind, tmp.mode, tmp.uid), ('d', 0o1777, 0));
}

/// The group ids of each `Groups:` line the `groups` fixture recorded.
fn group_sets(lab: &Lab) -> impl Fn(&str) -> String {
    let fs = lab.rootfs("groups:1");
    move |f: &str| {
        let text = read(&fs.join(f));
        let line = text.lines().find(|l| l.starts_with("Groups:")).unwrap();
        line.trim_start_matches("Groups:")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }
}

#[test]
fn explicit_group_has_no_supplementary_groups() {
    // BuildKit's executor/oci/user.go: `uid:gid` takes the fast path (no
    // supplementary groups); `name:group` goes through runc's GetExecUser,
    // which only collects the user's groups when no group is given.
    // Recorded with BuildKit v0.8: `Groups:` empty for both; today's
    // BuildKit adds the primary gid (below), so at most `50`.
    // Reproduction: `hoist build testdata/run/groups` over the lab base;
    // /tmp/g-app-staff and /tmp/g-1000-50 hold `Groups:\t10 50`.
    let lab = Lab::new(bin!());
    lab.build_case("groups", "groups:1", &[]);
    let groups = group_sets(&lab);
    for f in ["tmp/g-app-staff", "tmp/g-1000-50"] {
        let g = groups(f);
        assert!(g.is_empty() || g == "50", "{f}: {g}");
    }
}

#[test]
fn primary_gid_is_a_supplementary_group() {
    // Today's BuildKit (executor/oci/user.go WithUIDGID →
    // ensureAdditionalGids) puts the primary gid first in AdditionalGids;
    // BuildKit v0.8 (docker 20.10) did not, and hoist follows today's.
    // Reproduction: `hoist build testdata/run/groups`; /g-root has
    // `Groups:\t` (BuildKit: `0`), /tmp/g-app `10 50` (BuildKit:
    // `10 50 1000`), /tmp/u-2000 no groups (BuildKit: `0`).
    let lab = Lab::new(bin!());
    lab.build_case("groups", "groups:1", &[]);
    let groups = group_sets(&lab);
    assert_eq!(groups("g-root"), "0");
    assert_eq!(groups("tmp/g-app"), "10 50 1000");
    assert_eq!(groups("tmp/g-app-staff"), "50");
    assert_eq!(groups("tmp/g-1000-50"), "50");
    assert_eq!(groups("tmp/u-2000"), "0");
}

#[test]
fn heredocs_exec_form_and_shell() {
    // BuildKit's dispatchRun: a lone heredoc is the script given to the
    // shell (`<<-` chomps tabs first); a shebang heredoc is a file run from
    // /dev/pipes/NAME; other heredocs are handed to the shell whole; exec
    // form runs without a shell; SHELL replaces /bin/sh -c for shell form.
    let lab = Lab::new(bin!());
    let log = lab.build_case("heredoc", "heredoc:1", &[]);
    let fs = lab.rootfs("heredoc:1");
    assert_eq!(read(&fs.join("h1")), "one\ntwo\n");
    assert_eq!(read(&fs.join("h2")), "body line\n  indented\n");
    assert_eq!(read(&fs.join("h3")), "chomped\n");
    assert_eq!(read(&fs.join("h4")), "tabs gone\ntwo tabs gone\n");
    assert_eq!(read(&fs.join("h5")), "/dev/pipes/EOF\n");
    assert!(
        !fs.join("dev").exists(),
        "/dev/pipes is a mount, not part of the image"
    );
    assert_eq!(read(&fs.join("exec")), "hi\n");
    assert!(
        log.lines().any(|l| l.ends_with(" $HOME not expanded")),
        "exec form: no shell, no expansion\n{log}"
    );
    assert_eq!(
        read(&fs.join("shell.log")),
        "myshell: -c echo via-shell > /after-shell\n"
    );
    assert_eq!(read(&fs.join("after-shell")), "via-shell\n");
    let img = lab.image("heredoc:1");
    lab::assert_no_mount_points(&img);
    let history: Vec<String> = img.history().into_iter().map(|h| h.0).collect();
    for want in [
        "RUN /bin/sh -c echo one > /h1\necho two >> /h1\n # buildkit",
        "RUN /bin/sh -c /dev/pipes/EOF # buildkit",
        "RUN /bin/sh -c echo hi > /exec # buildkit",
        "RUN /bin/echo $HOME not expanded # buildkit",
        "SHELL [/myshell -c]",
        "RUN /myshell -c echo via-shell > /after-shell # buildkit",
    ] {
        assert!(
            history.iter().any(|h| h == want),
            "{want:?} in {history:#?}"
        );
    }
}

#[test]
fn build_args_reach_run_and_env_wins() {
    // BuildKit: a stage's ARGs are in RUN's environment but not the
    // image's; an ENV of the same name wins; an ARG with no value is not
    // set at all; the history line is `RUN |N K=V... ARGV # buildkit`.
    let lab = Lab::new(bin!());
    lab.build_case("args", "args:1", &[]);
    let fs = lab.rootfs("args:1");
    assert_eq!(read(&fs.join("x")), "x=1\n");
    assert_eq!(read(&fs.join("y")), "2\n", "ENV X=2 wins over ARG X=1");
    let img = lab.image("args:1");
    lab::assert_no_mount_points(&img);
    let env = img.config["config"]["Env"].as_array().unwrap();
    assert!(env.iter().any(|e| e == "X=2"), "{env:?}");
    assert!(!env.iter().any(|e| e == "X=1"), "{env:?}");
    let history = runs(&img);
    assert_eq!(
        history[0], "RUN |1 X=1 /bin/sh -c echo \"x=$X\" > /x # buildkit",
        "{history:#?}"
    );
    // A --build-arg overrides the default, in the step and its history.
    lab.build_case("args", "args:2", &["--build-arg", "X=5"]);
    let fs = lab.rootfs("args:2");
    assert_eq!(read(&fs.join("x")), "x=5\n");
    assert_eq!(read(&fs.join("y")), "2\n", "ENV still wins");
    assert_eq!(
        runs(&lab.image("args:2"))[0],
        "RUN |1 X=5 /bin/sh -c echo \"x=$X\" > /x # buildkit"
    );
    lab.build_case("args-unset", "unset:1", &[]);
    assert_eq!(read(&lab.rootfs("unset:1").join("y")), "y=unset\n");
    lab.build_case("args-unset", "unset:2", &["--build-arg", "Y=b"]);
    assert_eq!(read(&lab.rootfs("unset:2").join("y")), "y=b\n");
    assert_eq!(
        runs(&lab.image("unset:2"))[0],
        "RUN |1 Y=b /bin/sh -c echo \"y=${Y-unset}\" > /y # buildkit"
    );
}

/// The `created_by` of each RUN in the history.
fn runs(img: &lab::Image) -> Vec<String> {
    img.history()
        .into_iter()
        .map(|h| h.0)
        .filter(|h| h.starts_with("RUN "))
        .collect()
}

#[test]
fn history_shows_the_env_value_over_the_arg() {
    // BuildKit's runCommandString: `v, ok := env.Get(arg.Key)` first, the
    // ARG's own value only when no env has the key.
    // Reproduction: `hoist build testdata/run/args`; the second RUN's
    // history is `RUN |1 X=1 /bin/sh -c echo "$X" > /y # buildkit`;
    // BuildKit writes `RUN |1 X=2 ...` (the step itself sees X=2).
    let lab = Lab::new(bin!());
    lab.build_case("args", "args:1", &[]);
    assert_eq!(
        runs(&lab.image("args:1"))[1],
        "RUN |1 X=2 /bin/sh -c echo \"$X\" > /y # buildkit"
    );
}

#[test]
fn history_lists_an_arg_without_a_value() {
    // BuildKit's dispatchArg appends every ARG to the stage's build args,
    // valued or not; runCommandString writes `K=` for one with no value.
    // Reproduction: `hoist build testdata/run/args-unset`; history is
    // `RUN /bin/sh -c echo "y=${Y-unset}" > /y # buildkit`; BuildKit
    // writes `RUN |1 Y= /bin/sh -c ...`.
    let lab = Lab::new(bin!());
    lab.build_case("args-unset", "unset:1", &[]);
    assert_eq!(
        runs(&lab.image("unset:1"))[0],
        "RUN |1 Y= /bin/sh -c echo \"y=${Y-unset}\" > /y # buildkit"
    );
}

#[test]
fn cache_reuses_steps_and_a_changed_arg_reruns_what_follows() {
    // BuildKit: a step's cache key is its command, env (build args in it)
    // and parent; an unchanged rebuild runs nothing, a changed build arg
    // misses from the first step that sees it on, --no-cache runs all.
    let lab = Lab::new(bin!());
    let first = lab.build_case("cache", "cache:1", &[]);
    assert!(step_states(&first).iter().all(|s| !s.1), "{first}");
    let again = lab.build_case("cache", "cache:1", &[]);
    let states = step_states(&again);
    assert_eq!(states.len(), 3);
    assert!(states.iter().all(|s| s.1), "all CACHED:\n{again}");
    assert!(again.contains("0 steps run, 3 cached"), "{again}");

    let changed = lab.build_case("cache", "cache:2", &["--build-arg", "V=2"]);
    let cached: Vec<bool> = step_states(&changed).into_iter().map(|s| s.1).collect();
    assert_eq!(cached, [true, false, false], "{changed}");
    assert_eq!(read(&lab.rootfs("cache:2").join("after")), "2\n");
    // Both variants are now cached side by side.
    let back = lab.build_case("cache", "cache:1", &[]);
    assert!(step_states(&back).iter().all(|s| s.1), "{back}");
    assert_eq!(read(&lab.rootfs("cache:1").join("after")), "1\n");

    let fresh = lab.build_case("cache", "cache:3", &["--no-cache"]);
    assert!(step_states(&fresh).iter().all(|s| !s.1), "{fresh}");
    assert!(fresh.contains("3 steps run, 0 cached"), "{fresh}");
}

#[test]
fn a_failing_step_reports_and_leaves_nothing_mounted() {
    // BuildKit: `process "/bin/sh -c ..." did not complete successfully:
    // exit code: 7`, with the Dockerfile line and the step's last output;
    // the build exits non-zero and its mounts die with the step.
    let lab = Lab::new(bin!());
    let ctx = lab::case("fail");
    let out = lab.hoist(&["build", "--progress", "plain", ctx.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Dockerfile:4"), "names the line:\n{err}");
    assert!(err.contains("exit code: 7"), "{err}");
    assert!(
        err.contains("did not complete successfully"),
        "BuildKit's wording:\n{err}"
    );
    assert!(err.contains("boom"), "shows the output:\n{err}");
    assert!(!err.contains("never"), "{err}");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let store = lab.root.to_str().unwrap();
    assert!(
        !mounts.contains(store),
        "a mount under {store} is left:\n{mounts}"
    );
    let tmp = lab.root.join("tmp");
    let left: Vec<_> = std::fs::read_dir(&tmp)
        .map(|d| d.map(|e| e.unwrap().file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{} holds {left:?}", tmp.display());
    lab.ok(&["store", "check"]);
    // No process of the step outlives the build.
    for p in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(cmdline) = std::fs::read(p.path().join("cmdline")) else {
            continue;
        };
        assert!(
            !String::from_utf8_lossy(&cmdline).contains(store),
            "process {:?} is left: {}",
            p.file_name(),
            String::from_utf8_lossy(&cmdline)
        );
    }
    // The step before the failure was kept: a rebuild starts from it.
    let again = lab.hoist(&["build", "--progress", "plain", ctx.to_str().unwrap()]);
    let log = String::from_utf8_lossy(&again.stderr);
    let states = step_states(&log);
    assert!(states[0].1, "the first RUN is CACHED:\n{log}");
    assert!(!states[1].1, "a failed step is never cached:\n{log}");
}

#[test]
fn network_none_sees_only_loopback() {
    // BuildKit's `--network none` (and `RUN --network=none`): a fresh
    // network namespace with only `lo`; `--network host` (with the
    // network.host entitlement) sees the host's interfaces. Both see
    // BuildKit's generated /etc/hosts and the hostname `buildkitsandbox`.
    // The default network is tests/cli_run_network.rs's.
    let lab = Lab::new(bin!());
    lab.build_case("network", "none:1", &["--network", "none"]);
    let fs = lab.rootfs("none:1");
    assert_eq!(read(&fs.join("net")), "lo\n");
    assert_eq!(
        read(&fs.join("hosts")),
        "127.0.0.1\tlocalhost buildkitsandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n"
    );
    assert_eq!(read(&fs.join("hostname")), "buildkitsandbox\n");
    assert!(
        !read(&fs.join("resolv")).contains("nameserver"),
        "no server is reachable without a network"
    );

    lab.build_case(
        "network",
        "host:1",
        &["--network", "host", "--allow", "network.host"],
    );
    let fs = lab.rootfs("host:1");
    let mut host: Vec<String> = std::fs::read_dir("/sys/class/net")
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    host.sort();
    let seen: Vec<String> = read(&fs.join("net")).lines().map(str::to_string).collect();
    assert_eq!(seen, host, "--network host is the host's network");
    assert!(host.len() > 1, "this host has an interface besides lo");
    assert_eq!(read(&fs.join("hostname")), "buildkitsandbox\n");
}

#[test]
fn onbuild_run_runs_in_the_child() {
    // BuildKit: a base image's OnBuild triggers run first in a stage built
    // FROM it, and the child image does not inherit them.
    let lab = Lab::new(bin!());
    lab.build_case("onbuild-base", "onbuild:1", &[]);
    let parent = lab.image("onbuild:1");
    assert_eq!(
        parent.config["config"]["OnBuild"],
        serde_json::json!(["RUN touch /onbuild"])
    );
    assert!(!lab.rootfs("onbuild:1").join("onbuild").exists());
    lab.build_case("onbuild-child", "child:1", &[]);
    let fs = lab.rootfs("child:1");
    assert!(fs.join("onbuild").is_file());
    assert_eq!(read(&fs.join("seen")), "/onbuild\n");
    assert_eq!(read(&fs.join("parent")), "parent\n");
    let child = lab.image("child:1");
    assert!(
        child.config["config"]["OnBuild"].is_null()
            || child.config["config"]["OnBuild"] == serde_json::json!([]),
        "{}",
        child.config
    );
}

#[test]
fn the_image_runs_in_podman() {
    // The layers RUN made (a deletion, a user's directory) unpack and run
    // in a real runtime: podman (runc, vfs storage, all state in a temp
    // dir) loads the `hoist save` archive and runs the image's CMD as its
    // USER.
    let lab = Lab::new(bin!());
    lab.build_case("podman", "runme:1", &[]);
    let tar = lab.path("runme.tar");
    lab.ok(&["save", "-o", tar.to_str().unwrap(), "runme:1"]);
    let pm = lab.path("podman");
    std::fs::create_dir_all(&pm).unwrap();
    let nofile = Command::new("sh")
        .args(["-c", "ulimit -Hn"])
        .output()
        .unwrap();
    let nofile = String::from_utf8_lossy(&nofile.stdout).trim().to_string();
    let nofile = if nofile == "unlimited" {
        "1048576".to_string()
    } else {
        nofile
    };
    // This machine's fixes (see shared/bench/setup.sh `config`): runc, as
    // crun fails on the hybrid cgroup layout; ulimits under the hard limits.
    let conf = pm.join("containers.conf");
    std::fs::write(
        &conf,
        format!(
            "[containers]\ndefault_ulimits = [\"nofile={nofile}:{nofile}\", \"nproc=32768:32768\"]\n\
             [engine]\nruntime = \"runc\"\nevents_logger = \"none\"\ncgroup_manager = \"cgroupfs\"\n\
             [network]\nnetwork_config_dir = \"{}\"\n",
            pm.join("networks").display()
        ),
    )
    .unwrap();
    let podman = |args: &[&str]| {
        let out = hoist_test_support::podman::in_dir(&pm, "vfs")
            .env("CONTAINERS_CONF", &conf)
            .args(args)
            .output()
            .expect("podman is installed (Debian podman, runc)");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "podman {args:?}: {}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
        text
    };
    podman(&["load", "-i", tar.to_str().unwrap()]);
    let run = |cmd: &[&str]| {
        let mut args = vec![
            "--runtime",
            "runc",
            "run",
            "--rm",
            "--network",
            "none",
            "docker.io/library/runme:1",
        ];
        args.extend_from_slice(cmd);
        podman(&args)
    };
    assert_eq!(run(&[]), "hello-from-run\n1000\nmine\ndoomed-gone\n");
    assert_eq!(run(&["/bin/sh", "-c", "cat /a"]), "hello-from-run\n");
    podman(&["rmi", "--all", "--force"]);
}
