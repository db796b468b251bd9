//! Behaviour BuildKit's own Dockerfile tests pin down (issue 12, item 7),
//! ported from `frontend/dockerfile/dockerfile_*_test.go`: each test is
//! named after the BuildKit test it mirrors. Proxy build args, the
//! sandbox hostname, `SOURCE_DATE_EPOCH`, `TARGETSTAGE`, and cache mount
//! sources. Run over the busybox Lab base (`hoist_test_support::lab`).

use hoist_test_support::{bin, lab};

use std::process::Command;

use lab::{Lab, read, write};

/// Build `dockerfile` (its own context) as `tag` in `lab`; the output.
fn build(
    lab: &Lab,
    name: &str,
    dockerfile: &str,
    tag: &str,
    extra: &[&str],
) -> std::process::Output {
    let ctx = lab.path(name);
    write(&ctx, &[("Dockerfile", dockerfile)]);
    let mut args = vec!["build", "--progress", "plain", "-t", tag];
    args.extend_from_slice(extra);
    let c = ctx.to_str().unwrap().to_string();
    args.push(&c);
    lab.hoist(&args)
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Build, which must succeed; the progress log.
fn build_ok(lab: &Lab, name: &str, dockerfile: &str, tag: &str, extra: &[&str]) -> String {
    let out = build(lab, name, dockerfile, tag, extra);
    assert!(
        out.status.success(),
        "build of {tag} failed:\n{}",
        stderr(&out)
    );
    stderr(&out)
}

const BUILTIN_ARGS: &str = "FROM base:1\n\
    ARG FOO\n\
    ARG BAR\n\
    ARG BAZ=bazcontent\n\
    RUN echo -n $HTTP_PROXY::$NO_PROXY::$FOO::$BAR::$BAZ > /out\n";

/// BuildKit's `testBuiltinArgs`: proxy build args reach `RUN` without an
/// `ARG` (`http_proxy` as `$HTTP_PROXY` too); a changed proxy value keeps
/// the cache (the step is not run again, so its output keeps the old
/// value), a changed declared arg does not. No proxy value reaches the
/// image's config or history.
#[test]
fn builtin_args_mirrors_test_builtin_args() {
    let lab = Lab::new(bin!());
    let first = [
        "--build-arg",
        "FOO=foocontents",
        "--build-arg",
        "http_proxy=hpvalue",
        "--build-arg",
        "NO_PROXY=npvalue",
    ];
    build_ok(&lab, "ctx", BUILTIN_ARGS, "args:1", &first);
    let fs = lab.rootfs("args:1");
    assert_eq!(
        read(&fs.join("out")),
        "hpvalue::npvalue::foocontents::::bazcontent"
    );
    let img = lab.image("args:1");
    let config = img.config.to_string();
    assert!(
        !config.contains("hpvalue") && !config.contains("npvalue"),
        "a proxy value reached the config or history: {config}"
    );

    let second = [
        "--build-arg",
        "FOO=foocontents",
        "--build-arg",
        "http_proxy=hpvalue2",
    ];
    let log = build_ok(&lab, "ctx", BUILTIN_ARGS, "args:2", &second);
    assert!(
        log.contains("CACHED"),
        "a changed proxy reran the step:\n{log}"
    );
    let fs = lab.rootfs("args:2");
    assert_eq!(
        read(&fs.join("out")),
        "hpvalue::npvalue::foocontents::::bazcontent"
    );

    let third = [
        "--build-arg",
        "FOO=foocontents2",
        "--build-arg",
        "http_proxy=hpvalue2",
    ];
    build_ok(&lab, "ctx", BUILTIN_ARGS, "args:3", &third);
    let fs = lab.rootfs("args:3");
    assert_eq!(
        read(&fs.join("out")),
        "hpvalue2::::foocontents2::::bazcontent"
    );
}

/// BuildKit's `proxyEnvFromBuildArgs`/`proxyEnvList` (`testBuiltinArgs`):
/// every proxy build arg, in either spelling, reaches every `RUN` of every
/// stage in both spellings.
#[test]
fn proxy_env_mirrors_test_builtin_args_every_spelling_every_stage() {
    let lab = Lab::new(bin!());
    let df = "FROM base:1 AS one\n\
              RUN env | grep -i _proxy= | sort > /one\n\
              FROM base:1\n\
              COPY --from=one /one /one\n\
              RUN env | grep -i _proxy= | sort > /two\n";
    let args = [
        "--build-arg",
        "HTTPS_PROXY=https-value",
        "--build-arg",
        "ftp_proxy=ftp-value",
        "--build-arg",
        "ALL_PROXY=all-value",
        "--build-arg",
        "no_proxy=no-value",
        "--build-arg",
        "HTTP_PROXY=http-value",
    ];
    build_ok(&lab, "ctx", df, "proxy:1", &args);
    let fs = lab.rootfs("proxy:1");
    let want = "ALL_PROXY=all-value\nFTP_PROXY=ftp-value\nHTTPS_PROXY=https-value\n\
                HTTP_PROXY=http-value\nNO_PROXY=no-value\nall_proxy=all-value\n\
                ftp_proxy=ftp-value\nhttp_proxy=http-value\nhttps_proxy=https-value\n\
                no_proxy=no-value\n";
    assert_eq!(read(&fs.join("one")), want);
    assert_eq!(read(&fs.join("two")), want);
    let img = lab.image("proxy:1");
    let config = img.config.to_string();
    assert!(!config.contains("-value"), "{config}");
}

const CHECK_HOSTNAME: &str = "FROM base:1\n\
    RUN cat /etc/hosts | grep foo\n\
    RUN echo $HOSTNAME | grep foo\n\
    RUN echo $(hostname) | grep foo\n";

/// BuildKit's `testDockerfileCheckHostname` ("arg" case):
/// `BUILDKIT_SANDBOX_HOSTNAME` sets the hostname, `/etc/hosts` and
/// `$HOSTNAME`; without it the same steps fail (`buildkitsandbox`).
#[test]
fn check_hostname_mirrors_test_dockerfile_check_hostname() {
    let lab = Lab::new(bin!());
    let out = build(&lab, "ctx", CHECK_HOSTNAME, "host:0", &[]);
    assert!(!out.status.success(), "no step may see foo by default");
    build_ok(
        &lab,
        "ctx",
        CHECK_HOSTNAME,
        "host:1",
        &["--build-arg", "BUILDKIT_SANDBOX_HOSTNAME=foo"],
    );
    // The default: BuildKit's name, in /etc/hosts and $HOSTNAME too.
    let df =
        "FROM base:1\nRUN echo $HOSTNAME > /env && hostname > /name && cat /etc/hosts > /hosts\n";
    build_ok(&lab, "dflt", df, "host:2", &[]);
    let fs = lab.rootfs("host:2");
    assert_eq!(read(&fs.join("env")), "buildkitsandbox\n");
    assert_eq!(read(&fs.join("name")), "buildkitsandbox\n");
    // The hostname is part of the step's key, as BuildKit's ExecOp meta.
    let log = build_ok(
        &lab,
        "dflt",
        df,
        "host:3",
        &["--build-arg", "BUILDKIT_SANDBOX_HOSTNAME=bar"],
    );
    assert!(!log.contains("CACHED"), "{log}");
    let fs = lab.rootfs("host:3");
    assert_eq!(read(&fs.join("env")), "bar\n");
    assert_eq!(
        read(&fs.join("hosts")),
        "127.0.0.1\tlocalhost bar\n::1\tlocalhost ip6-localhost ip6-loopback\n"
    );
}

/// `hoist build` with `SOURCE_DATE_EPOCH` in the environment (the Lab's
/// runs remove it).
fn build_with_env_epoch(lab: &Lab, name: &str, df: &str, tag: &str, epoch: &str) {
    let ctx = lab.path(name);
    write(&ctx, &[("Dockerfile", df)]);
    let out = Command::new(env!("CARGO_BIN_EXE_hoist"))
        .arg("--root")
        .arg(&lab.root)
        .args(["build", "-q", "-t", tag, ctx.to_str().unwrap()])
        .env("SOURCE_DATE_EPOCH", epoch)
        .env_remove("HOIST_ROOT")
        .env("DOCKER_CONFIG", lab.root.join("docker-config"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

/// The image's `created` and each history entry's, from `skip` on.
fn times(lab: &Lab, tag: &str, skip: usize) -> (String, Vec<String>) {
    let img = lab.image(tag);
    let created = img.config["created"].as_str().unwrap().to_string();
    let history = img.config["history"].as_array().unwrap()[skip..]
        .iter()
        .map(|h| h["created"].as_str().unwrap_or_default().to_string())
        .collect();
    (created, history)
}

/// BuildKit's `testSourceDateEpochWithoutExporter`: `--build-arg
/// SOURCE_DATE_EPOCH` is the image's `created` and every history entry's
/// (of the steps the Dockerfile adds), also when every step is a cache hit
/// made by a build without it.
#[test]
fn source_date_epoch_mirrors_test_source_date_epoch_without_exporter() {
    let lab = Lab::new(bin!());
    let df = "FROM base:1\nENTRYPOINT foo bar\nRUN echo x > /x\nCOPY Dockerfile .\nWORKDIR /w\n";
    // First without: the records carry this build's times.
    build_ok(&lab, "ctx", df, "sde:0", &[]);
    build_ok(
        &lab,
        "ctx",
        df,
        "sde:1",
        &["--build-arg", "SOURCE_DATE_EPOCH=1700000001"],
    );
    let (created, history) = times(&lab, "sde:1", 1);
    assert_eq!(created, "2023-11-14T22:13:21Z");
    assert_eq!(history.len(), 4);
    for h in history {
        assert_eq!(h, "2023-11-14T22:13:21Z");
    }
}

/// BuildKit's `testSourceDateEpochDockerfileDefault`,
/// `…DefaultOverride` and `…DefaultReset`: a global `ARG
/// SOURCE_DATE_EPOCH=…` default is used without a build arg; a build arg
/// (or the environment, as buildx passes it) wins; an empty build arg
/// unsets it.
#[test]
fn source_date_epoch_default_mirrors_test_source_date_epoch_dockerfile_default() {
    let lab = Lab::new(bin!());
    let df = "ARG SOURCE_DATE_EPOCH=1445412480\nFROM base:1\nCOPY Dockerfile .\n";
    build_ok(&lab, "ctx", df, "d:1", &[]);
    let (created, history) = times(&lab, "d:1", 1);
    assert_eq!(created, "2015-10-21T07:28:00Z");
    assert_eq!(history, ["2015-10-21T07:28:00Z"]);

    build_ok(
        &lab,
        "ctx",
        df,
        "d:2",
        &["--build-arg", "SOURCE_DATE_EPOCH=1700000002"],
    );
    assert_eq!(times(&lab, "d:2", 1).0, "2023-11-14T22:13:22Z");

    build_with_env_epoch(&lab, "ctx", df, "d:3", "1700000003");
    assert_eq!(times(&lab, "d:3", 1).0, "2023-11-14T22:13:23Z");

    build_ok(
        &lab,
        "ctx",
        df,
        "d:4",
        &["--build-arg", "SOURCE_DATE_EPOCH="],
    );
    let (created, _) = times(&lab, "d:4", 1);
    assert_ne!(
        created, "2015-10-21T07:28:00Z",
        "an empty build arg unsets it"
    );
}

/// BuildKit's `testSourceDateEpochDockerfileDefaultInvalid`: a value that
/// is not a number of seconds is an error, whether a Dockerfile default
/// (at its line) or a build arg.
#[test]
fn source_date_epoch_invalid_mirrors_test_source_date_epoch_dockerfile_default_invalid() {
    let lab = Lab::new(bin!());
    let df = "ARG SOURCE_DATE_EPOCH=not-a-timestamp\nFROM scratch\nCOPY Dockerfile .\n";
    let out = build(&lab, "ctx", df, "bad:1", &[]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("invalid SOURCE_DATE_EPOCH: not-a-timestamp"),
        "{err}"
    );
    assert!(err.contains("Dockerfile:1"), "names the ARG's line: {err}");

    let df = "FROM scratch\nCOPY Dockerfile .\n";
    let out = build(
        &lab,
        "ctx2",
        df,
        "bad:2",
        &["--build-arg", "SOURCE_DATE_EPOCH=1.5"],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("invalid SOURCE_DATE_EPOCH: 1.5"),
        "{}",
        stderr(&out)
    );
}

/// BuildKit's `testTargetStageNameArg`: `TARGETSTAGE` is predefined (the
/// `--target` stage's name; without one, the last stage's, or `default`)
/// and, like the platform args, seen in a stage only after `ARG
/// TARGETSTAGE`.
#[test]
fn target_stage_mirrors_test_target_stage_name_arg() {
    let lab = Lab::new(bin!());
    let df = "FROM base:1 AS base
WORKDIR /out
\
              RUN echo -n \"value:$TARGETSTAGE\" > /out/first
\
              ARG TARGETSTAGE
\
              RUN echo -n \"value:$TARGETSTAGE\" > /out/second
\
              FROM base:1 AS foo
COPY --from=base /out/ /out/
\
              FROM base:1
COPY --from=base /out/ /out/
";
    build_ok(&lab, "ctx", df, "ts:1", &["--target", "foo"]);
    let fs = lab.rootfs("ts:1");
    assert_eq!(read(&fs.join("out/first")), "value:");
    assert_eq!(read(&fs.join("out/second")), "value:foo");
    build_ok(&lab, "ctx", df, "ts:2", &[]);
    let fs = lab.rootfs("ts:2");
    assert_eq!(read(&fs.join("out/second")), "value:default");
}

/// BuildKit's `testCacheMountSourceEscape`: a cache mount's `source=` is a
/// directory inside the cache; one that leads out, through a link the
/// cache holds or as `../..`, fails the build at the step's set-up with a
/// clear error and never mounts what is outside.
#[test]
fn cache_mount_source_escape_mirrors_test_cache_mount_source_escape() {
    let lab = Lab::new(bin!());
    let df = "FROM base:1 AS init\n\
              RUN --mount=type=cache,id=sourceescape,target=/cache mkdir -p /cache/sel && echo benign > /cache/sel/benign.txt\n\
              FROM init AS ok\n\
              RUN --mount=type=cache,id=sourceescape,source=sel,target=/sub cat /sub/benign.txt > /seen\n";
    build_ok(&lab, "ctx", df, "cm:1", &[]);
    assert_eq!(read(&lab.rootfs("cm:1").join("seen")), "benign\n");

    let df = "FROM base:1 AS init\n\
              RUN --mount=type=cache,id=sourceescape,target=/cache rm -rf /cache/sel && ln -s /etc /cache/sel\n\
              FROM init AS victim\n\
              RUN --mount=type=cache,id=sourceescape,source=sel,target=/victim cat /victim/passwd\n";
    let out = build(&lab, "ctx2", df, "cm:2", &["--no-cache"]);
    assert!(
        !out.status.success(),
        "a cache source through a link out was mounted"
    );
    let err = stderr(&out);
    assert!(err.contains("source=sel"), "{err}");
    assert!(!err.contains("root:x:0:0"), "{err}");

    let df = "FROM base:1\nRUN --mount=type=cache,target=/c,source=../.. true\n";
    let out = build(&lab, "ctx3", df, "cm:3", &[]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("source=../..") && err.contains("leads out of the cache"),
        "{err}"
    );
    assert!(err.contains("Dockerfile:2"), "{err}");
}

/// BuildKit's `testSSHSocketParams`: `RUN --mount=type=ssh,mode=,uid=,gid=`
/// are the socket's mode and owner in the step (default `0600`, root's);
/// the agent's own socket on the host keeps its mode.
#[test]
fn ssh_socket_params_mirror_test_ssh_socket_params() {
    use std::os::unix::fs::PermissionsExt;
    let lab = Lab::new(bin!());
    let sock = lab.path("agent.sock");
    let _agent = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o700)).unwrap();
    let df = "FROM base:1\n\
              RUN --mount=type=ssh,mode=741,uid=100,gid=102 stat -c \"%u %g %f\" $SSH_AUTH_SOCK > /params\n\
              RUN --mount=type=ssh stat -c \"%u %g %a\" $SSH_AUTH_SOCK > /default\n";
    let spec = format!("default={}", sock.display());
    build_ok(&lab, "ctx", df, "ssh:1", &["--ssh", &spec]);
    let fs = lab.rootfs("ssh:1");
    assert_eq!(read(&fs.join("params")), "100 102 c1e1\n");
    assert_eq!(read(&fs.join("default")), "0 0 600\n");
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o700, "the agent's socket was changed");
}
