//! Image archives checked by the real tools: `skopeo` reads the OCI
//! tarball, the OCI layout directory and the Docker archive; `umoci`
//! unpacks the layout; `podman load` loads the tarball under its name.

use std::path::Path;
use std::process::Command;

use hoist_engine::digest::Digest;
use hoist_engine::export::archive::{ArchiveOptions, ExportImage, write_archive, write_layout_dir};
use hoist_engine::image::{Manifest, Raw, media_types};
use hoist_engine::store::Store;

fn small_image(store: &Store, name: &str) -> Raw<Manifest> {
    hoist_engine::testing::small_image(store, name).unwrap()
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn skopeo_inspect(transport: &str) -> serde_json::Value {
    let out = run(Command::new("skopeo").args(["inspect", "--raw", transport]));
    serde_json::from_str(&out).unwrap()
}

fn setup() -> (tempfile::TempDir, Store, ExportImage) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let manifest = small_image(&store, "docker.io/library/hello:1");
    let img = ExportImage {
        manifest,
        names: vec!["docker.io/library/hello:1".into()],
        descriptor_annotations: Default::default(),
    };
    (dir, store, img)
}

fn archive(store: &Store, img: &ExportImage, opts: ArchiveOptions, path: &Path) {
    let f = std::fs::File::create(path).unwrap();
    write_archive(store, std::slice::from_ref(img), opts, f).unwrap();
}

#[test]
fn oci_tarball_reads_in_skopeo_as_oci_and_docker_archive() {
    let (dir, store, img) = setup();
    let tar = dir.path().join("hello.tar");
    archive(&store, &img, ArchiveOptions::default(), &tar);
    // The OCI view keeps the stored manifest byte for byte.
    let m = skopeo_inspect(&format!("oci-archive:{}", tar.display()));
    assert_eq!(
        serde_json::to_vec(&m).unwrap(),
        serde_json::to_vec(
            &serde_json::from_slice::<serde_json::Value>(img.manifest.bytes()).unwrap()
        )
        .unwrap()
    );
    // The same file is a docker archive (manifest.json).
    let d =
        run(Command::new("skopeo").args(["inspect", &format!("docker-archive:{}", tar.display())]));
    let d: serde_json::Value = serde_json::from_str(&d).unwrap();
    assert_eq!(
        d["RepoTags"],
        serde_json::json!([]),
        "skopeo reports tags of the registry, none here"
    );
    assert_eq!(d["Layers"].as_array().unwrap().len(), 1);
    // skopeo copy to a dir: the manifest digest is the one we stored.
    let out = dir.path().join("copied");
    run(Command::new("skopeo").args([
        "copy",
        "--preserve-digests",
        &format!("oci-archive:{}", tar.display()),
        &format!("dir:{}", out.display()),
    ]));
    let copied = std::fs::read(out.join("manifest.json")).unwrap();
    assert_eq!(Digest::of(&copied), *img.manifest.digest());
}

#[test]
fn archive_bytes_are_deterministic() {
    let (dir, store, img) = setup();
    let (a, b) = (dir.path().join("a.tar"), dir.path().join("b.tar"));
    archive(&store, &img, ArchiveOptions::default(), &a);
    archive(&store, &img, ArchiveOptions::default(), &b);
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
}

#[test]
fn docker_media_types_for_type_docker() {
    let (dir, store, img) = setup();
    let tar = dir.path().join("docker.tar");
    archive(
        &store,
        &img,
        ArchiveOptions {
            oci_media_types: false,
            mtime: 0,
        },
        &tar,
    );
    let m = skopeo_inspect(&format!("docker-archive:{}", tar.display()));
    assert_eq!(m["mediaType"], media_types::DOCKER_MANIFEST);
    assert_eq!(m["layers"][0]["mediaType"], media_types::DOCKER_LAYER_GZIP);
    let oci = skopeo_inspect(&format!("oci-archive:{}", tar.display()));
    assert_eq!(oci["mediaType"], media_types::DOCKER_MANIFEST);
}

#[test]
fn layout_directory_unpacks_with_umoci() {
    let (dir, store, img) = setup();
    let layout = dir.path().join("layout");
    write_layout_dir(
        &store,
        std::slice::from_ref(&img),
        ArchiveOptions::default(),
        &layout,
    )
    .unwrap();
    let m = skopeo_inspect(&format!("oci:{}:1", layout.display()));
    assert_eq!(m["layers"].as_array().unwrap().len(), 1);
    let bundle = dir.path().join("bundle");
    run(Command::new("umoci").args([
        "unpack",
        "--rootless",
        "--image",
        &format!("{}:1", layout.display()),
        bundle.to_str().unwrap(),
    ]));
    assert_eq!(
        std::fs::read_to_string(bundle.join("rootfs/hello.txt")).unwrap(),
        "hello from hoist\n"
    );
}

