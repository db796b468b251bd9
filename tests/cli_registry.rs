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

fn ok(root: &Path, args: &[&str]) -> String {
    let out = hoist(root, args);
    assert!(
        out.status.success(),
        "hoist {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn skopeo_raw(reference: &str) -> Vec<u8> {
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo inspect {reference}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Issue 12 item 2: the digest `-q` prints, `--iidfile` and
/// `--metadata-file` hold, `hoist images` shows and the registry serves
/// are one manifest (before: the store named an uncompressed manifest and
/// the push another, gzip one, so the printed digest was a 404). Layers are
/// compressed once (gzip, as BuildKit), the same on a second machine with
/// `SOURCE_DATE_EPOCH`.
#[test]
fn the_digest_a_build_prints_is_the_manifest_the_registry_serves() {
    let registry = registry();
    let dir = tempfile::tempdir().unwrap();
    let (root, ctx) = (dir.path().join("s"), dir.path().join("ctx"));
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\nCOPY a.txt /\n").unwrap();
    std::fs::write(ctx.join("a.txt"), "a".repeat(10_000)).unwrap();
    let dest = format!("127.0.0.1:{}/team/built:1", registry.port);
    let (iid, md) = (dir.path().join("iid"), dir.path().join("md.json"));
    let build = |root: &Path| {
        ok(
            root,
            &[
                "build",
                "-q",
                "--push",
                "--build-arg",
                "SOURCE_DATE_EPOCH=1700000000",
                "--iidfile",
                iid.to_str().unwrap(),
                "--metadata-file",
                md.to_str().unwrap(),
                "-t",
                &dest,
                ctx.to_str().unwrap(),
            ],
        )
        .trim()
        .to_string()
    };
    let printed = build(&root);
    assert_eq!(std::fs::read_to_string(&iid).unwrap(), printed, "--iidfile");
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(&md).unwrap()).unwrap();
    assert_eq!(meta["containerimage.digest"], printed.as_str());
    assert_eq!(
        meta["containerimage.descriptor"]["digest"],
        printed.as_str()
    );
    // What the registry holds under the tag, and by the printed digest.
    let remote = skopeo_raw(&dest);
    assert_eq!(
        hoist_engine::digest::Digest::of(&remote).to_string(),
        printed,
        "the registry's manifest is the printed one"
    );
    let repo = dest.rsplit_once(':').unwrap().0;
    assert_eq!(skopeo_raw(&format!("{repo}@{printed}")), remote);
    assert_eq!(
        meta["containerimage.descriptor"]["size"].as_u64(),
        Some(remote.len() as u64)
    );
    let remote: serde_json::Value = serde_json::from_slice(&remote).unwrap();
    assert_eq!(
        remote["layers"][0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    assert!(
        remote["layers"][0]["size"].as_u64().unwrap() < 1000,
        "gzip made 10 kB of 'a' small"
    );
    // The store names the same manifest.
    let local: serde_json::Value =
        serde_json::from_slice(&hoist(&root, &["inspect", &dest]).stdout).unwrap();
    assert_eq!(local["Manifest"], remote);
    let images = ok(&root, &["images", "--format", "json"]);
    assert!(
        images.contains(&printed) && images.contains("team/built"),
        "hoist images shows the name on the printed digest: {images}"
    );
    // Another machine (an empty store) makes the same image.
    assert_eq!(
        build(&dir.path().join("second")),
        printed,
        "same digest from an empty store"
    );
    // The pulled image unpacks to the same file.
    let other = dir.path().join("o");
    ok(&other, &["pull", "-q", &dest]);
    let fs = dir.path().join("fs");
    ok(
        &other,
        &[
            "export",
            &dest,
            "-o",
            &format!("type=local,dest={}", fs.display()),
        ],
    );
    assert_eq!(
        std::fs::read_to_string(fs.join("a.txt")).unwrap().len(),
        10_000
    );
}

#[test]
fn push_without_a_name_is_refused_as_buildx_does() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\n").unwrap();
    let out = hoist(
        &dir.path().join("s"),
        &["build", "--push", ctx.to_str().unwrap()],
    );
    assert!(!out.status.success(), "--push without -t fails");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("tag is needed when pushing to registry"),
        "{err}"
    );
}

/// What the proxy does to the first blob it passes on.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// Send the headers and half the body, then nothing for ten minutes.
    Stall,
    /// Flip one byte in the middle of the body.
    Corrupt,
}

