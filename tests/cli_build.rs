//! `hoist build` as a user runs it, on real contexts and stores. Each test
//! names the BuildKit behaviour it mirrors.

use std::path::Path;
use std::process::{Command, Output};

use hoist_engine::store::Store;

fn hoist(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hoist"))
        .arg("--root")
        .arg(root)
        .args(args)
        .env_remove("SOURCE_DATE_EPOCH")
        .output()
        .expect("hoist runs")
}

fn ok(root: &Path, args: &[&str]) -> (String, String) {
    let out = hoist(root, args);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(out.status.success(), "hoist {args:?} failed:\n{stderr}");
    (stdout, stderr)
}

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (name, body) in files {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, body).unwrap();
    }
}

#[test]
fn builds_the_hello_example_and_a_rebuild_does_no_work() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let hello = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/hello");
    let (first, _) = ok(&root, &["build", "-q", "-t", "hello:1", hello]);
    let (_, log) = ok(
        &root,
        &["build", "--progress", "plain", "-t", "hello:1", hello],
    );
    assert!(log.contains("CACHED"), "{log}");
    assert!(log.contains("0 steps run, 1 cached"), "{log}");
    let (again, _) = ok(&root, &["build", "-q", "-t", "hello:1", hello]);
    assert_eq!(
        first, again,
        "a cached rebuild gives the same image digest, as BuildKit's"
    );
    let out = dir.path().join("rootfs");
    ok(
        &root,
        &[
            "export",
            "hello:1",
            "-o",
            &format!("type=local,dest={}", out.display()),
        ],
    );
    assert_eq!(
        std::fs::read_to_string(out.join("hello.txt")).unwrap(),
        "hello from hoist\n"
    );
}

#[test]
fn content_change_with_same_size_and_mtime_invalidates() {
    // moby/buildkit#1368: BuildKit keeps the old layer here; hoist must not.
    let dir = tempfile::tempdir().unwrap();
    let (root, ctx) = (dir.path().join("store"), dir.path().join("ctx"));
    write(
        &ctx,
        &[
            ("Dockerfile", "FROM scratch\nCOPY data.txt /\n"),
            ("data.txt", "aaaa\n"),
            ("ref.txt", ""),
        ],
    );
    let st = Command::new("touch")
        .arg("-r")
        .arg(ctx.join("ref.txt"))
        .arg(ctx.join("data.txt"))
        .status()
        .unwrap();
    assert!(st.success());
    let (d1, _) = ok(&root, &["build", "-q", ctx.to_str().unwrap()]);
    std::fs::write(ctx.join("data.txt"), "bbbb\n").unwrap();
    let st = Command::new("touch")
        .arg("-r")
        .arg(ctx.join("ref.txt"))
        .arg(ctx.join("data.txt"))
        .status()
        .unwrap();
    assert!(st.success());
    let (_, log) = ok(
        &root,
        &["build", "--progress", "plain", ctx.to_str().unwrap()],
    );
    assert!(
        !log.contains("CACHED"),
        "same size and mtime, new content: must rebuild\n{log}"
    );
    let (d2, _) = ok(&root, &["build", "-q", ctx.to_str().unwrap()]);
    assert_ne!(d1, d2);
}

