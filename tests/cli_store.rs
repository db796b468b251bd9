//! The store commands as a user runs them: save, load, images, tag,
//! inspect, rmi, prune, du and store check, on real stores in temp dirs.

use std::path::Path;
use std::process::{Command, Output};

use hoist_engine::store::Store;

fn hoist(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hoist"))
        .arg("--root")
        .arg(root)
        .args(args)
        .env_remove("HOIST_ROOT")
        .output()
        .expect("hoist runs")
}

fn ok(root: &Path, args: &[&str]) -> String {
    let out = hoist(root, args);
    assert!(
        out.status.success(),
        "hoist {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn save_load_tag_inspect_rmi_prune() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let store = Store::open(&a).unwrap();
    let manifest = hoist_engine::testing::small_image(&store, "docker.io/library/hello:1").unwrap();
    let tar = dir.path().join("hello.tar");
    ok(&a, &["save", "-o", tar.to_str().unwrap(), "hello:1"]);

    let loaded = ok(&b, &["load", "-i", tar.to_str().unwrap()]);
    assert_eq!(loaded, "Loaded image: docker.io/library/hello:1\n");
    let images = ok(&b, &["images"]);
    assert!(
        images.lines().nth(1).unwrap().starts_with("hello "),
        "{images}"
    );
    // docker's IMAGE ID: the config digest's first 12 hex digits.
    let id = &manifest.value().config.digest.hex()[..12];
    assert!(images.contains(id), "{images}");

    ok(&b, &["tag", "hello:1", "127.0.0.1:5000/team/hello:2"]);
    let q = ok(&b, &["images", "-q"]);
    assert_eq!(q.lines().count(), 2);
    assert!(q.lines().all(|l| l == id), "{q}");

    let inspect: serde_json::Value =
        serde_json::from_str(&ok(&b, &["inspect", "127.0.0.1:5000/team/hello:2"])).unwrap();
    assert_eq!(inspect["Digest"], manifest.digest().to_string());
    assert_eq!(inspect["Config"]["config"]["Cmd"][0], "/hello.txt");

    assert_eq!(
        ok(&b, &["rmi", "hello:1"]),
        "Untagged: docker.io/library/hello:1\n"
    );
    ok(&b, &["store", "check"]);
    // Still named once: nothing to reclaim but temp files.
    ok(&b, &["prune", "--force"]);
    assert_eq!(ok(&b, &["images", "-q"]).lines().count(), 1);
    let pruned = ok(&b, &["prune", "--all", "--force"]);
    assert!(
        pruned.contains("Untagged: 127.0.0.1:5000/team/hello:2"),
        "{pruned}"
    );
    assert_eq!(ok(&b, &["images", "-q"]), "");
    let du: serde_json::Value = serde_json::from_str(&ok(&b, &["du", "--format", "json"])).unwrap();
    assert_eq!(du["blobs"]["count"], 0);
}

#[test]
fn prune_without_force_refuses_when_not_interactive() {
    let dir = tempfile::tempdir().unwrap();
    let out = hoist(dir.path(), &["prune", "--all"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("pass --force"));
}

#[test]
fn store_check_fails_on_a_damaged_blob() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let manifest = hoist_engine::testing::small_image(&store, "docker.io/library/hello:1").unwrap();
    ok(dir.path(), &["store", "check"]);
    let layer = &manifest.value().layers[0].digest;
    let path = dir.path().join("blobs/sha256").join(layer.hex());
    let mut perms = std::fs::metadata(&path).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&path, perms).unwrap();
    std::fs::write(&path, b"not the layer").unwrap();
    let out = hoist(dir.path(), &["store", "check"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&layer.to_string()), "{stdout}");
    // Saving the damaged image fails instead of exporting bad bytes.
    let out = hoist(
        dir.path(),
        &[
            "save",
            "-o",
            dir.path().join("x.tar").to_str().unwrap(),
            "hello:1",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(!dir.path().join("x.tar").exists());
}

#[test]
fn unknown_image_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = hoist(dir.path(), &["inspect", "nope:1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no image \"nope:1\" in the store"));
}

#[test]
fn export_to_every_output_type() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let manifest = hoist_engine::testing::small_image(
        &Store::open(&root).unwrap(),
        "docker.io/library/hello:1",
    )
    .unwrap();
    let p = |name: &str| dir.path().join(name).to_str().unwrap().to_string();

    ok(
        &root,
        &[
            "export",
            "hello:1",
            "-o",
            &format!("type=local,dest={}", p("rootfs")),
        ],
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("rootfs/hello.txt")).unwrap(),
        "hello from hoist\n"
    );

    ok(
        &root,
        &[
            "export",
            "hello:1",
            "-o",
            &format!("type=tar,dest={}", p("fs.tar")),
        ],
    );
    let listing = Command::new("tar")
        .args(["-tvf", &p("fs.tar")])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing.lines().any(|l| l.ends_with(" hello.txt")),
        "{listing}"
    );

    ok(
        &root,
        &[
            "export",
            "hello:1",
            "-o",
            &format!("type=oci,dest={}", p("oci.tar")),
            "-o",
            &format!("type=oci,tar=false,dest={}", p("layout")),
        ],
    );
    for src in [
        format!("oci-archive:{}", p("oci.tar")),
        format!("oci:{}:1", p("layout")),
    ] {
        let out = Command::new("skopeo")
            .args(["inspect", "--raw", &src])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{src}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            hoist_engine::digest::Digest::of(&out.stdout),
            *manifest.digest(),
            "{src}"
        );
    }

    ok(
        &root,
        &[
            "export",
            "hello:1",
            "-o",
            &format!("type=docker,dest={},name=app:7", p("docker.tar")),
        ],
    );
    let out = Command::new("skopeo")
        .args([
            "inspect",
            "--raw",
            &format!("docker-archive:{}", p("docker.tar")),
        ])
        .output()
        .unwrap();
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        m["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );

    ok(
        &root,
        &["export", "hello:1", "-o", "type=image,name=copy:2"],
    );
    assert!(ok(&root, &["images"]).contains("copy "));
}

