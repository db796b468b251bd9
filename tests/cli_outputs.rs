//! Issue 12 item 3: what hoist writes, opened by the tools that read it.
//! One build's OCI layout (directory and tar) and Docker archive: the
//! layout's index names the image BuildKit's way (`ref.name` the tag,
//! `io.containerd.image.name` the full name) so `skopeo` and `umoci` find
//! it by tag; every history entry has `created`; the manifest each tool
//! sees is the digest the build printed; files get 0666 less the umask.
//! podman loads both archives; a private Docker engine (Debian's
//! `dockerd`, `hoist_test_support::dockerd`) loads and runs both.

use hoist_test_support::{bin, dockerd, lab, podman};

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use lab::Lab;

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("the tool is installed");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn umask() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let v = status
        .lines()
        .find_map(|l| l.strip_prefix("Umask:"))
        .unwrap();
    u32::from_str_radix(v.trim(), 8).unwrap()
}

#[test]
fn skopeo_umoci_and_podman_open_what_a_build_writes() {
    let lab = Lab::new(bin!());
    let ctx = lab.path("ctx");
    lab::write(
        &ctx,
        &[(
            "Dockerfile",
            "FROM base:1\nENV A=1\nCOPY f /f\nLABEL x=y\nCMD [\"/bin/sh\"]\n",
        )],
    );
    lab::write(&ctx, &[("f", "data\n")]);
    let (dir, oci_tar, docker_tar) = (
        lab.path("layout"),
        lab.path("app-oci.tar"),
        lab.path("app-docker.tar"),
    );
    let (printed, _) = lab.ok(&[
        "build",
        "-q",
        "-t",
        "app:1",
        "-o",
        &format!("type=oci,dest={},tar=false", dir.display()),
        "-o",
        &format!("type=oci,dest={}", oci_tar.display()),
        "-o",
        &format!("type=docker,dest={}", docker_tar.display()),
        ctx.to_str().unwrap(),
    ]);
    let printed = printed.trim();

    // The index names the image as BuildKit's OCI exporter does.
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let ann = &index["manifests"][0]["annotations"];
    assert_eq!(ann["org.opencontainers.image.ref.name"], "1", "{index}");
    assert_eq!(ann["io.containerd.image.name"], "docker.io/library/app:1");
    assert_eq!(index["manifests"][0]["digest"], printed);

    // skopeo finds it by tag, and sees the printed manifest.
    let layout = format!("oci:{}:1", dir.display());
    let raw = run(Command::new("skopeo").args(["inspect", "--raw", &layout]));
    assert_eq!(
        hoist_engine::digest::Digest::of(raw.as_bytes()).to_string(),
        printed
    );
    let archive = format!("oci-archive:{}:1", oci_tar.display());
    let raw = run(Command::new("skopeo").args(["inspect", "--raw", &archive]));
    assert_eq!(
        hoist_engine::digest::Digest::of(raw.as_bytes()).to_string(),
        printed
    );
    run(Command::new("skopeo").args([
        "inspect",
        &format!("docker-archive:{}", docker_tar.display()),
    ]));

    // umoci: stat (it needs every history entry's `created`) and unpack.
    let image = format!("{}:1", dir.display());
    let stat = run(Command::new("umoci").args(["stat", "--json", "--image", &image]));
    let stat: serde_json::Value = serde_json::from_str(&stat).unwrap();
    let history = stat["history"]
        .as_array()
        .expect("umoci stat lists history");
    assert!(history.len() >= 5, "{stat}");
    let config = run(Command::new("skopeo").args(["inspect", "--config", &layout]));
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    for h in config["history"].as_array().unwrap() {
        assert!(
            h["created"].is_string(),
            "every history entry has a time: {h}"
        );
    }
    let bundle = lab.path("bundle");
    run(Command::new("umoci")
        .args(["unpack", "--image", &image])
        .arg(&bundle));
    assert_eq!(
        std::fs::read_to_string(bundle.join("rootfs/f")).unwrap(),
        "data\n"
    );

    // The user's files: 0666 less the umask, as `docker save -o` makes them.
    for f in [&oci_tar, &docker_tar] {
        let mode = std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o666 & !umask(), "{}", f.display());
    }

    // podman loads both archives.
    let pm = lab.path("podman");
    let podman = |args: &[&str]| {
        run(podman::in_dir(&pm, "vfs")
            .args(["--events-backend", "none"])
            .args(args))
    };
    podman(&["load", "-i", docker_tar.to_str().unwrap()]);
    podman(&["load", "-i", oci_tar.to_str().unwrap()]);
    let images = podman(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(images.contains("app:1"), "{images}");
    podman(&["rmi", "--all", "--force"]);
}

#[test]
fn docker_loads_and_runs_both_archives() {
    let lab = Lab::new(bin!());
    let ctx = lab.path("ctx");
    lab::write(
        &ctx,
        &[
            (
                "Dockerfile",
                "FROM base:1\nCOPY f /f\nCMD [\"cat\", \"/f\"]\n",
            ),
            ("f", "from hoist\n"),
        ],
    );
    let (oci_tar, docker_tar) = (lab.path("app-oci.tar"), lab.path("app-docker.tar"));
    let (printed, _) = lab.ok(&[
        "build",
        "-q",
        "-t",
        "app:1",
        "-o",
        &format!("type=docker,dest={}", docker_tar.display()),
        "-o",
        &format!("type=oci,dest={}", oci_tar.display()),
        ctx.to_str().unwrap(),
    ]);
    let printed = printed.trim();
    let engine = dockerd::Dockerd::start();
    let loaded = engine.ok(&["load", "-i", docker_tar.to_str().unwrap()]);
    assert!(loaded.contains("app:1"), "{loaded}");
    let out = engine.ok(&["run", "--rm", "--network", "none", "app:1"]);
    assert_eq!(out, "from hoist\n");
    // docker 20.10 keys images by config digest: the config hoist wrote.
    let id = engine.ok(&["image", "inspect", "--format", "{{.Id}}", "app:1"]);
    let skopeo = run(Command::new("skopeo").args([
        "inspect",
        "--raw",
        &format!("oci-archive:{}:1", oci_tar.display()),
    ]));
    assert_eq!(
        hoist_engine::digest::Digest::of(skopeo.as_bytes()).to_string(),
        printed
    );
    let manifest: serde_json::Value = serde_json::from_str(&skopeo).unwrap();
    assert_eq!(manifest["config"]["digest"].as_str().unwrap(), id.trim());
    // The OCI archive loads too (docker 20.10 reads OCI layouts' tars).
    engine.ok(&["rmi", "app:1"]);
    let loaded = engine.docker(&["load", "-i", oci_tar.to_str().unwrap()]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&loaded.stdout),
        String::from_utf8_lossy(&loaded.stderr)
    );
    assert!(
        loaded.status.success(),
        "docker load of the OCI archive: {text}"
    );
}