#[test]
fn multistage_copy_from_and_skipped_stages() {
    // BuildKit: a stage the target does not need is never run, even if it would fail.
    let dir = tempfile::tempdir().unwrap();
    let (root, ctx) = (dir.path().join("store"), dir.path().join("ctx"));
    write(
        &ctx,
        &[
            (
                "Dockerfile",
                "FROM scratch AS build\nCOPY src/ /out/\nWORKDIR /out/sub\n\
                 FROM scratch AS broken\nRUN exit 1\n\
                 FROM scratch\nCOPY --from=build /out/ /app/\nCOPY --from=0 /out/a.txt /single.txt\nENV X=1\n",
            ),
            ("src/a.txt", "A\n"),
            ("src/b/c.txt", "C\n"),
        ],
    );
    ok(&root, &["build", "-t", "multi:1", ctx.to_str().unwrap()]);
    let out = dir.path().join("rootfs");
    ok(
        &root,
        &[
            "export",
            "multi:1",
            "-o",
            &format!("type=local,dest={}", out.display()),
        ],
    );
    assert_eq!(
        std::fs::read_to_string(out.join("app/a.txt")).unwrap(),
        "A\n"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("app/b/c.txt")).unwrap(),
        "C\n"
    );
    assert!(
        out.join("app/sub").is_dir(),
        "WORKDIR created the directory in the build stage"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("single.txt")).unwrap(),
        "A\n"
    );
    // The target needs the broken stage: a clear error with the line.
    let bad = hoist(
        &root,
        &["build", "--target", "broken", ctx.to_str().unwrap()],
    );
    assert_eq!(bad.status.code(), Some(1));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains(":5:") && err.contains("RUN"), "{err}");
}

#[test]
fn from_a_stored_image_and_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let (root, ctx) = (dir.path().join("store"), dir.path().join("ctx"));
    hoist_engine::testing::small_image(&Store::open(&root).unwrap(), "docker.io/library/hello:1")
        .unwrap();
    write(
        &ctx,
        &[
            (
                "Dockerfile",
                "FROM hello:1\nARG V=2\nLABEL v=$V\nCOPY --chmod=0600 extra.txt /etc/extra.txt\nEXPOSE 80\nUSER 1000\n",
            ),
            ("extra.txt", "x\n"),
        ],
    );
    let meta = dir.path().join("meta.json");
    let iid = dir.path().join("iid");
    ok(
        &root,
        &[
            "build",
            "-t",
            "app:1",
            "--build-arg",
            "V=3",
            "--label",
            "team=core",
            "--iidfile",
            iid.to_str().unwrap(),
            "--metadata-file",
            meta.to_str().unwrap(),
            ctx.to_str().unwrap(),
        ],
    );
    let inspect: serde_json::Value =
        serde_json::from_str(&ok(&root, &["inspect", "app:1"]).0).unwrap();
    let config = &inspect["Config"];
    assert_eq!(config["config"]["Labels"]["v"], "3");
    assert_eq!(config["config"]["Labels"]["team"], "core");
    assert_eq!(config["config"]["User"], "1000");
    assert_eq!(
        config["config"]["ExposedPorts"]["80/tcp"],
        serde_json::json!({})
    );
    assert_eq!(
        config["rootfs"]["diff_ids"].as_array().unwrap().len(),
        2,
        "base layer + COPY layer"
    );
    assert_eq!(
        config["config"]["Cmd"][0], "/hello.txt",
        "inherited from the base image"
    );
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(&meta).unwrap()).unwrap();
    assert_eq!(meta["containerimage.digest"], inspect["Digest"]);
    assert_eq!(meta["image.name"], "docker.io/library/app:1");
    assert_eq!(
        std::fs::read_to_string(&iid).unwrap(),
        inspect["Digest"].as_str().unwrap()
    );
    let out = dir.path().join("rootfs");
    ok(
        &root,
        &[
            "export",
            "app:1",
            "-o",
            &format!("type=local,dest={}", out.display()),
        ],
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(out.join("etc/extra.txt"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o600
    );
    assert!(out.join("hello.txt").exists());
}

#[test]
fn source_date_epoch_gives_the_same_digest_from_empty_stores() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx");
    write(
        &ctx,
        &[
            (
                "Dockerfile",
                "FROM scratch\nCOPY . /src/\nWORKDIR /src/w\nCMD [\"x\"]\n",
            ),
            ("a.txt", "a"),
            ("d/b.txt", "b"),
        ],
    );
    let mut digests = Vec::new();
    for i in 0..2 {
        let root = dir.path().join(format!("store-{i}"));
        // Touch the files between builds: mtimes must not matter.
        let st = Command::new("touch")
            .arg(ctx.join("a.txt"))
            .status()
            .unwrap();
        assert!(st.success());
        let (d, _) = ok(
            &root,
            &[
                "build",
                "-q",
                "--build-arg",
                "SOURCE_DATE_EPOCH=1700000000",
                ctx.to_str().unwrap(),
            ],
        );
        digests.push(d);
    }
    assert_eq!(digests[0], digests[1]);
}

