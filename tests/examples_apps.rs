//! Issue 12 ("Proof and figures"): the five example apps under `examples/`
//! (`python-web`, `c-multistage`, `node-app`, `apt-cache-secret`,
//! `heredocs`), built as a user builds them and run by the engines users
//! run them with.
//!
//! Their Dockerfiles say `FROM debian:bookworm-slim` / `FROM
//! debian:bookworm`. This test makes those names from Debian's own mirror:
//! `debootstrap --variant=minbase bookworm` (slimmed as Debian's official
//! `-slim` image is), imported with `FROM scratch` + `ADD rootfs.tar /` and
//! kept as a `hoist save` tarball in `target/test-cache/`, so only the
//! first run on a machine pays for it (about three minutes); later runs
//! `hoist load` it. The examples' `apt-get` steps reach deb.debian.org through
//! hoist's default private network.
//!
//! For each example: `hoist build -t 127.0.0.1:PORT/ex/NAME:1 --push
//! --iidfile F -o type=docker,dest=NAME.tar` against a real
//! `docker-registry`; the manifest `skopeo inspect --raw` reads from the
//! registry has the digest hoist wrote to the iidfile; a private dockerd
//! (`hoist_test_support::dockerd`) loads the archive and runs it (`--network
//! none`; the web apps' servers are started in the container and queried
//! from inside it), then pulls the image from the registry: its
//! `RepoDigests` holds the same digest and its id (the config digest) is
//! the loaded archive's; podman (private `--root`/`--runroot`, `vfs`) loads
//! and runs the archive the same way, then pulls: the same digest again.
//!
//! `apt-cache-secret` also proves its mounts: without `--secret` the build
//! stops (`required=true`); with it the token is in no layer and not in the
//! config, and a `--no-cache` rebuild downloads no package again (the
//! cache mounts kept them, as BuildKit's do).
//!
//! Needs root (dockerd, podman's root store, debootstrap) and Debian's
//! mirror the first time. One test, the examples one after another: they
//! share the base image, the registry and the engines.

use hoist_test_support::{bin, dockerd, lab, podman};

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use hoist_engine::testing::Registry;
use lab::Lab;

const MIRROR: &str = "http://deb.debian.org/debian";
/// The secret the apt example's step reads; it must end up nowhere.
const APT_TOKEN: &str = "tok-3b7f0c2e9a41-never-in-an-image";

/// How to run an example's image, and what it must print.
struct Example {
    name: &'static str,
    /// Extra `hoist build` arguments.
    build_args: Vec<String>,
    /// A command instead of the image's `CMD` (empty: the image's).
    cmd: Vec<String>,
    /// Checks the run's stdout; panics with the reason.
    expect: Box<dyn Fn(&str)>,
}

/// Start the server in the background, then query it from inside the same
/// container with `client` until it answers (at most about 30 s).
fn serve_and_query(server: &str, client: &str) -> Vec<String> {
    let script = format!(
        "{server} >/tmp/server.log 2>&1 &\n\
         for i in $(seq 300); do\n\
           if {client}; then exit 0; fi\n\
           sleep 0.1\n\
         done\n\
         echo 'the server never answered:' >&2; cat /tmp/server.log >&2; exit 1\n"
    );
    vec!["sh".into(), "-c".into(), script]
}