#[test]
fn export_rejects_bad_specs() {
    let dir = tempfile::tempdir().unwrap();
    let out = hoist(dir.path(), &["export", "x", "-o", "type=zip,dest=a"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown type \"zip\""));
}

#[test]
fn export_recompresses_layers_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    hoist_engine::testing::small_image(&Store::open(&root).unwrap(), "docker.io/library/hello:1")
        .unwrap();
    let layout = dir.path().join("zstd");
    ok(
        &root,
        &[
            "export",
            "hello:1",
            "-o",
            &format!(
                "type=oci,tar=false,dest={},compression=zstd,compression-level=9",
                layout.display()
            ),
        ],
    );
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", &format!("oci:{}:1", layout.display())])
        .output()
        .unwrap();
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        m["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );
    // The zstd CLI decompresses the new blob to the tar the config's diff_id names.
    let layer = m["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let config = m["config"]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:")
        .to_string();
    let tar = Command::new("zstd")
        .args(["-dc"])
        .arg(layout.join("blobs/sha256").join(&layer))
        .output()
        .unwrap();
    assert!(tar.status.success());
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(config)).unwrap())
            .unwrap();
    assert_eq!(
        config["rootfs"]["diff_ids"][0],
        hoist_engine::digest::Digest::of(&tar.stdout).to_string()
    );
    let out = hoist(
        &root,
        &[
            "export",
            "hello:1",
            "-o",
            "type=oci,dest=x.tar,compression-level=3",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
}

/// A read-only store (here a read-only bind mount, in a mount namespace
/// of its own) still lists, inspects and saves: readers take the shared
/// lock through a read-only open, and only writers need to write.
#[test]
fn a_read_only_store_lists_inspects_and_saves() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let store = Store::open(&root).unwrap();
    hoist_engine::testing::small_image(&store, "docker.io/library/hello:1").unwrap();
    drop(store);
    let tar = dir.path().join("hello.tar");
    let hoist_bin = env!("CARGO_BIN_EXE_hoist");
    let script = format!(
        "set -e; mount --bind {r} {r}; mount -o remount,ro,bind {r}; \
         touch {r}/probe 2>/dev/null && {{ echo 'store is writable'; exit 2; }}; \
         {h} --root {r} images; {h} --root {r} inspect hello:1 >/dev/null; \
         {h} --root {r} save -o {t} hello:1",
        r = root.display(),
        h = hoist_bin,
        t = tar.display()
    );
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .env_remove("HOIST_ROOT")
        .output()
        .expect("unshare runs");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("hello"), "{stdout}");
    assert!(std::fs::metadata(&tar).unwrap().len() > 0);
}

/// A full disk names the store path that filled (here a 512 KiB tmpfs,
/// in a mount namespace of its own), not the archive being read.
#[test]
fn a_full_disk_names_the_store_path() {
    let dir = tempfile::tempdir().unwrap();
    let (a, ctx) = (dir.path().join("a"), dir.path().join("ctx"));
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY big /big\n").unwrap();
    // Incompressible enough: 2 MiB of a simple generator's bytes.
    let mut x: u32 = 12345;
    let big: Vec<u8> = (0..2 << 20)
        .map(|_| {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (x >> 16) as u8
        })
        .collect();
    std::fs::write(ctx.join("big"), big).unwrap();
    ok(&a, &["build", "-q", "-t", "big:1", ctx.to_str().unwrap()]);
    let tar = dir.path().join("big.tar");
    ok(&a, &["save", "-o", tar.to_str().unwrap(), "big:1"]);
    let full = dir.path().join("full");
    std::fs::create_dir_all(&full).unwrap();
    let script = format!(
        "mount -t tmpfs -o size=512k tmpfs {f} || exit 2; {h} --root {f}/store load -i {t}",
        f = full.display(),
        h = env!("CARGO_BIN_EXE_hoist"),
        t = tar.display()
    );
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .env_remove("HOIST_ROOT")
        .output()
        .expect("unshare runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("writing {}/store/tmp/", full.display())),
        "{err}"
    );
    assert!(err.contains("(os error 28)"), "{err}");
    assert!(!err.contains("reading archive"), "{err}");
}
