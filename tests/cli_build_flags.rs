//! buildx flags for `hoist build` as a docker user types them:
//! `--add-host`, `--no-cache-filter`, `--load`, `--annotation`. Each test
//! names the BuildKit (buildx) behaviour it mirrors.

use hoist_test_support::{bin, dockerd, lab, podman};

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use lab::Lab;

/// `hoist --root ROOT ARGS` as `lab::hoist` runs it, with `env` set.
fn hoist_env(lab: &Lab, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hoist"))
        .arg("--root")
        .arg(&lab.root)
        .args(args)
        .env_remove("SOURCE_DATE_EPOCH")
        .env_remove("HOIST_ROOT")
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT")
        .env_remove("CONTAINER_HOST")
        .env("DOCKER_CONFIG", lab.root.join("docker-config"))
        .envs(env.iter().copied())
        .output()
        .expect("hoist runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A context whose image prints `from hoist` when run.
fn app_context(lab: &Lab) -> PathBuf {
    let ctx = lab.path("app");
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
    ctx
}

/// The lines of a build's plain log that a RUN printed with `marker`.
fn printed(log: &str, marker: &str) -> Vec<String> {
    lab::printed_lines(log)
        .into_iter()
        .filter(|text| text.starts_with(marker))
        .map(str::to_string)
        .collect()
}

#[test]
fn add_host_lines_are_in_run_steps_hosts_and_never_in_the_image() {
    // buildx `--add-host HOST:IP` (and `HOST=IP`, `[v6]`): BuildKit writes
    // `IP\tHOST` after its own two lines in the step's generated
    // /etc/hosts (`makeHostsFile`), a mount never in a layer; the hosts
    // are part of the step's cache key (ExecOp meta).
    let lab = Lab::new(bin!());
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
    let lab = Lab::new(bin!());
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

#[test]
fn load_puts_the_image_into_docker_as_buildx_does() {
    // buildx `--load` (= `--output type=docker`): the image is in the
    // docker engine under its tags, keyed by the config digest the build
    // wrote; hoist says which engine took it.
    let lab = Lab::new(bin!());
    let ctx = app_context(&lab);
    let engine = dockerd::Dockerd::start();
    let metadata = lab.path("meta.json");
    let out = hoist_env(
        &lab,
        &[
            "build",
            "--load",
            "-t",
            "app:1",
            "--metadata-file",
            metadata.to_str().unwrap(),
            ctx.to_str().unwrap(),
        ],
        &[("DOCKER_HOST", &engine.host())],
    );
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    // `loading image into docker VERSION at unix://… done`, the version
    // being the engine's own.
    let version = engine.ok(&["version", "--format", "{{.Server.Version}}"]);
    assert!(
        log.contains(&format!(
            "loading image into docker {} at {} done",
            version.trim(),
            engine.host()
        )),
        "{log}"
    );
    let run = engine.ok(&["run", "--rm", "--network", "none", "app:1"]);
    assert_eq!(run, "from hoist\n");
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&metadata).unwrap()).unwrap();
    let id = engine.ok(&["image", "inspect", "--format", "{{.Id}}", "app:1"]);
    assert_eq!(
        id.trim(),
        meta["containerimage.config.digest"].as_str().unwrap()
    );
    // `-o type=docker` without dest is the same load (here of `hoist export`).
    engine.ok(&["rmi", "app:1"]);
    let out = hoist_env(
        &lab,
        &["export", "app:1", "-o", "type=docker"],
        &[("DOCKER_HOST", &engine.host())],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        engine.ok(&["run", "--rm", "--network", "none", "app:1"]),
        "from hoist\n"
    );
}

/// `podman system service` on a private store and socket, stopped on drop.
struct PodmanService {
    dir: tempfile::TempDir,
    child: Child,
}

impl PodmanService {
    fn start() -> PodmanService {
        let dir = tempfile::Builder::new()
            .prefix("hp")
            .tempdir_in("/tmp")
            .unwrap();
        let child = PodmanService::podman_in(dir.path())
            .args(["system", "service", "--time=0"])
            .arg(format!(
                "unix://{}",
                dir.path().join("podman.sock").display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("podman is installed");
        let service = PodmanService { dir, child };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !service.socket().exists() {
            assert!(Instant::now() < deadline, "podman's socket did not appear");
            std::thread::sleep(Duration::from_millis(100));
        }
        service
    }

    fn podman_in(dir: &Path) -> Command {
        let mut cmd = podman::in_dir(dir, "vfs");
        cmd.args(["--events-backend", "none"]);
        cmd
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("podman.sock")
    }

    fn host(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    fn podman(&self, args: &[&str]) -> String {
        let out = PodmanService::podman_in(self.dir.path())
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "podman {args:?}: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for PodmanService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Not `podman()`: no assertion while a failed test unwinds.
        let _ = PodmanService::podman_in(self.dir.path())
            .args(["rmi", "--all", "--force"])
            .output();
    }
}

#[test]
fn load_falls_back_to_podman_and_says_what_it_tried_when_nothing_answers() {
    // No docker at DOCKER_HOST: podman's Docker-compatible API
    // (CONTAINER_HOST, as podman-remote finds it) takes the image.
    let lab = Lab::new(bin!());
    let ctx = app_context(&lab);
    let ctx = ctx.to_str().unwrap();
    let nothing = lab.path("nothing");
    std::fs::create_dir(&nothing).unwrap();
    let no_docker = format!("unix://{}/docker.sock", nothing.display());
    let podman = PodmanService::start();
    let out = hoist_env(
        &lab,
        &["build", "--load", "-t", "app:1", ctx],
        &[
            ("DOCKER_HOST", &no_docker),
            ("CONTAINER_HOST", &podman.host()),
        ],
    );
    let log = text(&out);
    assert!(out.status.success(), "{log}");
    assert!(
        log.contains(&format!(" at {} done", podman.host())),
        "{log}"
    );
    assert!(log.contains("loading image into podman"), "{log}");
    let images = podman.podman(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(images.contains("app:1"), "{images}");

    // Neither: an error naming every socket tried and the archive way out.
    if Path::new("/run/podman/podman.sock").exists() {
        eprintln!("a root podman socket answers on this host: the no-engine case is not checked");
        return;
    }
    let no_podman = format!("unix://{}/podman.sock", nothing.display());
    let out = hoist_env(
        &lab,
        &["build", "--load", "-t", "app:1", ctx],
        &[
            ("DOCKER_HOST", &no_docker),
            ("CONTAINER_HOST", &no_podman),
            ("XDG_RUNTIME_DIR", nothing.to_str().unwrap()),
        ],
    );
    let err = text(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for want in [
        "no Docker or Podman engine answered".to_string(),
        format!("{no_docker} (DOCKER_HOST): No such file or directory"),
        format!("{no_podman} (CONTAINER_HOST)"),
        "unix:///run/podman/podman.sock (podman's root socket)".to_string(),
        "-o type=docker,dest=FILE".to_string(),
    ] {
        assert!(err.contains(&want), "{want:?} in:\n{err}");
    }
    // Found out before the build, as buildx asks its endpoint first.
    assert!(!err.contains("COPY f /f"), "the build ran:\n{err}");
}

/// `skopeo inspect --raw REF`: the document's bytes.
fn skopeo_raw(reference: &str) -> Vec<u8> {
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", reference])
        .output()
        .expect("skopeo is installed");
    assert!(out.status.success(), "skopeo {reference}: {}", text(&out));
    out.stdout
}

/// `skopeo inspect --raw` of an image in the test registry (plain HTTP).
fn skopeo_raw_remote(name: &str) -> Vec<u8> {
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{name}"))
        .output()
        .expect("skopeo is installed");
    assert!(out.status.success(), "skopeo {name}: {}", text(&out));
    out.stdout
}

#[test]
fn annotations_go_on_the_manifest_and_its_descriptor_as_buildx_puts_them() {
    // buildx `--annotation KEY=VALUE` is a manifest annotation;
    // `manifest-descriptor:` goes on the manifest's descriptor (an OCI
    // layout's index.json); `[PLATFORM]` only on an image of that
    // platform; `-o …,annotation.KEY=VALUE` is BuildKit's exporter option.
    // The printed digest is the annotated manifest's.
    let lab = Lab::new(bin!());
    let ctx = app_context(&lab);
    let oci = lab.path("app-oci.tar");
    let (printed, _) = lab.ok(&[
        "build",
        "-q",
        "-t",
        "app:1",
        "--annotation",
        "org.opencontainers.image.title=app",
        "--annotation",
        "manifest:com.example:colon.key=a=b",
        "--annotation",
        "manifest-descriptor:com.example.desc=on the descriptor",
        "--annotation",
        "manifest[linux/amd64]:com.example.arch=amd64",
        "--annotation",
        "manifest[linux/arm64]:com.example.arch=arm64",
        "-o",
        &format!(
            "type=oci,dest={},annotation.com.example.Out=from -o",
            oci.display()
        ),
        ctx.to_str().unwrap(),
    ]);
    let printed = printed.trim();
    let raw = skopeo_raw(&format!("oci-archive:{}", oci.display()));
    assert_eq!(hoist_engine::digest::Digest::of(&raw).to_string(), printed);
    let manifest: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    let img = lab.image("app:1");
    let arch = img.config["architecture"].as_str().unwrap();
    assert_eq!(
        manifest["annotations"],
        serde_json::json!({
            "org.opencontainers.image.title": "app",
            "com.example:colon.key": "a=b",
            "com.example.arch": arch,
            "com.example.Out": "from -o",
        })
    );
    // The descriptor's annotations are in index.json, not the manifest.
    let mut archive = tar::Archive::new(std::fs::File::open(&oci).unwrap());
    let index: serde_json::Value = archive
        .entries()
        .unwrap()
        .map(|e| e.unwrap())
        .find(|e| e.path().unwrap().to_str() == Some("index.json"))
        .map(|e| serde_json::from_reader(e).unwrap())
        .expect("index.json");
    let desc = &index["manifests"][0];
    assert_eq!(desc["digest"].as_str().unwrap(), printed);
    assert_eq!(desc["annotations"]["com.example.desc"], "on the descriptor");
    // The store's name is the annotated manifest, as what `hoist save` writes.
    let out = lab.hoist(&["inspect", "app:1"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(printed),
        "{}",
        text(&out)
    );
    // Pushed, the registry has the annotated manifest under the printed
    // digest; the metadata file's descriptor carries the descriptor's.
    let registry = hoist_engine::testing::Registry::start(None)
        .expect("docker-registry (Debian package docker-registry) is installed");
    let name = format!("{}/app:1", registry.addr());
    let metadata = lab.path("meta.json");
    let (pushed, _) = lab.ok(&[
        "build",
        "-q",
        "--push",
        "-t",
        &name,
        "--metadata-file",
        metadata.to_str().unwrap(),
        "--annotation",
        "org.opencontainers.image.title=app",
        "--annotation",
        "manifest-descriptor:com.example.desc=d",
        ctx.to_str().unwrap(),
    ]);
    let raw = skopeo_raw_remote(&name);
    assert_eq!(
        hoist_engine::digest::Digest::of(&raw).to_string(),
        pushed.trim()
    );
    let manifest: serde_json::Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(
        manifest["annotations"],
        serde_json::json!({"org.opencontainers.image.title": "app"})
    );
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&metadata).unwrap()).unwrap();
    assert_eq!(
        meta["containerimage.digest"].as_str().unwrap(),
        pushed.trim()
    );
    assert_eq!(
        meta["containerimage.descriptor"]["annotations"]["com.example.desc"],
        "d"
    );
    // Index annotations need an index: refused as BuildKit refuses them
    // for a single-platform export.
    let out = lab.hoist(&["build", "--annotation", "index:k=v", ctx.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("index annotations not supported for single platform export"),
        "{}",
        text(&out)
    );
}