/// BuildKit: a RUN on scratch has no shell; the step fails with its line
/// and the reason (the sandbox could not exec `/bin/sh`).
#[test]
fn run_without_a_shell_fails_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx");
    write(&ctx, &[("Dockerfile", "FROM scratch\n\nRUN echo hi\n")]);
    let out = hoist(&dir.path().join("store"), &["build", ctx.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Dockerfile:3:") && err.contains("/bin/sh"),
        "{err}"
    );
}

/// BuildKit refuses `--security=insecure` without the entitlement.
#[test]
fn run_security_insecure_is_refused_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx");
    write(
        &ctx,
        &[("Dockerfile", "FROM scratch\nRUN --security=insecure true\n")],
    );
    let out = hoist(&dir.path().join("store"), &["build", ctx.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Dockerfile:2:") && err.contains("security.insecure"),
        "{err}"
    );
}

#[test]
fn explain_says_why_a_step_missed_the_cache() {
    // No peer has this: `--explain` names the changed file, the changed
    // instruction (a build arg), or the parent that missed.
    let dir = tempfile::tempdir().unwrap();
    let (root, ctx) = (dir.path().join("store"), dir.path().join("ctx"));
    write(
        &ctx,
        &[
            (
                "Dockerfile",
                "FROM scratch\nARG DEST=/a\nCOPY src/ $DEST/\nCOPY late.txt /\n",
            ),
            ("src/one.txt", "1"),
            ("src/two.txt", "2"),
            ("late.txt", "l"),
        ],
    );
    let c = ctx.to_str().unwrap();
    let (_, first) = ok(&root, &["build", "--explain", "--progress", "plain", c]);
    assert!(
        first.contains("cache miss: first build of this step"),
        "{first}"
    );
    std::fs::write(ctx.join("src/two.txt"), "22").unwrap();
    let (_, log) = ok(&root, &["build", "--explain", "--progress", "plain", c]);
    assert!(
        log.contains("cache miss: files changed: changed src/two.txt"),
        "{log}"
    );
    assert!(log.contains("cache miss: its parent step changed"), "{log}");
    let (_, log) = ok(
        &root,
        &[
            "build",
            "--explain",
            "--progress",
            "plain",
            "--build-arg",
            "DEST=/b",
            c,
        ],
    );
    assert!(
        log.contains("a build arg or env value changed") && log.contains("/b/"),
        "{log}"
    );
}