fn examples(dir: &Path) -> Vec<Example> {
    let secret = dir.join("apt-auth.conf");
    std::fs::write(
        &secret,
        format!("machine apt.example.com login ci password {APT_TOKEN}\n"),
    )
    .unwrap();
    let wc_c = example_dir("c-multistage").join("wc.c");
    let source = std::fs::read(&wc_c).unwrap();
    let words = String::from_utf8_lossy(&source).split_whitespace().count();
    let lines = source.iter().filter(|b| **b == b'\n').count();
    let wc_expected = format!(
        "wc 1.0: {lines} lines, {words} words, {} bytes in /usr/share/doc/wc/wc.c\n",
        source.len()
    );
    vec![
        Example {
            name: "python-web",
            build_args: vec![],
            cmd: serve_and_query(
                "python3 app.py",
                "python3 -c 'import urllib.request as u; \
                 [print(u.urlopen(\"http://127.0.0.1:8000\" + p).read().decode().strip()) \
                 for p in (\"/\", \"/healthz\")]' 2>/dev/null",
            ),
            expect: Box::new(|out| {
                assert!(
                    out.starts_with("hello from flask on python 3.11."),
                    "{out:?}"
                );
                // The server runs as the image's USER (a system user, not root).
                let health: serde_json::Value =
                    serde_json::from_str(out.lines().nth(1).unwrap_or_default()).unwrap();
                assert_eq!(health["status"], "ok", "{out:?}");
                assert_ne!(health["user"], 0, "{out:?}");
            }),
        },
        Example {
            name: "c-multistage",
            build_args: vec![],
            cmd: vec![],
            expect: Box::new(move |out| assert_eq!(out, wc_expected)),
        },
        Example {
            name: "node-app",
            build_args: vec![],
            cmd: serve_and_query(
                "node server.js",
                "node -e 'require(\"http\").get(\"http://127.0.0.1:3000/\", r => \
                 r.pipe(process.stdout)).on(\"error\", () => process.exit(1))' 2>/dev/null",
            ),
            expect: Box::new(|out| {
                assert!(
                    out.starts_with("hello from node-app 1.0.0 on node v18."),
                    "{out:?}"
                )
            }),
        },
        Example {
            name: "apt-cache-secret",
            build_args: vec![
                "--secret".into(),
                format!("id=apt_auth,src={}", secret.display()),
            ],
            cmd: vec![],
            expect: Box::new(|out| assert_eq!(out, "Hello, world!\n")),
        },
        Example {
            name: "heredocs",
            build_args: vec![],
            cmd: vec![],
            expect: Box::new(|out| {
                assert_eq!(
                    out,
                    "hello from app\n3 items in /srv/data/items.txt\n\
                     2 notes: the first note;the second note\n"
                )
            }),
        },
    ]
}

