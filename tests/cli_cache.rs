//! `--cache-to` / `--cache-from` through the `hoist` binary: a build with
//! store A exports its cache (to a real `docker-registry` on 127.0.0.1, to
//! an OCI layout directory, or inline in the image), and a build with an
//! empty store B imports it: every step is a hit, the image digest is the
//! same, and B fetches only the layers its output needs (never a layer of
//! a stage the output only copies from). Like BuildKit, a cache that
//! cannot be read is a warning and the build goes on without it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use hoist_engine::testing::Registry;

use hoist_test_support::{bin, lab};
use lab::write;

/// `lab::hoist` with the hoist under test.
fn hoist(root: &Path, args: &[&str]) -> std::process::Output {
    lab::hoist(bin!(), root, args)
}

/// `lab::ok` with the hoist under test.
fn ok(root: &Path, args: &[&str]) -> String {
    lab::ok(bin!(), root, args)
}

/// The base image (the host's busybox-static) as a tarball each store loads,
/// so both stores have the same `base:1` without a registry.
fn base_tar(dir: &Path) -> PathBuf {
    let root = dir.join("base-store");
    let ctx = dir.join("base");
    write(
        &ctx,
        &[(
            "Dockerfile",
            "FROM scratch\nCOPY --from=bin busybox /bin/busybox\n\
             RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n",
        )],
    );
    ok(
        &root,
        &[
            "build",
            "-q",
            "--build-context",
            "bin=/bin",
            "-t",
            "base:1",
            ctx.to_str().unwrap(),
        ],
    );
    let tar = dir.join("base.tar");
    ok(&root, &["save", "-o", tar.to_str().unwrap(), "base:1"]);
    tar
}

/// A fresh store holding only `base:1`.
fn store(dir: &Path, name: &str, base: &Path) -> PathBuf {
    let root = dir.join(name);
    ok(&root, &["load", "-i", base.to_str().unwrap()]);
    root
}

/// A builder stage whose output the final stage copies, a cache mount,
/// and a step that changes nothing.
fn context(dir: &Path) -> PathBuf {
    let ctx = dir.join("ctx");
    write(
        &ctx,
        &[
            (
                "Dockerfile",
                "FROM base:1 AS builder\nWORKDIR /src\nCOPY a.txt .\n\
                 RUN echo built > out.txt && cat a.txt >> out.txt && head -c 20000 /dev/urandom > noise\n\
                 FROM base:1\nWORKDIR /app\nCOPY --from=builder /src/out.txt .\n\
                 RUN --mount=type=cache,target=/cache echo run >> /cache/log && echo \"runs: $(wc -l < /cache/log)\"\n\
                 RUN true\n",
            ),
            ("a.txt", "hello\n"),
        ],
    );
    ctx
}

fn digest_of(root: &Path, image: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(&ok(root, &["inspect", image])).unwrap();
    v["Digest"].as_str().unwrap().to_string()
}