#[test]
fn podman_loads_the_tarball_under_its_name() {
    let (dir, store, img) = setup();
    let tar = dir.path().join("hello.tar");
    archive(&store, &img, ArchiveOptions::default(), &tar);
    let root = dir.path().join("podman-root");
    let runroot = dir.path().join("podman-run");
    let podman = |args: &[&str]| {
        let mut c = Command::new("podman");
        c.args([
            "--root",
            root.to_str().unwrap(),
            "--runroot",
            runroot.to_str().unwrap(),
            "--storage-driver",
            "vfs",
        ])
        .args(args);
        run(&mut c)
    };
    let out = podman(&["load", "-i", tar.to_str().unwrap()]);
    assert!(out.contains("hello:1"), "{out}");
    let images = podman(&["images", "--format", "{{.Repository}}:{{.Tag}}"]);
    assert!(images.lines().any(|l| l.ends_with("hello:1")), "{images}");
}

#[test]
fn load_round_trips_our_archive_with_the_same_digest() {
    let (dir, store, img) = setup();
    let tar = dir.path().join("hello.tar");
    archive(&store, &img, ArchiveOptions::default(), &tar);
    let other = Store::open(dir.path().join("other")).unwrap();
    let report =
        hoist_engine::import::archive::load_archive(&other, std::fs::File::open(&tar).unwrap())
            .unwrap();
    assert_eq!(report.names, ["docker.io/library/hello:1"]);
    assert_eq!(report.manifests, [img.manifest.digest().clone()]);
    assert_eq!(
        other.resolve("docker.io/library/hello:1").unwrap().digest,
        *img.manifest.digest()
    );
    assert!(other.check().unwrap().is_clean());
}

#[test]
fn load_reads_a_docker_archive_written_by_skopeo() {
    let (dir, store, img) = setup();
    let tar = dir.path().join("hello.tar");
    archive(&store, &img, ArchiveOptions::default(), &tar);
    let docker = dir.path().join("docker-save.tar");
    run(Command::new("skopeo").args([
        "copy",
        &format!("oci-archive:{}", tar.display()),
        &format!("docker-archive:{}:hello:2", docker.display()),
    ]));
    let other = Store::open(dir.path().join("other")).unwrap();
    let report =
        hoist_engine::import::archive::load_archive(&other, std::fs::File::open(&docker).unwrap())
            .unwrap();
    assert_eq!(report.names, ["docker.io/library/hello:2"]);
    assert!(other.check().unwrap().is_clean());
    // Re-exported, the image still unpacks to the same file.
    let rec = other.resolve("docker.io/library/hello:2").unwrap();
    let manifest: Raw<Manifest> =
        Raw::parse(other.read_blob_verified(&rec.digest).unwrap()).unwrap();
    let layout = dir.path().join("layout");
    let again = ExportImage {
        manifest,
        names: vec!["docker.io/library/hello:2".into()],
        descriptor_annotations: Default::default(),
    };
    write_layout_dir(
        &other,
        std::slice::from_ref(&again),
        ArchiveOptions::default(),
        &layout,
    )
    .unwrap();
    let bundle = dir.path().join("bundle");
    run(Command::new("umoci").args([
        "unpack",
        "--rootless",
        "--image",
        &format!("{}:2", layout.display()),
        bundle.to_str().unwrap(),
    ]));
    assert_eq!(
        std::fs::read_to_string(bundle.join("rootfs/hello.txt")).unwrap(),
        "hello from hoist\n"
    );
}

#[test]
fn load_rejects_names_that_leave_the_archive() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let mut tar = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_size(1);
    h.set_mode(0o644);
    h.set_entry_type(tar::EntryType::Regular);
    // Write the raw name bytes: tar's safe setter refuses `..`.
    let name = b"../escape";
    h.as_old_mut().name[..name.len()].copy_from_slice(name);
    h.set_cksum();
    tar.append(&h, &b"x"[..]).unwrap();
    let bytes = tar.into_inner().unwrap();
    let err = hoist_engine::import::archive::load_archive(&store, bytes.as_slice()).unwrap_err();
    assert!(err.to_string().contains("leaves the archive root"), "{err}");
    assert!(!dir.path().join("store/escape").exists() && !dir.path().join("escape").exists());
}
