//! What docker users type (issue 12 item 4): a Dockerfile alone on stdin
//! (`hoist build - < Dockerfile`, as `docker build -`), a tar context on
//! stdin whatever its tar flavour, a lowercase `dockerfile`, and the
//! attestation flags CI scripts pass (`--provenance=false`,
//! `--sbom=false`).

use std::path::Path;
use std::process::{Command, Output, Stdio};

fn hoist(root: &Path, args: &[&str], stdin: Option<&Path>) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hoist"))
        .arg("--root")
        .arg(root)
        .args(args)
        .env_remove("SOURCE_DATE_EPOCH")
        .env("DOCKER_CONFIG", root.join("docker-config"))
        .stdin(match stdin {
            Some(p) => Stdio::from(std::fs::File::open(p).unwrap()),
            None => Stdio::null(),
        })
        .output()
        .expect("hoist runs")
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn a_dockerfile_alone_on_stdin_builds_without_a_context() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let df = dir.path().join("Dockerfile");
    std::fs::write(&df, "FROM scratch\nLABEL from=stdin\n").unwrap();
    let digest = ok(hoist(&root, &["build", "-q", "-t", "s:1", "-"], Some(&df)));
    assert!(digest.starts_with("sha256:"), "{digest}");
    let inspect = ok(hoist(&root, &["inspect", "s:1"], None));
    assert!(inspect.contains("\"from\": \"stdin\""), "{inspect}");
    // No context: a COPY has nothing to read, and says so.
    std::fs::write(&df, "FROM scratch\nCOPY a.txt /\n").unwrap();
    let out = hoist(&root, &["build", "-q", "-"], Some(&df));
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("a.txt"), "{err}");
}

#[test]
fn a_context_tar_on_stdin_is_recognised_in_every_tar_flavour() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let files: [(&str, &[u8]); 2] = [
        ("Dockerfile", b"FROM scratch\nCOPY a.txt /\n"),
        ("a.txt", b"a\n"),
    ];
    let mut digests = Vec::new();
    for (flavour, header) in [
        ("ustar", tar::Header::new_ustar as fn() -> tar::Header),
        ("gnu", tar::Header::new_gnu),
        ("v7", tar::Header::new_old),
    ] {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in files {
            let mut h = header();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_mtime(1);
            b.append_data(&mut h, name, data).unwrap();
        }
        let tar = dir.path().join(format!("{flavour}.tar"));
        std::fs::write(&tar, b.into_inner().unwrap()).unwrap();
        digests.push(ok(hoist(
            &root,
            &["build", "-q", "--build-arg", "SOURCE_DATE_EPOCH=1", "-"],
            Some(&tar),
        )));
    }
    assert!(
        digests.windows(2).all(|w| w[0] == w[1]),
        "one image whatever the tar flavour: {digests:?}"
    );
}

#[test]
fn a_lowercase_dockerfile_is_used_when_there_is_no_dockerfile() {
    let dir = tempfile::tempdir().unwrap();
    let (root, ctx) = (dir.path().join("store"), dir.path().join("ctx"));
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("dockerfile"), "FROM scratch\nLABEL lower=yes\n").unwrap();
    ok(hoist(
        &root,
        &["build", "-q", "-t", "l:1", ctx.to_str().unwrap()],
        None,
    ));
    let inspect = ok(hoist(&root, &["inspect", "l:1"], None));
    assert!(inspect.contains("\"lower\": \"yes\""), "{inspect}");
}

#[test]
fn attestation_flags_ci_scripts_pass_are_accepted_when_false() {
    let dir = tempfile::tempdir().unwrap();
    let (root, ctx) = (dir.path().join("store"), dir.path().join("ctx"));
    std::fs::create_dir_all(&ctx).unwrap();
    std::fs::write(ctx.join("Dockerfile"), "FROM scratch\n").unwrap();
    let c = ctx.to_str().unwrap();
    ok(hoist(
        &root,
        &["build", "-q", "--provenance=false", "--sbom=false", c],
        None,
    ));
    ok(hoist(&root, &["build", "-q", "--provenance", "0", c], None));
    let out = hoist(&root, &["build", "-q", "--provenance=mode=max", c], None);
    assert!(
        !out.status.success(),
        "an attestation hoist cannot make is refused"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--provenance=false"), "{err}");
}