#[test]
fn context_and_dockerfile_from_stdin() {
    // docker build - < context.tar, and -f - with a context directory.
    let dir = tempfile::tempdir().unwrap();
    let (root, ctx) = (dir.path().join("store"), dir.path().join("ctx"));
    write(
        &ctx,
        &[
            ("Dockerfile", "FROM scratch\nCOPY a.txt /\n"),
            ("a.txt", "from tar\n"),
        ],
    );
    let tar = dir.path().join("ctx.tar");
    let st = Command::new("tar")
        .arg("-cf")
        .arg(&tar)
        .arg("-C")
        .arg(&ctx)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    let run = |args: &[&str], stdin: std::fs::File| {
        let out = Command::new(env!("CARGO_BIN_EXE_hoist"))
            .arg("--root")
            .arg(&root)
            .args(args)
            .stdin(stdin)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let from_tar = run(
        &["build", "-q", "--build-arg", "SOURCE_DATE_EPOCH=1", "-"],
        std::fs::File::open(&tar).unwrap(),
    );
    let df = dir.path().join("Dockerfile.other");
    std::fs::write(&df, "FROM scratch\nCOPY a.txt /\n").unwrap();
    let from_stdin_df = run(
        &[
            "build",
            "-q",
            "--build-arg",
            "SOURCE_DATE_EPOCH=1",
            "-f",
            "-",
            ctx.to_str().unwrap(),
        ],
        std::fs::File::open(&df).unwrap(),
    );
    assert_eq!(
        from_tar, from_stdin_df,
        "same Dockerfile and files: same image"
    );
}

#[test]
fn dockerignore_hides_files_from_copy() {
    // The peer lab's `dockerignore` case, small: Docker's rules, `!` re-includes.
    let dir = tempfile::tempdir().unwrap();
    let (root, ctx) = (dir.path().join("store"), dir.path().join("ctx"));
    write(
        &ctx,
        &[
            ("Dockerfile", "FROM scratch\nCOPY . /app/\n"),
            (
                ".dockerignore",
                "node_modules\n.git\nbuild/\n**/*.log\n!keep.log\n",
            ),
            ("src/main.rs", "fn main() {}"),
            ("src/debug.log", "x"),
            ("keep.log", "kept"),
            ("drop.log", "dropped"),
            ("node_modules/a/index.js", "x"),
            (".git/HEAD", "x"),
            ("build/out.bin", "x"),
        ],
    );
    ok(&root, &["build", "-t", "ign:1", ctx.to_str().unwrap()]);
    let out = dir.path().join("rootfs");
    ok(
        &root,
        &[
            "export",
            "ign:1",
            "-o",
            &format!("type=local,dest={}", out.display()),
        ],
    );
    let mut found: Vec<String> = walk(&out.join("app"));
    found.sort();
    assert_eq!(
        found,
        [
            ".dockerignore",
            "Dockerfile",
            "keep.log",
            "src",
            "src/main.rs"
        ]
    );
    // Naming an ignored file is "not found", as in BuildKit.
    write(&ctx, &[("Dockerfile", "FROM scratch\nCOPY drop.log /\n")]);
    let out = hoist(&root, &["build", ctx.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("drop.log"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn rec(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(base).unwrap().to_string_lossy().into_owned());
            if p.is_dir() {
                rec(base, &p, out);
            }
        }
    }
    rec(dir, dir, &mut out);
    out
}

#[test]
fn build_contexts_replace_from_copy_from_and_stages() {
    // docker buildx build --build-context NAME=DIR|docker-image://REF|oci-layout://DIR
    let dir = tempfile::tempdir().unwrap();
    let (root, ctx, extra) = (
        dir.path().join("store"),
        dir.path().join("ctx"),
        dir.path().join("extra"),
    );
    hoist_engine::testing::small_image(&Store::open(&root).unwrap(), "docker.io/library/hello:1")
        .unwrap();
    write(&extra, &[("tool.txt", "from a named dir\n")]);
    write(
        &ctx,
        &[(
            "Dockerfile",
            "FROM scratch AS deps\nCOPY nothing-here /\n\
             FROM base\nCOPY --from=tools tool.txt /tool.txt\nCOPY --from=deps /hello.txt /deps-hello.txt\n",
        )],
    );
    let layout = dir.path().join("layout");
    ok(
        &root,
        &[
            "export",
            "hello:1",
            "-o",
            &format!("type=oci,tar=false,dest={}", layout.display()),
        ],
    );
    ok(
        &root,
        &[
            "build",
            "-t",
            "named:1",
            "--build-context",
            &format!("tools={}", extra.display()),
            "--build-context",
            "base=docker-image://hello:1",
            "--build-context",
            &format!("deps=oci-layout://{}", layout.display()),
            ctx.to_str().unwrap(),
        ],
    );
    let out = dir.path().join("rootfs");
    ok(
        &root,
        &[
            "export",
            "named:1",
            "-o",
            &format!("type=local,dest={}", out.display()),
        ],
    );
    assert_eq!(
        std::fs::read_to_string(out.join("tool.txt")).unwrap(),
        "from a named dir\n"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("hello.txt")).unwrap(),
        "hello from hoist\n",
        "FROM base came from docker-image://"
    );
    assert_eq!(
        std::fs::read_to_string(out.join("deps-hello.txt")).unwrap(),
        "hello from hoist\n",
        "stage deps replaced by the layout"
    );
}

#[test]
fn independent_stages_build_and_meet() {
    // A diamond: two independent stages (run concurrently) feeding a third.
    let dir = tempfile::tempdir().unwrap();
    let (root, ctx) = (dir.path().join("store"), dir.path().join("ctx"));
    write(
        &ctx,
        &[
            (
                "Dockerfile",
                "FROM scratch AS left\nCOPY l.txt /\nFROM scratch AS right\nCOPY r.txt /\nFROM scratch\nCOPY --from=left /l.txt /\nCOPY --from=right /r.txt /\n",
            ),
            ("l.txt", "L"),
            ("r.txt", "R"),
        ],
    );
    let (_, log) = ok(
        &root,
        &[
            "build",
            "--progress",
            "rawjson",
            "-t",
            "d:1",
            ctx.to_str().unwrap(),
        ],
    );
    let events: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    // Each step's stage, in the order the steps started: a vertex's first
    // appearance in BuildKit's SolveStatus stream, named `[STAGE] …`.
    let mut seen = std::collections::BTreeSet::new();
    let stages: Vec<&str> = events
        .iter()
        .filter_map(|e| e["vertexes"].as_array())
        .flatten()
        .filter(|v| seen.insert(v["digest"].as_str().unwrap_or("").to_string()))
        .filter_map(|v| v["name"].as_str()?.strip_prefix('[')?.split_once(']'))
        .map(|(stage, _)| stage)
        .collect();
    let last = stages
        .iter()
        .rposition(|s| *s == "left" || *s == "right")
        .unwrap();
    assert!(
        stages[last + 1..].iter().all(|s| *s == "stage-2"),
        "the final stage starts after both: {stages:?}"
    );
    let out = dir.path().join("rootfs");
    ok(
        &root,
        &[
            "export",
            "d:1",
            "-o",
            &format!("type=local,dest={}", out.display()),
        ],
    );
    assert_eq!(std::fs::read_to_string(out.join("l.txt")).unwrap(), "L");
    assert_eq!(std::fs::read_to_string(out.join("r.txt")).unwrap(), "R");
}

#[test]
fn every_progress_mode_builds() {
    // tty off a terminal (as here) prints only its last frame (` => …`
    // lines, tests/cli_progress.rs drives it in one); auto falls back to
    // plain off a terminal.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let hello = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/hello");
    for mode in ["auto", "tty", "plain", "rawjson", "quiet"] {
        let (_, log) = ok(&root, &["build", "--progress", mode, hello]);
        match mode {
            "auto" | "plain" => assert!(
                log.contains("#2 [stage-0] COPY hello.txt /"),
                "{mode}: {log}"
            ),
            "rawjson" => assert!(log.lines().any(|l| l.starts_with('{')), "{log}"),
            _ => assert!(!log.contains("#2 ["), "{mode}: {log}"),
        }
    }
    let out = hoist(&root, &["build", "--progress", "fancy", hello]);
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn identical_steps_in_concurrent_stages_run_once() {
    // BuildKit's solver dedups identical vertices; hoist runs the first
    // and the twin, waiting on the same cache key, finds its record.
    let dir = tempfile::tempdir().unwrap();
    let (root, ctx) = (dir.path().join("store"), dir.path().join("ctx"));
    write(
        &ctx,
        &[
            (
                "Dockerfile",
                "FROM scratch AS a\nCOPY data.txt /\nFROM scratch AS b\nCOPY data.txt /\nFROM scratch\nCOPY --from=a /data.txt /a.txt\nCOPY --from=b /data.txt /b.txt\n",
            ),
            ("data.txt", "same"),
        ],
    );
    let (_, log) = ok(
        &root,
        &["build", "--progress", "plain", ctx.to_str().unwrap()],
    );
    assert!(log.contains("(3 steps run, 1 cached)"), "{log}");
}

/// BuildKit: `-o type=oci` without `-t` or `name=` writes an unnamed image
/// (no ref annotation, no RepoTags), not one named after its digest.
#[test]
fn an_output_without_a_name_is_unnamed() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx");
    write(
        &ctx,
        &[("Dockerfile", "FROM scratch\nCOPY a /a\n"), ("a", "x")],
    );
    let root = dir.path().join("store");
    let tar = dir.path().join("out.tar");
    let spec = format!("type=oci,dest={}", tar.display());
    ok(&root, &["build", "-q", "-o", &spec, ctx.to_str().unwrap()]);
    let out = Command::new("tar")
        .arg("-xOf")
        .arg(&tar)
        .args(["index.json", "manifest.json"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        !text.contains("org.opencontainers.image.ref.name"),
        "{text}"
    );
    assert!(text.contains("\"RepoTags\":[]"), "{text}");
}

/// BuildKit reads the Dockerfile from a snapshot of its own directory and
/// `.dockerignore` from one of the context, so their symlinks resolve
/// inside those directories (an absolute target from the directory, `..`
/// stopping there). hoist resolves them the same way, and one that only
/// leads out is refused by name: the file it points at is never read, so
/// no line of it can reach an error message.
#[test]
fn dockerfile_and_dockerignore_symlinks_out_of_the_context_are_refused() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let (root, ctx) = (dir.path().join("store"), dir.path().join("ctx"));
    let canary = "CANARY_e51f0b secret first line";
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, format!("{canary}\nsecond line\n")).unwrap();
    write(
        &ctx,
        &[
            ("docker/Dockerfile.real", "FROM scratch\nCOPY hello /\n"),
            ("hello", "hi"),
        ],
    );
    let refused = |args: &[&str], link: &str| {
        let out = hoist(&root, args);
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            !stdout.contains("CANARY") && !stderr.contains("CANARY"),
            "{args:?}: the secret reached the output:\n{stdout}\n{stderr}"
        );
        assert!(
            stderr.contains(&format!("{link} is a symlink to "))
                && stderr.contains("refused (it is resolved inside that directory"),
            "{args:?}: {stderr}"
        );
    };
    let c = ctx.to_str().unwrap();

    // The default Dockerfile, relative and absolute links out.
    for target in [Path::new("../secret.txt"), secret.as_path()] {
        let _ = std::fs::remove_file(ctx.join("Dockerfile"));
        symlink(target, ctx.join("Dockerfile")).unwrap();
        refused(&["build", c], &ctx.join("Dockerfile").display().to_string());
    }
    // -f naming a link in the context that leads out.
    symlink(&secret, ctx.join("app.Dockerfile")).unwrap();
    let app = ctx.join("app.Dockerfile");
    refused(
        &["build", "-f", app.to_str().unwrap(), c],
        &app.display().to_string(),
    );

    // A link inside the context is followed; an absolute one resolves
    // from the directory, as in BuildKit's snapshot.
    std::fs::remove_file(ctx.join("Dockerfile")).unwrap();
    symlink("docker/Dockerfile.real", ctx.join("Dockerfile")).unwrap();
    ok(&root, &["build", c]);
    std::fs::remove_file(ctx.join("Dockerfile")).unwrap();
    symlink("/docker/Dockerfile.real", ctx.join("Dockerfile")).unwrap();
    ok(&root, &["build", c]);
    // -f outside the context, named as such, is fine (docker build -f).
    let elsewhere = dir.path().join("elsewhere");
    write(
        &elsewhere,
        &[("Dockerfile", "FROM scratch\nCOPY hello /\n")],
    );
    ok(
        &root,
        &[
            "build",
            "-f",
            elsewhere.join("Dockerfile").to_str().unwrap(),
            c,
        ],
    );

    // .dockerignore, and <Dockerfile>.dockerignore beside the Dockerfile.
    symlink("../secret.txt", ctx.join(".dockerignore")).unwrap();
    refused(
        &["build", c],
        &ctx.join(".dockerignore").display().to_string(),
    );
    std::fs::remove_file(ctx.join(".dockerignore")).unwrap();
    write(&ctx, &[("real.Dockerfile", "FROM scratch\nCOPY hello /\n")]);
    let ignore = ctx.join("real.Dockerfile.dockerignore");
    symlink(&secret, &ignore).unwrap();
    let real = ctx.join("real.Dockerfile");
    refused(
        &["build", "-f", real.to_str().unwrap(), c],
        &ignore.display().to_string(),
    );
    std::fs::remove_file(&ignore).unwrap();
    ok(&root, &["build", "-f", real.to_str().unwrap(), c]);

    // A context on stdin whose Dockerfile is a link out of it.
    let tarred = dir.path().join("tarred");
    write(&tarred, &[("hello", "hi")]);
    symlink(&secret, tarred.join("Dockerfile")).unwrap();
    let tar = Command::new("tar")
        .arg("-C")
        .arg(&tarred)
        .args(["-cf", "-", "."])
        .output()
        .expect("tar runs");
    assert!(tar.status.success());
    let mut child = Command::new(env!("CARGO_BIN_EXE_hoist"))
        .arg("--root")
        .arg(&root)
        .args(["build", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), &tar.stdout).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        !stderr.contains("CANARY") && !String::from_utf8_lossy(&out.stdout).contains("CANARY"),
        "{stderr}"
    );
    assert!(stderr.contains("Dockerfile is a symlink to "), "{stderr}");
}

