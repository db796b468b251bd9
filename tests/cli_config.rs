//! hoist's configuration file (`docs/configuration.md`) through the CLI,
//! with a real `docker-registry` on 127.0.0.1: mirrors (buildkitd's
//! `[registry."host"] mirrors`), the store `root` and its precedence,
//! errors located at file:line:col, and `[build]` defaults that flags
//! override (`RUN` steps over the busybox base of `hoist_test_support::lab`).

use hoist_test_support::{bin, lab};

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hoist_engine::store::Store;
use hoist_engine::testing::Registry;

fn registry() -> Registry {
    Registry::start(None)
        .expect("docker-registry (Debian package docker-registry) must be installed")
}

/// `hoist ARGS` with no configuration from the environment and a private
/// Docker config; `envs` are set on top.
fn hoist(dir: &Path, args: &[&str], envs: &[(&str, &Path)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hoist"));
    cmd.args(args)
        .env_remove("HOIST_CONFIG")
        .env_remove("HOIST_ROOT")
        .env_remove("HOIST_INSECURE_REGISTRIES")
        .env("XDG_CONFIG_HOME", dir.join("xdg-config"))
        .env("DOCKER_CONFIG", dir.join("docker-config"));
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("hoist runs")
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "hoist failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn write_config(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A small image pushed to `registry` as `x/y:tag`; its manifest digest.
fn push_small_image(dir: &Path, registry: &Registry) -> String {
    let src = dir.join("src-store");
    let manifest = hoist_engine::testing::small_image(
        &Store::open(&src).unwrap(),
        "docker.io/library/hello:1",
    )
    .unwrap();
    let dest = format!("{}/x/y:tag", registry.addr());
    let out = hoist(
        dir,
        &["--root", src.to_str().unwrap(), "push", "hello:1", &dest],
        &[],
    );
    ok(&out);
    manifest.digest().to_string()
}

/// buildkitd: `[registry."docker.io"] mirrors = [...]` sends pulls of that
/// registry to the mirror, with the same repository path; the image is
/// named as asked. The registry's name need not even resolve.
#[test]
fn a_mirror_serves_a_registry_that_does_not_resolve() {
    let mirror = registry();
    let dir = tempfile::tempdir().unwrap();
    let digest = push_small_image(dir.path(), &mirror);
    let store = dir.path().join("store");
    let root = store.to_str().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "[registry.\"registry.invalid:5000\"]\nmirrors = [\"{}\"]\n",
            mirror.addr()
        ),
    );
    let out = hoist(
        dir.path(),
        &[
            "--config",
            config.to_str().unwrap(),
            "--root",
            root,
            "pull",
            "-q",
            "registry.invalid:5000/x/y:tag",
        ],
        &[],
    );
    assert_eq!(ok(&out), "registry.invalid:5000/x/y:tag\n");
    let inspect = ok(&hoist(
        dir.path(),
        &["--root", root, "inspect", "registry.invalid:5000/x/y:tag"],
        &[],
    ));
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(v["Digest"], digest, "{inspect}");
    ok(&hoist(dir.path(), &["--root", root, "store", "check"], &[]));

    // Without the mirror the same pull fails: the name does not resolve.
    let empty = dir.path().join("empty.toml");
    std::fs::write(&empty, "").unwrap();
    let out = hoist(
        dir.path(),
        &[
            "--config",
            empty.to_str().unwrap(),
            "--root",
            root,
            "pull",
            "registry.invalid:5000/x/y:other",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("registry.invalid:5000"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// containerd's hosts: mirrors in order, then the registry itself. A
/// mirror that is down or lacks the image is passed over; when every host
/// fails, the error is the registry's, with what each mirror said.
#[test]
fn mirrors_are_tried_in_order_then_the_registry() {
    let (upstream, empty_mirror) = (registry(), registry());
    let dir = tempfile::tempdir().unwrap();
    let digest = push_small_image(dir.path(), &upstream);
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = write_config(
        dir.path(),
        &format!(
            "[registry.\"{}\"]\nmirrors = [\"127.0.0.1:{dead}\", \"{}\"]\n",
            upstream.addr(),
            empty_mirror.addr()
        ),
    );
    let store = dir.path().join("store");
    let (root, config) = (store.to_str().unwrap(), config.to_str().unwrap());
    let image = format!("{}/x/y:tag", upstream.addr());
    let out = hoist(
        dir.path(),
        &["--config", config, "--root", root, "pull", "-q", &image],
        &[],
    );
    assert_eq!(ok(&out), format!("{image}\n"));
    let inspect = ok(&hoist(
        dir.path(),
        &["--root", root, "inspect", &image],
        &[],
    ));
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(v["Digest"], digest);

    let missing = format!("{}/x/nope:tag", upstream.addr());
    let out = hoist(
        dir.path(),
        &["--config", config, "--root", root, "pull", &missing],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not found"), "{err}");
    assert!(err.contains("every mirror failed"), "{err}");
    assert!(err.contains(&format!("127.0.0.1:{dead}: ")), "{err}");
    assert!(err.contains(&format!("{}: ", empty_mirror.addr())), "{err}");
}

/// `root` in the file picks the store; `$HOIST_ROOT` and `--root` beat
/// it; the file can come from `$HOIST_CONFIG`; a named file that is not
/// there is an error.
#[test]
fn root_from_the_config_and_what_beats_it() {
    let dir = tempfile::tempdir().unwrap();
    let (from_config, from_env, from_flag) = (
        dir.path().join("config-root"),
        dir.path().join("env-root"),
        dir.path().join("flag-root"),
    );
    for (root, name) in [
        (&from_config, "docker.io/library/config:1"),
        (&from_env, "docker.io/library/env:1"),
        (&from_flag, "docker.io/library/flag:1"),
    ] {
        hoist_engine::testing::small_image(&Store::open(root).unwrap(), name).unwrap();
    }
    let config = write_config(
        dir.path(),
        &format!("root = \"{}\"\n", from_config.display()),
    );
    let c = config.to_str().unwrap();
    // The names in the store the command used.
    let images = |args: &[&str], envs: &[(&str, &Path)]| -> Vec<String> {
        let mut all = args.to_vec();
        all.extend(["images", "--format", "json"]);
        let list: serde_json::Value =
            serde_json::from_str(&ok(&hoist(dir.path(), &all, envs))).unwrap();
        list.as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        images(&["--config", c], &[]),
        ["docker.io/library/config:1"]
    );
    assert_eq!(
        images(&[], &[("HOIST_CONFIG", &config)]),
        ["docker.io/library/config:1"]
    );
    assert_eq!(
        images(&["--config", c], &[("HOIST_ROOT", &from_env)]),
        ["docker.io/library/env:1"]
    );
    assert_eq!(
        images(
            &["--config", c, "--root", from_flag.to_str().unwrap()],
            &[("HOIST_ROOT", &from_env)]
        ),
        ["docker.io/library/flag:1"]
    );
    // The user's default file ($XDG_CONFIG_HOME/hoist/config.toml) is not
    // read as root: root's is /etc/hoist/config.toml.
    if running_as_root() {
        let xdg = dir.path().join("xdg-config").join("hoist");
        std::fs::create_dir_all(&xdg).unwrap();
        std::fs::write(xdg.join("config.toml"), "bogus = 1\n").unwrap();
        let out = hoist(
            dir.path(),
            &["--root", from_flag.to_str().unwrap(), "images", "-q"],
            &[],
        );
        ok(&out);
    }

    let missing = dir.path().join("missing.toml");
    for (args, envs) in [
        (vec!["--config", missing.to_str().unwrap()], vec![]),
        (vec![], vec![("HOIST_CONFIG", missing.as_path())]),
    ] {
        let mut all = args.clone();
        all.extend(["images"]);
        let out = hoist(dir.path(), &all, &envs);
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("missing.toml") && err.contains("does not exist"),
            "{err}"
        );
    }
}

/// Whether this test runs with effective uid 0 (`/proc/self/status`).
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
        .unwrap_or(false)
}

/// A typo is an error at its file, line and column, with the line and a
/// caret (as Dockerfile errors); so is a value of the wrong type.
#[test]
fn a_bad_key_is_an_error_at_file_line_col() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let cases = [
        (
            "# team settings\n[registry.\"registry.lan:5000\"]\n  insecur = true\n",
            ":3:3: unknown field `insecur`",
            "  insecur = true",
        ),
        (
            "[build]\nnetwork = 5\n",
            ":2:11: invalid type: integer `5`, expected a string",
            "network = 5",
        ),
        (
            "[build]\nnetwork = \"bridge\"\n",
            ":2:11: build.network \"bridge\": expected one of default, host, none",
            "network = \"bridge\"",
        ),
    ];
    for (text, located, line) in cases {
        let config = write_config(dir.path(), text);
        let out = hoist(
            dir.path(),
            &[
                "--config",
                config.to_str().unwrap(),
                "--root",
                root.to_str().unwrap(),
                "images",
            ],
            &[],
        );
        assert_eq!(out.status.code(), Some(1), "{text}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!("{}{located}", config.display())),
            "{text}: {err}"
        );
        assert!(err.contains(&format!(" | {line}\n")), "{text}: {err}");
        assert!(err.contains(" | "), "{err}");
    }
}

/// `[build]` fills flags that were not given; a flag always wins.
#[test]
fn build_defaults_apply_and_flags_override_them() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY a.txt /\n").unwrap();
    std::fs::write(ctx.join("a.txt"), "a".repeat(10_000)).unwrap();
    let config = write_config(
        dir.path(),
        "[build]\nplatform = \"linux/arm64\"\ncompression = \"zstd\"\n",
    );
    let store = dir.path().join("store");
    let (c, root, ctx) = (
        config.to_str().unwrap(),
        store.to_str().unwrap(),
        ctx.to_str().unwrap(),
    );
    // Build `tag` with an OCI layout output at `out` (plus `extra` flags).
    let build = |extra: &[&str], tag: &str, out: &Path| {
        let dest = format!("type=oci,dest={},tar=false", out.display());
        let mut args = vec![
            "--config", c, "--root", root, "build", "-t", tag, "-o", &dest,
        ];
        args.extend(extra);
        args.push(ctx);
        ok(&hoist(dir.path(), &args, &[]));
    };
    let arch = |tag: &str| {
        let inspect = ok(&hoist(dir.path(), &["--root", root, "inspect", tag], &[]));
        let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
        v["Config"]["architecture"].as_str().unwrap().to_string()
    };
    // The media type of the first layer of the image in an OCI layout.
    let layer_type = |layout: &Path| {
        let read = |p: PathBuf| -> serde_json::Value {
            serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
        };
        let index = read(layout.join("index.json"));
        let digest = index["manifests"][0]["digest"].as_str().unwrap();
        let blob = layout
            .join("blobs/sha256")
            .join(digest.trim_start_matches("sha256:"));
        read(blob)["layers"][0]["mediaType"]
            .as_str()
            .unwrap()
            .to_string()
    };

    let defaults = dir.path().join("out-defaults");
    build(&[], "defaults:1", &defaults);
    assert_eq!(arch("defaults:1"), "arm64");
    assert_eq!(
        layer_type(&defaults),
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );

    let flags = dir.path().join("out-flags");
    let gzip = format!(
        "type=oci,dest={},tar=false,compression=gzip",
        flags.display()
    );
    build(
        &["--platform", "linux/amd64", "-o", &gzip],
        "flags:1",
        &dir.path().join("out-other"),
    );
    assert_eq!(arch("flags:1"), "amd64");
    assert_eq!(
        layer_type(&flags),
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
}

/// `[build] network = "none"` puts `RUN` steps in a network namespace with
/// only `lo` (BuildKit's `--network none`); `--network host` on the command
/// line still gives the host's interfaces, given the `network.host`
/// entitlement, which `[build] allow` grants for the machine.
#[test]
fn build_network_default_applies_to_run_and_the_flag_overrides_it() {
    let lab = lab::Lab::new(bin!());
    let config = write_config(
        lab.dir.path(),
        "[build]\nnetwork = \"none\"\nallow = [\"network.host\"]\n",
    );
    let c = config.to_str().unwrap();
    lab.build_case("network", "cfg-none:1", &["--config", c]);
    assert_eq!(lab::read(&lab.rootfs("cfg-none:1").join("net")), "lo\n");

    lab.build_case(
        "network",
        "flag-host:1",
        &["--config", c, "--network", "host"],
    );
    let seen = lab::read(&lab.rootfs("flag-host:1").join("net"));
    let host = std::fs::read_dir("/sys/class/net").unwrap().count();
    assert!(host > 1, "this host has an interface besides lo");
    assert_eq!(seen.lines().count(), host, "the host's interfaces: {seen}");
}