/// A proxy on 127.0.0.1 in front of the real registry, for faults the
/// registry cannot make: one request per connection (the registry is
/// asked for `Connection: close`), the first blob GET gets `fault`.
/// Returns its port and the log of "METHOD path range" it forwarded (the
/// range header lowercased).
fn proxy(upstream: u16, fault: Fault) -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let log = Arc::new(Mutex::new(Vec::new()));
    let faulted = Arc::new(AtomicBool::new(false));
    let shared = log.clone();
    std::thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(mut client) = client else { return };
            let (log, faulted) = (shared.clone(), faulted.clone());
            std::thread::spawn(move || {
                let _ = client.set_read_timeout(Some(std::time::Duration::from_secs(5)));
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    // EOF, or a TLS ClientHello (the https try first).
                    match client.read(&mut byte) {
                        Ok(1) if !(head.is_empty() && byte[0] == 0x16) => head.push(byte[0]),
                        _ => return,
                    }
                }
                let text = String::from_utf8_lossy(&head).into_owned();
                let mut lines = text.split("\r\n");
                let request_line = lines.next().unwrap_or_default().to_string();
                let mut parts = request_line.split(' ');
                let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                let mut forwarded = format!("{request_line}\r\n");
                let mut range = String::new();
                for line in lines.filter(|l| !l.is_empty()) {
                    let name = line.split(':').next().unwrap_or("").to_ascii_lowercase();
                    if name == "range" {
                        range = line.to_string();
                    }
                    if name != "connection" {
                        forwarded.push_str(&format!("{line}\r\n"));
                    }
                }
                forwarded.push_str("Connection: close\r\n\r\n");
                log.lock().unwrap().push(
                    format!("{method} {path} {}", range.to_ascii_lowercase())
                        .trim_end()
                        .to_string(),
                );
                let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", upstream)) else {
                    return;
                };
                upstream.write_all(forwarded.as_bytes()).unwrap();
                let mut response = Vec::new();
                upstream.read_to_end(&mut response).unwrap();
                let body_at = response
                    .windows(4)
                    .position(|w| w == b"\r\n\r\n")
                    .map_or(response.len(), |i| i + 4);
                let first_blob = method == "GET"
                    && path.contains("/blobs/sha256:")
                    && response.len() > body_at + 2
                    && !faulted.swap(true, Ordering::SeqCst);
                match fault {
                    Fault::Stall if first_blob => {
                        let half = body_at + (response.len() - body_at) / 2;
                        let _ = client.write_all(&response[..half]);
                        let _ = client.flush();
                        std::thread::sleep(std::time::Duration::from_secs(600));
                    }
                    Fault::Corrupt if first_blob => {
                        let middle = body_at + (response.len() - body_at) / 2;
                        response[middle] ^= 0xff;
                        let _ = client.write_all(&response);
                    }
                    _ => {
                        let _ = client.write_all(&response);
                    }
                }
            });
        }
    });
    (port, log)
}

/// `hoist ARGS` with a 1 s registry idle timeout, failing the test when it
/// runs for more than 20 s (a hang, or the 30 s default timeout in force)
/// instead of waiting it out.
fn hoist_bounded(root: &Path, args: &[&str]) -> (bool, String, String) {
    let out = root.with_extension("stdout");
    let err = root.with_extension("stderr");
    let mut child = Command::new(env!("CARGO_BIN_EXE_hoist"))
        .arg("--root")
        .arg(root)
        .args(args)
        .env("DOCKER_CONFIG", root.join("docker-config"))
        .env("HOIST_REGISTRY_IDLE_TIMEOUT", "1")
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("hoist runs");
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > std::time::Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "hoist {args:?} hung for 20 s:\n{}",
                std::fs::read_to_string(&err).unwrap_or_default()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    (
        status.success(),
        std::fs::read_to_string(&out).unwrap(),
        std::fs::read_to_string(&err).unwrap(),
    )
}