/// BuildKit: each WORKDIR makes its directory and parents (an empty diff
/// when they exist). hoist answers consecutive WORKDIRs from what the
/// earlier ones made (no look at the files): the layers must be the ones
/// looking gives: `/a` exists (no layer), `b/c` makes `/a/b` and `/a/b/c`,
/// `/a/b` exists (none), `d` makes `/a/b/d`; after a COPY, `/a/b/c`
/// exists (none) and `e` makes `/a/b/c/e`.
#[test]
fn consecutive_workdirs_make_exactly_the_missing_directories() {
    let dir = tempfile::tempdir().unwrap();
    let (root, ctx) = (dir.path().join("store"), dir.path().join("ctx"));
    write(
        &ctx,
        &[
            (
                "Dockerfile",
                "FROM scratch\nCOPY a.txt /a/x.txt\nWORKDIR /a\nWORKDIR b/c\nWORKDIR /a/b\n\
                 WORKDIR d\nCOPY a.txt .\nWORKDIR /a/b/c\nWORKDIR e\n",
            ),
            ("a.txt", "A\n"),
        ],
    );
    ok(&root, &["build", "-t", "wd:1", ctx.to_str().unwrap()]);
    let (inspect, _) = ok(&root, &["inspect", "wd:1"]);
    let doc: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    let history: Vec<(String, bool)> = doc["Config"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["created_by"].as_str().unwrap().to_string(),
                h["empty_layer"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    let expect = [
        ("COPY a.txt /a/x.txt # buildkit", false),
        ("WORKDIR /a", true),
        ("WORKDIR /a/b/c", false),
        ("WORKDIR /a/b", true),
        ("WORKDIR /a/b/d", false),
        ("COPY a.txt . # buildkit", false),
        ("WORKDIR /a/b/c", true),
        ("WORKDIR /a/b/c/e", false),
    ];
    let expect: Vec<(String, bool)> = expect.iter().map(|(s, e)| (s.to_string(), *e)).collect();
    assert_eq!(history, expect);
    let out = dir.path().join("rootfs");
    let dest = format!("type=local,dest={}", out.display());
    ok(&root, &["export", "wd:1", "-o", &dest]);
    for d in ["a/b/c/e", "a/b/d"] {
        assert!(out.join(d).is_dir(), "{d}");
    }
    assert_eq!(
        std::fs::read_to_string(out.join("a/b/d/a.txt")).unwrap(),
        "A\n"
    );
}

/// A base image that cannot be had is an error at its FROM line naming
/// the cause: the DNS lookup of an unknown host, a refused connection;
/// not reqwest's `error sending request for url`.
#[test]
fn an_unreachable_base_names_the_from_line_and_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx");
    // Port 1 on loopback: nothing listens there.
    for (base, cause) in [
        (
            "no-such-registry.invalid/team/base:1",
            "DNS lookup of no-such-registry.invalid failed",
        ),
        ("127.0.0.1:1/team/base:1", "connection refused"),
    ] {
        write(
            &ctx,
            &[("Dockerfile", &format!("# base\nFROM {base}\nRUN true\n"))],
        );
        let out = hoist(&dir.path().join("store"), &["build", ctx.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains("Dockerfile:2: base image"), "{err}");
        assert!(err.contains(cause), "{err}");
        assert!(!err.contains("error sending request"), "{err}");
    }
}

/// A value an instruction cannot take is a Dockerfile error at its line,
/// not an internal error.
#[test]
fn an_expose_typo_is_a_dockerfile_error_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx");
    write(&ctx, &[("Dockerfile", "FROM scratch\n\nEXPOSE 80/tpc\n")]);
    let out = hoist(&dir.path().join("store"), &["build", ctx.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("Dockerfile:3:1: invalid port: \"80/tpc\": invalid proto: tpc"),
        "{err}"
    );
    assert!(err.contains("EXPOSE 80/tpc\n"), "{err}");
    assert!(!err.contains("internal error"), "{err}");
}

/// `COPY --from=stage` of a missing path names the stage it looked in,
/// not the build context.
#[test]
fn copy_from_a_stage_of_a_missing_path_names_the_stage() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx");
    write(
        &ctx,
        &[
            (
                "Dockerfile",
                "FROM scratch AS build\nCOPY a.txt /a.txt\nFROM scratch\nCOPY --from=build /missing /x\n",
            ),
            ("a.txt", "A\n"),
        ],
    );
    let out = hoist(&dir.path().join("store"), &["build", ctx.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(":4: "), "{err}");
    assert!(
        err.contains("/missing\": not found in stage build"),
        "{err}"
    );
    assert!(!err.contains("build context"), "{err}");
}

/// Typos in `RUN --mount` get BuildKit's `did you mean`, at the line.
#[test]
fn mount_typos_suggest_the_key_and_the_type() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx");
    for (mount, want) in [
        ("tpye=cache,target=/c", "(did you mean type?)"),
        ("type=tmfps,target=/c", "(did you mean tmpfs?)"),
    ] {
        write(
            &ctx,
            &[(
                "Dockerfile",
                &format!("FROM scratch\nRUN --mount={mount} true\n"),
            )],
        );
        let out = hoist(&dir.path().join("store"), &["build", ctx.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(want) && err.contains(":2:"), "{err}");
    }
}

/// A registry answering 401: the FROM line, and how to log in.
#[test]
fn an_unauthorized_base_suggests_hoist_login() {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Every request, on every connection: 401 with a Basic challenge.
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 8192];
                while let Ok(n) = conn.read(&mut buf) {
                    if n == 0
                        || conn
                            .write_all(
                                b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"t\"\r\nContent-Length: 0\r\n\r\n",
                            )
                            .is_err()
                    {
                        break;
                    }
                }
            });
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let ctx = dir.path().join("ctx");
    write(
        &ctx,
        &[(
            "Dockerfile",
            &format!("FROM 127.0.0.1:{port}/team/base:1\n"),
        )],
    );
    let out = Command::new(env!("CARGO_BIN_EXE_hoist"))
        .arg("--root")
        .arg(dir.path().join("store"))
        .args(["build", ctx.to_str().unwrap()])
        .env("DOCKER_CONFIG", dir.path().join("docker-config"))
        .env_remove("REGISTRY_AUTH_FILE")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("Dockerfile:1: base image"), "{err}");
    assert!(
        err.contains(&format!("`hoist login 127.0.0.1:{port}`")),
        "{err}"
    );
}