fn layers_of(root: &Path, image: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(&ok(root, &["inspect", image])).unwrap();
    v["Manifest"]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

fn blobs(root: &Path) -> BTreeSet<String> {
    std::fs::read_dir(root.join("blobs/sha256"))
        .unwrap()
        .map(|e| format!("sha256:{}", e.unwrap().file_name().to_string_lossy()))
        .collect()
}

/// `(steps run, steps cached)` from the build's last line.
fn counts(log: &str) -> (usize, usize) {
    let line = log
        .lines()
        .find(|l| l.starts_with("writing image"))
        .unwrap_or_else(|| panic!("no summary in:\n{log}"));
    let nums: Vec<usize> = line
        .split(['(', ' ', ','])
        .filter_map(|w| w.parse().ok())
        .collect();
    (nums[0], nums[1])
}

/// `(blobs, bytes)` fetched from the imported cache.
fn fetched(log: &str) -> (usize, u64) {
    let line = log
        .lines()
        .find(|l| l.starts_with("imported cache:"))
        .unwrap_or_else(|| panic!("no import summary in:\n{log}"));
    let nums: Vec<u64> = line
        .split([' ', '('])
        .filter_map(|w| w.parse().ok())
        .collect();
    (nums[1] as usize, nums[2])
}

#[test]
fn registry_cache_gives_every_step_and_fetches_only_the_output_layers() {
    let registry = Registry::start(None).expect("docker-registry must be installed");
    let dir = tempfile::tempdir().unwrap();
    let base = base_tar(dir.path());
    let ctx = context(dir.path());
    let cache = format!("{}/app:buildcache", registry.addr());
    let a = store(dir.path(), "a", &base);
    let log = ok(
        &a,
        &[
            "build",
            "--progress=plain",
            "-t",
            "app:1",
            "--cache-to",
            &format!("type=registry,ref={cache},mode=max"),
            ctx.to_str().unwrap(),
        ],
    );
    assert_eq!(counts(&log), (5, 0), "{log}");
    assert!(log.contains("exporting cache registry"), "{log}");

    let b = store(dir.path(), "b", &base);
    let before = blobs(&b);
    let log = ok(
        &b,
        &[
            "build",
            "--progress=plain",
            "--explain",
            "-t",
            "app:1",
            "--cache-from",
            &format!("type=registry,ref={cache}"),
            ctx.to_str().unwrap(),
        ],
    );
    assert_eq!(counts(&log), (0, 5), "every step from the cache:\n{log}");
    assert!(log.contains("cache hit: imported from registry"), "{log}");
    assert!(!log.contains("runs: 1"), "no RUN executed:\n{log}");
    assert_eq!(digest_of(&a, "app:1"), digest_of(&b, "app:1"));
    // What B fetched: the output's layers it lacked (WORKDIR /app and the
    // COPY), nothing of the builder stage (its 20 kB of noise).
    let base_layers: BTreeSet<String> = layers_of(&b, "base:1").into_iter().collect();
    let needed: Vec<String> = layers_of(&b, "app:1")
        .into_iter()
        .filter(|l| !base_layers.contains(l))
        .collect();
    let (n, bytes) = fetched(&log);
    assert_eq!(n, needed.len(), "{log}");
    assert!(bytes < 4096, "only small layers fetched, got {bytes} bytes");
    let builder_only: Vec<String> = layers_of(&a, "app:1")
        .into_iter()
        .collect::<BTreeSet<_>>()
        .symmetric_difference(&blobs(&a))
        .cloned()
        .collect();
    let new_in_b: BTreeSet<String> = blobs(&b).difference(&before).cloned().collect();
    for layer in &needed {
        assert!(new_in_b.contains(layer), "{layer} not fetched");
    }
    let layer_blobs_in_b = new_in_b
        .iter()
        .filter(|d| builder_only.contains(d))
        .filter(|d| {
            std::fs::metadata(b.join("blobs/sha256").join(&d[7..]))
                .unwrap()
                .len()
                > 10_000
        })
        .count();
    assert_eq!(layer_blobs_in_b, 0, "a builder layer was fetched");

    // `--push` alone: nothing fetched; the cache's layers are mounted into
    // the new repository; the same manifest as A pushing its image.
    let c = store(dir.path(), "c", &base);
    let pushed = format!("{}/other:pushed", registry.addr());
    let log = ok(
        &c,
        &[
            "build",
            "--progress=plain",
            "-t",
            &pushed,
            "--push",
            "--cache-from",
            &format!("type=registry,ref={cache}"),
            ctx.to_str().unwrap(),
        ],
    );
    assert_eq!(fetched(&log).0, 0, "{log}");
    assert!(log.contains(" 2 mounted"), "{log}");
    let from_a = format!("{}/from-a:1", registry.addr());
    let push_a = ok(&a, &["push", "app:1", &from_a]);
    let digest_a = push_a
        .split_whitespace()
        .find(|w| w.starts_with("sha256:"))
        .unwrap_or_default()
        .to_string();
    assert!(digest_a.starts_with("sha256:"), "{push_a}");
    assert!(
        log.contains(&format!("pushed {pushed} {digest_a}")),
        "{log}\nA pushed {digest_a}"
    );
    let copied = dir.path().join("copied");
    let out = Command::new("skopeo")
        .args(["copy", "--quiet", "--src-tls-verify=false"])
        .arg(format!("docker://{pushed}"))
        .arg(format!("dir:{}", copied.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Fetched layers are remembered: a rebuild without the cache hits on
    // the final stage; the builder's layers were never fetched, so its
    // steps run again (and give the same out.txt, so the COPY still hits).
    let log = ok(
        &b,
        &[
            "build",
            "--progress=plain",
            "-t",
            "app:1",
            ctx.to_str().unwrap(),
        ],
    );
    assert_eq!(counts(&log), (2, 3), "{log}");
    assert_eq!(digest_of(&a, "app:1"), digest_of(&b, "app:1"));
    ok(&b, &["store", "check"]);
}

#[test]
fn local_cache_min_mode_reruns_only_the_builder_stage() {
    let dir = tempfile::tempdir().unwrap();
    let base = base_tar(dir.path());
    let ctx = context(dir.path());
    let cache_dir = dir.path().join("cache");
    let a = store(dir.path(), "a", &base);
    ok(
        &a,
        &[
            "build",
            "-t",
            "app:1",
            "--cache-to",
            &format!("type=local,dest={}", cache_dir.display()),
            ctx.to_str().unwrap(),
        ],
    );
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(cache_dir.join("index.json")).unwrap()).unwrap();
    assert_eq!(
        index["manifests"][0]["artifactType"],
        "application/vnd.hoist.cache.v1"
    );
    let b = store(dir.path(), "b", &base);
    let log = ok(
        &b,
        &[
            "build",
            "--progress=plain",
            "-t",
            "app:1",
            "--cache-from",
            &format!("type=local,src={}", cache_dir.display()),
            ctx.to_str().unwrap(),
        ],
    );
    // mode=min carries the final stage only: the builder's COPY and RUN run
    // again; the final stage's COPY (same bytes) and RUNs hit.
    assert_eq!(counts(&log), (2, 3), "{log}");
    assert_eq!(digest_of(&a, "app:1"), digest_of(&b, "app:1"));
}

#[test]
fn cache_mounts_travel_with_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let base = base_tar(dir.path());
    let ctx = context(dir.path());
    let cache_dir = dir.path().join("cache");
    let a = store(dir.path(), "a", &base);
    let log = ok(
        &a,
        &[
            "build",
            "--progress=plain",
            "-t",
            "app:1",
            "--cache-to",
            &format!(
                "type=local,dest={},mode=max,cache-mounts=true",
                cache_dir.display()
            ),
            ctx.to_str().unwrap(),
        ],
    );
    assert!(log.contains("runs: 1"), "{log}");
    assert!(log.contains("1 cache mounts"), "{log}");
    // A changed input makes the cache-mount step run again on a fresh
    // store, which finds what run one left in the directory.
    write(&ctx, &[("a.txt", "changed\n")]);
    let b = store(dir.path(), "b", &base);
    let log = ok(
        &b,
        &[
            "build",
            "--progress=plain",
            "-t",
            "app:2",
            "--cache-from",
            &format!("type=local,src={}", cache_dir.display()),
            ctx.to_str().unwrap(),
        ],
    );
    assert!(
        log.contains("runs: 2"),
        "the cache mount came along:\n{log}"
    );
    let du: serde_json::Value = serde_json::from_str(&ok(&b, &["du", "--format", "json"])).unwrap();
    assert_eq!(du["cache_mounts"]["count"], 1, "{du}");
    assert!(du["cache_mounts"]["bytes"].as_u64().unwrap() > 0, "{du}");
    // Without cache-mounts=true nothing of the directory is exported.
    let plain_dir = dir.path().join("plain");
    ok(
        &a,
        &[
            "build",
            "-t",
            "app:1",
            "--cache-to",
            &format!("type=local,dest={},mode=max", plain_dir.display()),
            ctx.to_str().unwrap(),
        ],
    );
    let c = store(dir.path(), "c", &base);
    write(&ctx, &[("a.txt", "changed again\n")]);
    let log = ok(
        &c,
        &[
            "build",
            "--progress=plain",
            "-t",
            "app:3",
            "--cache-from",
            &format!("type=local,src={}", plain_dir.display()),
            ctx.to_str().unwrap(),
        ],
    );
    assert!(log.contains("runs: 1"), "{log}");
}

#[test]
fn inline_cache_is_read_back_from_the_pushed_image() {
    let registry = Registry::start(None).expect("docker-registry must be installed");
    let dir = tempfile::tempdir().unwrap();
    let base = base_tar(dir.path());
    let ctx = context(dir.path());
    let image = format!("{}/app:inline", registry.addr());
    let a = store(dir.path(), "a", &base);
    let (iid_a, iid_b) = (dir.path().join("iid-a"), dir.path().join("iid-b"));
    ok(
        &a,
        &[
            "build",
            "--iidfile",
            iid_a.to_str().unwrap(),
            "-t",
            &image,
            "--push",
            "--cache-to",
            "type=inline",
            ctx.to_str().unwrap(),
        ],
    );
    let config: serde_json::Value = serde_json::from_str(&ok(&a, &["inspect", &image])).unwrap();
    assert!(
        config["Config"]["hoist.cache.v1"]["steps"].is_array(),
        "{config}"
    );
    let b = store(dir.path(), "b", &base);
    let log = ok(
        &b,
        &[
            "build",
            "--progress=plain",
            "--iidfile",
            iid_b.to_str().unwrap(),
            "-t",
            &image,
            "--cache-from",
            &image,
            "--cache-to",
            "type=inline",
            ctx.to_str().unwrap(),
        ],
    );
    // Inline is min mode: the builder stage runs, the final stage hits.
    assert_eq!(counts(&log), (2, 3), "{log}");
    // The images as built (A's name now points at the gzip manifest it
    // pushed, as `docker push` of a BuildKit image would).
    assert_eq!(
        std::fs::read_to_string(iid_a).unwrap(),
        std::fs::read_to_string(iid_b).unwrap()
    );
}

#[test]
fn a_missing_cache_is_a_warning_and_a_bad_spec_an_error() {
    let registry = Registry::start(None).expect("docker-registry must be installed");
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx");
    write(
        &ctx,
        &[("Dockerfile", "FROM scratch\nCOPY a /a\n"), ("a", "x")],
    );
    let root = dir.path().join("s");
    let log = ok(
        &root,
        &[
            "build",
            "--cache-from",
            &format!("type=registry,ref={}/none:cache", registry.addr()),
            "--cache-from",
            &format!("type=local,src={}", dir.path().join("absent").display()),
            ctx.to_str().unwrap(),
        ],
    );
    assert_eq!(log.matches("warning: importing cache").count(), 2, "{log}");
    for (flag, spec, want) in [
        ("--cache-to", "type=local", "dest=DIR"),
        ("--cache-to", "type=gha", "not supported"),
        ("--cache-from", "type=inline", "type=registry,ref=IMAGE"),
        ("--cache-to", "type=registry,ref=x,mode=all", "mode"),
    ] {
        let out = hoist(&root, &["build", flag, spec, ctx.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{spec} accepted");
        assert!(err.contains(want), "{spec}: {err}");
    }
}

/// An empty store and a base image only in the registry: with an imported
/// cache whose records cover every step, the base image's layers are never
/// downloaded when the output does not contain them (BuildKit resolves only
/// the base's manifest in that case too).
#[test]
fn a_build_stage_base_is_not_downloaded_when_every_step_hits() {
    let registry = Registry::start(None).expect("docker-registry must be installed");
    let dir = tempfile::tempdir().unwrap();
    let base = base_tar(dir.path());
    let seed = store(dir.path(), "seed", &base);
    let remote_base = format!("{}/base:1", registry.addr());
    ok(&seed, &["push", "base:1", &remote_base]);
    let ctx = dir.path().join("ctx");
    write(
        &ctx,
        &[(
            "Dockerfile",
            &format!(
                "FROM {remote_base} AS builder\nRUN mkdir /out && echo made > /out/file\n\
                 FROM scratch\nCOPY --from=builder /out /out\n"
            ),
        )],
    );
    let cache = format!("type=registry,ref={}/app:buildcache", registry.addr());
    let a = dir.path().join("a");
    ok(
        &a,
        &[
            "build",
            "-t",
            "app:1",
            "--cache-to",
            &format!("{cache},mode=max"),
            ctx.to_str().unwrap(),
        ],
    );
    let b = dir.path().join("b");
    let log = ok(
        &b,
        &[
            "build",
            "--progress=plain",
            "-t",
            "app:1",
            "--cache-from",
            &cache,
            ctx.to_str().unwrap(),
        ],
    );
    assert_eq!(counts(&log), (0, 2), "{log}");
    assert_eq!(digest_of(&a, "app:1"), digest_of(&b, "app:1"));
    // B holds the base's manifest and config, and the one COPY layer: no
    // busybox layer (about a megabyte).
    let base_layers = layers_of(&seed, "base:1");
    let in_b = blobs(&b);
    for layer in &base_layers {
        assert!(!in_b.contains(layer), "base layer {layer} was downloaded");
    }
    assert_eq!(fetched(&log).0, 1, "{log}");
    ok(&b, &["store", "check"]);
}