/// A blob that stalls halfway resumes after the idle timeout with a
/// `Range` for the rest; one whose bytes fail the digest is fetched once
/// more from the start. Either way the pull ends with the pushed digest.
#[test]
fn pull_through_a_stalling_or_corrupting_proxy_gets_the_right_digest() {
    let registry = registry();
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    let manifest =
        hoist_engine::testing::small_image(&Store::open(&a).unwrap(), "docker.io/library/hello:1")
            .unwrap();
    let direct = format!("127.0.0.1:{}/team/hello:1", registry.port);
    let out = hoist(&a, &["push", "hello:1", &direct]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for fault in [Fault::Stall, Fault::Corrupt] {
        let (port, log) = proxy(registry.port, fault);
        let store = dir.path().join(format!("{fault:?}"));
        let via = format!("127.0.0.1:{port}/team/hello:1");
        let (ok, stdout, stderr) = hoist_bounded(&store, &["pull", &via]);
        assert!(ok, "{fault:?}: {stderr}");
        assert_eq!(stdout, format!("{via}\n"));
        assert!(
            stderr.contains(&format!("Digest: {}", manifest.digest())),
            "{fault:?}: {stderr}"
        );
        let check = hoist(&store, &["store", "check"]);
        assert!(check.status.success(), "{fault:?}");
        let blob_gets: Vec<String> = log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.starts_with("GET ") && l.contains("/blobs/"))
            .cloned()
            .collect();
        // Concurrent GETs log in any order: the faulted blob is the one
        // asked for twice, every other once.
        let path = |l: &String| l.split(' ').nth(1).unwrap_or_default().to_string();
        let twice: Vec<String> = blob_gets
            .iter()
            .map(path)
            .filter(|p| blob_gets.iter().filter(|l| path(l) == *p).count() == 2)
            .collect();
        assert_eq!(twice.len(), 2, "{fault:?}: one blob twice: {blob_gets:?}");
        let again: Vec<&String> = blob_gets
            .iter()
            .filter(|l| path(l) == twice[0] && l.contains("range"))
            .collect();
        match fault {
            Fault::Stall => assert!(
                again.len() == 1 && !again[0].contains("bytes=0-"),
                "resumed from what arrived: {blob_gets:?}"
            ),
            Fault::Corrupt => assert!(
                again.is_empty(),
                "fetched again from the start: {blob_gets:?}"
            ),
        }
    }
}

#[test]
fn a_bad_idle_timeout_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hoist"))
        .arg("--root")
        .arg(dir.path())
        .args(["pull", "127.0.0.1:1/a/b:c"])
        .env("HOIST_REGISTRY_IDLE_TIMEOUT", "soon")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("HOIST_REGISTRY_IDLE_TIMEOUT=\"soon\": expected a number of seconds"),
        "{err}"
    );
}

/// `FROM` an image the registry does not have: an error at the FROM line
/// naming the reference tried and the 404.
#[test]
fn from_a_missing_image_names_the_line_and_the_reference() {
    let registry = registry();
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx");
    std::fs::create_dir_all(&ctx).unwrap();
    let base = format!("127.0.0.1:{}/team/missing:1", registry.port);
    std::fs::write(ctx.join("Dockerfile"), format!("\nFROM {base}\n")).unwrap();
    let out = hoist(&dir.path().join("store"), &["build", ctx.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("Dockerfile:2: base image"), "{err}");
    assert!(
        err.contains(&format!("manifest {base}: not found (http 404)")),
        "{err}"
    );
}
