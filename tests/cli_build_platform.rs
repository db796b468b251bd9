//! `--platform` against what the base image offers, as BuildKit does:
//!
//! - an index without the requested platform is an error naming the base
//!   and the platforms it has, in BuildKit's words (`ERROR: failed to
//!   solve: maven:3.9-eclipse-temurin-11-alpine: no match for platform in
//!   manifest: not found`), never a build for another architecture; from
//!   the store and from a registry (a real `docker-registry`, the index
//!   pushed with skopeo);
//! - an index with it gives that platform's image, also when the store
//!   holds the index from a pull for another platform;
//! - a single-platform manifest of another architecture is used as it is,
//!   with BuildKit's `InvalidBaseImagePlatform` warning (dockerfile2llb's
//!   `validateBaseImagePlatform`: `Base image NAME was pulled with platform
//!   "linux/amd64", expected "linux/arm64" for current build`).

use hoist_test_support::{bin, lab};

use std::path::{Path, PathBuf};
use std::process::Command;

use hoist_engine::digest::Digest;
use lab::Lab;

/// Build `FROM scratch` + one file for `platform` as `tag`.
fn build_for(lab: &Lab, tag: &str, platform: &str) {
    let ctx = lab.path(&format!("ctx-{}", tag.replace([':', '/'], "-")));
    lab::write(
        &ctx,
        &[
            ("Dockerfile", "FROM scratch\nCOPY arch /arch\n"),
            ("arch", platform),
        ],
    );
    lab.ok(&[
        "build",
        "-q",
        "--platform",
        platform,
        "-t",
        tag,
        ctx.to_str().unwrap(),
    ]);
}

/// An OCI layout holding `multi:1`, an index of `amd:1` (linux/amd64) and
/// `arm:1` (linux/arm64) as the lab built them.
fn multi_layout(lab: &Lab) -> PathBuf {
    let layout = lab.path("multi");
    std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    let mut entries = Vec::new();
    for (tag, arch) in [("amd:1", "amd64"), ("arm:1", "arm64")] {
        let one = lab.path(&format!("layout-{arch}"));
        lab.ok(&[
            "export",
            tag,
            "-o",
            &format!("type=oci,tar=false,dest={}", one.display()),
        ]);
        for blob in std::fs::read_dir(one.join("blobs/sha256")).unwrap() {
            let blob = blob.unwrap();
            std::fs::copy(
                blob.path(),
                layout.join("blobs/sha256").join(blob.file_name()),
            )
            .unwrap();
        }
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(one.join("index.json")).unwrap()).unwrap();
        let mut desc = index["manifests"][0].clone();
        desc.as_object_mut().unwrap().remove("annotations");
        desc["platform"] = serde_json::json!({"architecture": arch, "os": "linux"});
        entries.push(desc);
    }
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": entries,
    }))
    .unwrap();
    let digest = Digest::of(&index);
    std::fs::write(layout.join("blobs/sha256").join(digest.hex()), &index).unwrap();
    let top = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": digest.to_string(),
            "size": index.len(),
            "annotations": {"org.opencontainers.image.ref.name": "multi:1"},
        }],
    });
    std::fs::write(layout.join("index.json"), top.to_string()).unwrap();
    std::fs::write(
        layout.join("oci-layout"),
        r#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    layout
}

