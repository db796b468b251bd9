//! buildx flags for `hoist build` as a docker user types them:
//! `--add-host`, `--no-cache-filter`, `--load`, `--annotation`. Each test
//! names the BuildKit (buildx) behaviour it mirrors.

#[path = "../testdata/run/lab.rs"]
mod lab;

use lab::Lab;

/// The lines of a build's plain log that a RUN printed with `marker`.
fn printed(log: &str, marker: &str) -> Vec<String> {
    log.lines()
        .filter_map(|l| l.split_once(' ').map(|(_, rest)| rest))
        .filter(|rest| rest.starts_with(marker))
        .map(str::to_string)
        .collect()
}

#[test]
fn add_host_lines_are_in_run_steps_hosts_and_never_in_the_image() {
    // buildx `--add-host HOST:IP` (and `HOST=IP`, `[v6]`): BuildKit writes
    // `IP\tHOST` after its own two lines in the step's generated
    // /etc/hosts (`makeHostsFile`), a mount never in a layer; the hosts
    // are part of the step's cache key (ExecOp meta).
    let lab = Lab::new();
    let ctx = lab.path("ctx");
    lab::write(
        &ctx,
        &[(
            "Dockerfile",
            "FROM base:1\nRUN cat /etc/hosts | sed 's/^/hosts: /' && cp /etc/hosts /copy\n",
        )],
    );
    let ctx = ctx.to_str().unwrap();
    let (_, log) = lab.ok(&[
        "build",
        "--progress",
        "plain",
        "-t",
        "hosts:1",
        "--add-host",
        "db.internal:10.1.2.3",
        "--add-host",
        "cache=192.0.2.7",
        "--add-host",
        "v6host:[2001:db8::1]",
        ctx,
    ]);
    assert_eq!(
        printed(&log, "hosts: "),
        [
            "hosts: 127.0.0.1\tlocalhost buildkitsandbox",
            "hosts: ::1\tlocalhost ip6-localhost ip6-loopback",
            "hosts: 10.1.2.3\tdb.internal",
            "hosts: 192.0.2.7\tcache",
            "hosts: 2001:db8::1\tv6host",
        ],
        "{log}"
    );
    // The image has the copy the step made, not the mount.
    let img = lab.image("hosts:1");
    assert!(
        img.top().iter().all(|e| e.path != "etc/hosts"),
        "/etc/hosts in the layer"
    );
    let copy = lab::entry(img.top(), "copy");
    assert!(String::from_utf8_lossy(&copy.data).contains("10.1.2.3\tdb.internal"));
    // Other hosts are another step (keyed); no host is the plain step.
    let (_, again) = lab.ok(&[
        "build",
        "--progress",
        "plain",
        "--add-host",
        "db.internal:10.9.9.9",
        ctx,
    ]);
    assert_eq!(printed(&again, "hosts: 10.").len(), 1, "{again}");
    assert!(again.contains("hosts: 10.9.9.9\tdb.internal"), "{again}");
    // Bad values are refused before anything runs, in buildx's terms.
    for bad in ["nohost", "db:not-an-ip", "db:host-gateway"] {
        let out = lab.hoist(&["build", "--add-host", bad, ctx]);
        assert!(!out.status.success(), "{bad}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("--add-host"), "{bad}: {err}");
    }
}

#[test]
fn no_cache_filter_runs_the_named_stages_again_and_the_rest_hits() {
    // BuildKit's `--no-cache-filter` (dockerfile2llb `IgnoreCache`): every
    // step of a stage whose name matches (any case) ignores the cache;
    // other stages hit, and so may steps after it whose keys are the same.
    let lab = Lab::new();
    let ctx = lab.path("ctx");
    lab::write(
        &ctx,
        &[(
            "Dockerfile",
            "FROM base:1 AS Tools\n\
             RUN echo \"tools $(cat /proc/sys/kernel/random/uuid)\" | tee /tools\n\
             FROM base:1 AS app\n\
             RUN echo \"app $(cat /proc/sys/kernel/random/uuid)\" | tee /app\n\
             COPY --from=tools /tools /tools\n",
        )],
    );
    let ctx = ctx.to_str().unwrap();
    let build = |extra: &[&str]| {
        let mut args = vec!["build", "--progress", "plain"];
        args.extend_from_slice(extra);
        args.push(ctx);
        lab.ok(&args).1
    };
    let first = build(&[]);
    let tools1 = printed(&first, "tools ");
    let app1 = printed(&first, "app ");
    assert_eq!((tools1.len(), app1.len()), (1, 1), "{first}");
    let second = build(&["--no-cache-filter", "TOOLS"]);
    let tools2 = printed(&second, "tools ");
    assert_eq!(
        tools2.len(),
        1,
        "the tools stage's RUN ran again:\n{second}"
    );
    assert_ne!(tools1, tools2, "{second}");
    assert!(
        printed(&second, "app ").is_empty(),
        "the app stage hit:\n{second}"
    );
    // Comma-separated and repeated names; an unnamed or unknown name does
    // nothing, as in BuildKit.
    let third = build(&[
        "--no-cache-filter",
        "nope,app",
        "--no-cache-filter",
        "stage-0",
    ]);
    assert!(printed(&third, "tools ").is_empty(), "{third}");
    assert_eq!(printed(&third, "app ").len(), 1, "{third}");
}
