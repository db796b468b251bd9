//! `hoist push` and `hoist pull` against a real `docker-registry` on
//! 127.0.0.1, with `skopeo` checking what arrived.

use std::path::Path;
use std::process::{Command, Output};

use hoist_engine::store::Store;
use hoist_engine::testing::Registry;

fn registry() -> Registry {
    Registry::start(None)
        .expect("docker-registry (Debian package docker-registry) must be installed")
}

fn hoist(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hoist"))
        .arg("--root")
        .arg(root)
        .args(args)
        .env("DOCKER_CONFIG", root.join("docker-config"))
        .output()
        .expect("hoist runs")
}

#[test]
fn push_then_pull_by_tag_and_by_digest() {
    let registry = registry();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let manifest =
        hoist_engine::testing::small_image(&Store::open(&a).unwrap(), "docker.io/library/hello:1")
            .unwrap();
    let dest = format!("127.0.0.1:{}/team/hello:1", registry.port);

    let out = hoist(&a, &["push", "hello:1", &dest]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{dest}: digest: {}\n", manifest.digest())
    );

    let out = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", &format!("docker://{dest}")])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["Digest"], manifest.digest().to_string());

    let out = hoist(&b, &["pull", "-q", &dest]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{dest}\n"));
    let by_digest = format!(
        "127.0.0.1:{}/team/hello@{}",
        registry.port,
        manifest.digest()
    );
    let out = hoist(&b, &["pull", "-q", &by_digest]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = hoist(&b, &["store", "check"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let images = String::from_utf8_lossy(&hoist(&b, &["images", "-q"]).stdout).into_owned();
    assert_eq!(images.lines().count(), 2, "{images}");
}

#[test]
fn pull_of_an_unknown_tag_fails_clearly() {
    let registry = registry();
    let dir = tempfile::tempdir().unwrap();
    let out = hoist(
        dir.path(),
        &["pull", &format!("127.0.0.1:{}/no/such:tag", registry.port)],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no/such"), "{err}");
}

#[test]
fn built_layers_are_stored_uncompressed_and_pushed_gzip() {
    // Like BuildKit: snapshots stay uncompressed locally; the registry gets gzip.
    let registry = registry();
    let dir = tempfile::tempdir().unwrap();
    let (root, ctx) = (dir.path().join("s"), dir.path().join("ctx"));
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY a.txt /\n").unwrap();
    std::fs::write(ctx.join("a.txt"), "a".repeat(10_000)).unwrap();
    let dest = format!("127.0.0.1:{}/team/built:1", registry.port);
    let out = hoist(&root, &["build", "-t", &dest, ctx.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let local: serde_json::Value =
        serde_json::from_slice(&hoist(&root, &["inspect", &dest]).stdout).unwrap();
    assert_eq!(
        local["Manifest"]["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar"
    );
    let out = hoist(&root, &["push", &dest]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new("skopeo")
        .args([
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{dest}"),
        ])
        .output()
        .unwrap();
    let remote: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        remote["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    assert!(
        remote["layers"][0]["size"].as_u64().unwrap() < 1000,
        "gzip made 10 kB of 'a' small"
    );
    // The pulled image unpacks to the same file.
    let other = dir.path().join("o");
    let out = hoist(&other, &["pull", "-q", &dest]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let fs = dir.path().join("fs");
    let out = hoist(
        &other,
        &[
            "export",
            &dest,
            "-o",
            &format!("type=local,dest={}", fs.display()),
        ],
    );
    assert!(out.status.success());
    assert_eq!(
        std::fs::read_to_string(fs.join("a.txt")).unwrap().len(),
        10_000
    );
}