fn tar_of(dir: &Path, out: &Path) {
    let status = Command::new("tar")
        .arg("-C")
        .arg(dir)
        .arg("-cf")
        .arg(out)
        .args(["oci-layout", "index.json", "blobs"])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Build `FROM base` for `platform`; (success, stderr).
fn build_from(lab: &Lab, base: &str, platform: &str, tag: &str) -> (bool, String) {
    let ctx = lab.path(&format!("from-{}", tag.replace([':', '/'], "-")));
    lab::write(
        &ctx,
        &[("Dockerfile", &format!("FROM {base}\nLABEL built=yes\n"))],
    );
    let out = lab.hoist(&[
        "build",
        "-q",
        "--platform",
        platform,
        "-t",
        tag,
        ctx.to_str().unwrap(),
    ]);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn arch_of(lab: &Lab, tag: &str) -> String {
    let inspect: serde_json::Value = serde_json::from_str(&lab.ok(&["inspect", tag]).0).unwrap();
    inspect["Config"]["architecture"]
        .as_str()
        .unwrap()
        .to_string()
}

const MISSING: &str = "no match for platform in manifest: not found (no image for linux/s390x; it has linux/amd64, linux/arm64)";

#[test]
fn an_index_without_the_platform_is_an_error_naming_what_it_has() {
    let lab = Lab::empty(bin!());
    build_for(&lab, "amd:1", "linux/amd64");
    build_for(&lab, "arm:1", "linux/arm64");
    let tar = lab.path("multi.tar");
    tar_of(&multi_layout(&lab), &tar);
    lab.ok(&["load", "-i", tar.to_str().unwrap()]);

    let (ok, err) = build_from(&lab, "multi:1", "linux/s390x", "out:s390x");
    assert!(!ok, "a build for a platform the base lacks must fail");
    assert!(
        err.contains(&format!("base image multi:1: {MISSING}")),
        "{err}"
    );
    assert!(err.contains("Dockerfile:1"), "names the FROM line: {err}");
    assert!(
        lab.hoist(&["inspect", "out:s390x"]).status.code() == Some(1),
        "nothing is named"
    );

    for (platform, arch) in [("linux/arm64", "arm64"), ("linux/amd64", "amd64")] {
        let tag = format!("out:{arch}");
        let (ok, err) = build_from(&lab, "multi:1", platform, &tag);
        assert!(ok, "{err}");
        assert!(!err.contains("InvalidBaseImagePlatform"), "{err}");
        assert_eq!(arch_of(&lab, &tag), arch);
        // The image is the index's image for that platform: its file.
        let root = lab.path(&format!("rootfs-{arch}"));
        lab.ok(&[
            "export",
            &tag,
            "-o",
            &format!("type=local,dest={}", root.display()),
        ]);
        assert_eq!(lab::read(&root.join("arch")), platform);
    }
}

#[test]
fn a_single_manifest_of_another_arch_builds_with_buildkits_warning() {
    let lab = Lab::empty(bin!());
    build_for(&lab, "arm:1", "linux/arm64");
    let (ok, err) = build_from(&lab, "arm:1", "linux/amd64", "out:1");
    assert!(ok, "BuildKit uses it: {err}");
    assert!(
        err.contains(
            "Dockerfile:1: Base image arm:1 was pulled with platform \"linux/arm64\", \
             expected \"linux/amd64\" for current build [InvalidBaseImagePlatform]"
        ),
        "{err}"
    );
    // The same platform: no warning.
    let (ok, err) = build_from(&lab, "arm:1", "linux/arm64", "out:2");
    assert!(ok, "{err}");
    assert!(!err.contains("InvalidBaseImagePlatform"), "{err}");
}

#[test]
fn from_a_registry_index_the_platform_is_pulled_or_refused() {
    let lab = Lab::empty(bin!());
    build_for(&lab, "amd:1", "linux/amd64");
    build_for(&lab, "arm:1", "linux/arm64");
    let layout = multi_layout(&lab);
    let registry = hoist_engine::testing::Registry::start(None).unwrap();
    let remote = format!("{}/team/multi:1", registry.addr());
    let out = Command::new("skopeo")
        .args(["copy", "--all", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:multi:1", layout.display()))
        .arg(format!("docker://{remote}"))
        .output()
        .expect("skopeo (Debian package skopeo) is installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let fresh = Lab::empty(bin!());
    let (ok, err) = build_from(&fresh, &remote, "linux/s390x", "out:s390x");
    assert!(!ok);
    assert!(
        err.contains(&format!("base image {remote}: {MISSING}")),
        "{err}"
    );
    // arm64 first: the store then holds the index with only that image;
    // amd64 after it pulls the missing one instead of failing.
    for (platform, arch) in [("linux/arm64", "arm64"), ("linux/amd64", "amd64")] {
        let tag = format!("out:{arch}");
        let (ok, err) = build_from(&fresh, &remote, platform, &tag);
        assert!(ok, "{platform}: {err}");
        assert_eq!(arch_of(&fresh, &tag), arch);
    }
}