fn example_dir(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `debian:bookworm-slim` and `debian:bookworm` in the lab's store:
/// loaded from `target/test-cache/debian-bookworm.tar` (a `hoist save` of
/// both), which the first run on a machine makes.
fn debian_base(lab: &Lab) {
    let target = Path::new(env!("CARGO_BIN_EXE_hoist"))
        .parent()
        .and_then(Path::parent)
        .expect("the hoist binary is in target/<profile>/");
    let cache = target.join("test-cache");
    let saved = cache.join("debian-bookworm.tar");
    if !saved.exists() {
        let work = cache.join(format!("debian-bookworm-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(work.join("ctx")).unwrap();
        debootstrap(&work);
        let dockerfile = work.join("Dockerfile");
        std::fs::write(
            &dockerfile,
            "FROM scratch\nADD rootfs.tar /\n\
             ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n\
             CMD [\"bash\"]\n",
        )
        .unwrap();
        lab.ok(&[
            "build",
            "-q",
            "-t",
            "debian:bookworm-slim",
            "-t",
            "debian:bookworm",
            "-f",
            dockerfile.to_str().unwrap(),
            work.join("ctx").to_str().unwrap(),
        ]);
        let tmp = work.join("saved.tar");
        lab.ok(&[
            "save",
            "-o",
            tmp.to_str().unwrap(),
            "debian:bookworm-slim",
            "debian:bookworm",
        ]);
        // Another run may have made it meanwhile: either file is good.
        std::fs::rename(&tmp, &saved).unwrap();
        let _ = Command::new("rm").arg("-rf").arg(&work).status();
    }
    lab.ok(&["load", "-q", "-i", saved.to_str().unwrap()]);
}

/// `WORK/ctx/rootfs.tar`: Debian bookworm, minbase, from Debian's mirror,
/// slimmed as Debian's official `-slim` image is (and as
/// `../shared/bench/base-debian.sh` did): no apt lists or downloaded
/// packages, `docker-clean`, no documentation, manuals or locales.
fn debootstrap(work: &Path) {
    assert!(
        Path::new("/usr/sbin/debootstrap").exists(),
        "Debian's debootstrap is not installed: scripts/test installs it"
    );
    let script = format!(
        "set -e\n\
         debootstrap --variant=minbase bookworm '{r}' {MIRROR} > '{w}/debootstrap.log' 2>&1 \
           || {{ tail -30 '{w}/debootstrap.log' >&2; exit 1; }}\n\
         rm -rf '{r}'/var/lib/apt/lists/* '{r}'/var/cache/apt/*.bin \
           '{r}'/var/cache/apt/archives/*.deb '{r}'/var/log/*.log '{r}'/var/log/apt/* \
           '{r}'/debootstrap\n\
         cat > '{r}/etc/apt/apt.conf.d/docker-clean' <<'EOF'\n\
DPkg::Post-Invoke {{ \"rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true\"; }};\n\
APT::Update::Post-Invoke {{ \"rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true\"; }};\n\
Dir::Cache::pkgcache \"\"; Dir::Cache::srcpkgcache \"\";\n\
EOF\n\
         echo 'Acquire::Languages \"none\";' > '{r}/etc/apt/apt.conf.d/docker-no-languages'\n\
         cat > '{r}/etc/dpkg/dpkg.cfg.d/docker' <<'EOF'\n\
path-exclude /usr/share/doc/*\n\
path-include /usr/share/doc/*/copyright\n\
path-exclude /usr/share/groff/*\n\
path-exclude /usr/share/info/*\n\
path-exclude /usr/share/linda/*\n\
path-exclude /usr/share/lintian/*\n\
path-exclude /usr/share/locale/*\n\
path-exclude /usr/share/man/*\n\
EOF\n\
         find '{r}/usr/share/doc' -type f ! -name copyright -delete\n\
         find '{r}/usr/share/doc' -depth -type d -empty -delete\n\
         rm -rf '{r}'/usr/share/groff/* '{r}'/usr/share/info/* '{r}'/usr/share/linda/* \
           '{r}'/usr/share/lintian/* '{r}'/usr/share/locale/* '{r}'/usr/share/man/*\n\
         : > '{r}/etc/resolv.conf'; : > '{r}/etc/hostname'\n\
         tar -C '{r}' --numeric-owner --xattrs -cf '{w}/ctx/rootfs.tar' .\n\
         rm -rf '{r}'\n",
        r = work.join("rootfs").display(),
        w = work.display(),
    );
    run(Command::new("sh").arg("-c").arg(&script));
}

/// `podman` with a store of its own: the `overlay` driver where the
/// kernel gives it (root on ext4 or xfs), else `vfs`, which copies every
/// layer whole and made the test twice as long.
struct Podman {
    dir: PathBuf,
    driver: &'static str,
}

impl Podman {
    fn new(dir: PathBuf) -> Podman {
        let mut podman = Podman {
            dir: dir.join("probe"),
            driver: "overlay",
        };
        let probe = podman.cmd().arg("info").output().expect("podman runs");
        let _ = Command::new("rm").arg("-rf").arg(&podman.dir).status();
        if !probe.status.success() {
            eprintln!(
                "examples_apps: podman's overlay driver: {}; using vfs",
                String::from_utf8_lossy(&probe.stderr).trim()
            );
            podman.driver = "vfs";
        }
        podman.dir = dir;
        podman
    }

    fn cmd(&self) -> Command {
        let mut c = podman::in_dir(&self.dir, self.driver);
        c.args(["--events-backend", "none"])
            .args(["--cgroup-manager", "cgroupfs"]);
        c
    }

    fn ok(&self, args: &[&str]) -> String {
        run(self.cmd().args(args))
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        let _ = self.cmd().args(["rmi", "--all", "--force"]).output();
        // Mounts the overlay driver left, if any, go first.
        hoist_test_support::unmount_under(&self.dir);
        let _ = Command::new("rm").arg("-rf").arg(&self.dir).status();
    }
}

/// Every file of a docker archive, layers decompressed when compressed.
fn archive_files(tar: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut archive = tar::Archive::new(std::fs::File::open(tar).unwrap());
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        if data.starts_with(&[0x1f, 0x8b]) {
            let mut raw = Vec::new();
            flate2::read::GzDecoder::new(&data[..])
                .read_to_end(&mut raw)
                .unwrap();
            data = raw;
        } else if data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            data = zstd::decode_all(&data[..]).unwrap();
        }
        out.push((name, data));
    }
    out
}

/// The paths in `data` when it is a tar (a layer), else none.
fn tar_paths(data: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    let mut archive = tar::Archive::new(data);
    if let Ok(entries) = archive.entries() {
        for e in entries.map_while(Result::ok) {
            if let Ok(p) = e.path() {
                out.push(p.to_string_lossy().trim_start_matches("./").to_string());
            }
        }
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn sha256(bytes: &[u8]) -> String {
    hoist_engine::digest::Digest::of(bytes).to_string()
}

#[test]
fn examples_build_push_and_run_in_docker_and_podman_with_one_digest() {
    let lab = Lab::empty(bin!());
    let started = std::time::Instant::now();
    debian_base(&lab);
    eprintln!("examples_apps: Debian base in {:?}", started.elapsed());
    let registry = Registry::start(None)
        .expect("docker-registry (Debian package docker-registry) must be installed");
    let engine = dockerd::Dockerd::start();
    let podman = Podman::new(lab.path("podman"));
    for ex in examples(lab.dir.path()) {
        let started = std::time::Instant::now();
        check(&lab, &registry, &engine, &podman, &ex);
        eprintln!(
            "examples_apps: {} passed in {:?}",
            ex.name,
            started.elapsed()
        );
    }
}

fn check(lab: &Lab, registry: &Registry, engine: &dockerd::Dockerd, podman: &Podman, ex: &Example) {
    let name = ex.name;
    let ctx = example_dir(name);
    let ctx = ctx.to_str().unwrap();
    let image = format!("{}/ex/{name}:1", registry.addr());
    let repo = format!("{}/ex/{name}", registry.addr());
    let iidfile = lab.path(&format!("{name}.iid"));
    let archive = lab.path(&format!("{name}.tar"));
    let build_args: Vec<&str> = ex.build_args.iter().map(String::as_str).collect();

    // The example's README says what it shows and the command to build it.
    let readme = lab::read(&example_dir(name).join("README.md"));
    assert!(
        readme.starts_with(&format!("# {name}: "))
            && readme.contains(&format!("examples/{name}\n")),
        "examples/{name}/README.md: no title or no build command"
    );

    if name == "apt-cache-secret" {
        // required=true: without the secret the step does not run.
        let out = lab.hoist(&["build", "--progress", "plain", ctx]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name} built without its secret");
        assert!(stderr.contains("apt_auth"), "{name}: {stderr}");
    }

    // Build, push, and write the docker archive, as a user would.
    let mut args = vec![
        "build",
        "--progress",
        "plain",
        "-t",
        &image,
        "--push",
        "--iidfile",
        iidfile.to_str().unwrap(),
        "-o",
    ];
    let docker_out = format!("type=docker,dest={}", archive.display());
    args.push(&docker_out);
    args.extend_from_slice(&build_args);
    args.push(ctx);
    let started = std::time::Instant::now();
    let (stdout, stderr) = lab.ok(&args);
    eprintln!("examples_apps: {name} built in {:?}", started.elapsed());
    let digest = std::fs::read_to_string(&iidfile).unwrap();
    let digest = digest.trim().to_string();
    assert!(digest.starts_with("sha256:"), "{name}: iidfile {digest:?}");
    assert!(
        format!("{stdout}{stderr}").contains(&digest),
        "{name}: the build does not print the pushed digest {digest}:\n{stdout}{stderr}"
    );

    // The registry holds the manifest hoist named.
    let raw = run(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{image}"),
    ]));
    assert_eq!(sha256(raw.as_bytes()), digest, "{name}: skopeo's manifest");
    let manifest: serde_json::Value = serde_json::from_str(&raw).unwrap();
    let config_digest = manifest["config"]["digest"].as_str().unwrap().to_string();

    // docker loads the archive and runs it.
    let loaded = engine.ok(&["load", "-i", archive.to_str().unwrap()]);
    assert!(loaded.contains(&image), "{name}: {loaded}");
    let id = engine.ok(&["image", "inspect", "--format", "{{.Id}}", &image]);
    assert_eq!(id.trim(), config_digest, "{name}: docker's image id");
    let mut docker_run = vec!["run", "--rm", "--network", "none", &image];
    docker_run.extend(ex.cmd.iter().map(String::as_str));
    (ex.expect)(&engine.ok(&docker_run));

    // docker pulls it from the registry: the same image, the same digest.
    engine.ok(&["rmi", &image]);
    engine.ok(&["pull", "-q", &image]);
    let repo_digests = engine.ok(&[
        "image",
        "inspect",
        "--format",
        "{{json .RepoDigests}}",
        &image,
    ]);
    assert!(
        repo_digests.contains(&format!("{repo}@{digest}")),
        "{name}: docker's RepoDigests {repo_digests} lack {digest}"
    );
    let id = engine.ok(&["image", "inspect", "--format", "{{.Id}}", &image]);
    assert_eq!(id.trim(), config_digest, "{name}: the pulled image's id");
    engine.ok(&["rmi", &image]);

    // podman loads the archive and runs it, then pulls: the same digest.
    podman.ok(&["load", "-q", "-i", archive.to_str().unwrap()]);
    // Explicit limits: podman as root raises RLIMIT_NOFILE and RLIMIT_NPROC
    // past the current hard limits, which needs CAP_SYS_RESOURCE; root in a
    // CI container often lacks it ("error setting rlimit type 7: operation
    // not permitted" from runc). docker keeps dockerd's limits instead.
    let mut podman_run = vec![
        "run",
        "--rm",
        "--network",
        "none",
        "--ulimit",
        "nofile=1024:1024",
        "--ulimit",
        "nproc=1024:1024",
        &image,
    ];
    podman_run.extend(ex.cmd.iter().map(String::as_str));
    (ex.expect)(&podman.ok(&podman_run));
    podman.ok(&["rmi", "--force", &image]);
    podman.ok(&["pull", "-q", "--tls-verify=false", &image]);
    let pulled = podman.ok(&["image", "inspect", "--format", "{{.Digest}}", &image]);
    assert_eq!(pulled.trim(), digest, "{name}: podman's digest");
    let id = podman.ok(&["image", "inspect", "--format", "{{.Id}}", &image]);
    assert_eq!(
        format!("sha256:{}", id.trim()),
        config_digest,
        "{name}: podman's image id"
    );
    podman.ok(&["rmi", "--force", &image]);

    if name == "apt-cache-secret" {
        apt_secret_and_cache(lab, ex, &archive, ctx);
    }
}

/// The secret is nowhere in the image; the cache mounts outlive the build.
fn apt_secret_and_cache(lab: &Lab, ex: &Example, archive: &Path, ctx: &str) {
    let files = archive_files(archive);
    // The scan reads the layers: the package the step installed is there.
    assert!(
        files
            .iter()
            .any(|(_, data)| tar_paths(data).iter().any(|p| p == "usr/bin/hello")),
        "no layer of {} holds usr/bin/hello",
        archive.display()
    );
    for (file, data) in &files {
        assert!(
            !contains(data, APT_TOKEN.as_bytes()),
            "the secret is in the image's {file}"
        );
        for path in tar_paths(data) {
            assert!(
                !path.contains("auth.conf.d/private.conf"),
                "the secret's mount point is in {file}"
            );
            assert!(
                !path.starts_with("var/cache/apt/archives/hello")
                    && !path.starts_with("var/lib/apt/lists/deb.debian.org"),
                "a cache mount's file {path} is in {file}"
            );
        }
    }

    // Rebuilt from nothing but its cache mounts: no package downloaded again.
    let mut args = vec!["build", "--no-cache", "--progress", "plain"];
    let build_args: Vec<&str> = ex.build_args.iter().map(String::as_str).collect();
    args.extend_from_slice(&build_args);
    args.push(ctx);
    let (_, log) = lab.ok(&args);
    assert!(
        log.contains("Need to get 0 B/"),
        "apt downloaded again:\n{log}"
    );
}
