//! The `hoist` binary as a user runs it: exit codes, stdout, and what
//! errors and warnings look like on stderr.

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn hoist(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hoist"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("hoist runs");
    let mut input = child.stdin.take().expect("stdin");
    input
        .write_all(stdin.unwrap_or("").as_bytes())
        .expect("write stdin");
    drop(input);
    child.wait_with_output().expect("hoist finishes")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn parse_dumps_the_example() {
    let out = hoist(&["parse", "-f", "examples/hello/Dockerfile"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "(from \"scratch\")\n(copy \"hello.txt\" \"/\")\n(label \"org.opencontainers.image.title\" \"\\\"hello\\\"\" \"=\")\n(cmd \"/hello.txt\")\n"
    );
}

#[test]
fn parse_reads_stdin_and_prints_json_with_spans() {
    let out = hoist(
        &["parse", "-f", "-", "--format", "json"],
        Some("FROM scratch AS a\n\nCOPY x /y\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let stage = &v["stages"][0];
    assert_eq!(stage["from"]["name"], "a");
    let copy = &stage["instructions"][0];
    assert_eq!(copy["command"]["instruction"], "copy");
    assert_eq!(copy["span"]["start"]["line"], 3);
    assert_eq!(copy["span"]["start"]["column"], 1);
}

#[test]
fn errors_show_file_line_column_and_a_caret() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("Dockerfile");
    std::fs::write(&file, "FROM scratch\n  COPY --frm=x a /b\n").unwrap();
    let out = hoist(
        &["parse", "-f", file.to_str().unwrap(), "--format", "json"],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    let want_head = format!(
        "error: {}:2:3: unknown flag: --frm for COPY (did you mean from?)\n",
        file.display()
    );
    assert!(err.starts_with(&want_head), "{err}");
    assert!(err.contains("2 |   COPY --frm=x a /b\n  |   ^\n"), "{err}");
}

#[test]
fn unknown_instruction_is_an_error_naming_it() {
    let out = hoist(&["parse", "-f", "-"], Some("FROM scratch\nCOPPY a /b\n"));
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("<stdin>:2:1: unknown instruction: COPPY"),
        "{err}"
    );
}

#[test]
fn warnings_go_to_stderr_and_do_not_fail() {
    let out = hoist(
        &["parse", "-f", "-"],
        Some("FROM scratch\nRUN echo a \\\n\n  b\n"),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("warning: <stdin>:"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        text(&out.stdout),
        "(from \"scratch\")\n(run \"echo a   b\")\n"
    );
}

#[test]
fn graph_text_lists_build_order_and_skipped_stages() {
    let out = hoist(&["graph", "-f", "examples/multistage/Dockerfile"], None);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(
        s.starts_with("target: release\nbuild order:\n  deps (from image busybox:1.36)\n"),
        "{s}"
    );
    assert!(s.ends_with("skipped: test, docs\n"), "{s}");
}

#[test]
fn graph_target_build_arg_and_formats() {
    let out = hoist(
        &[
            "graph",
            "-f",
            "examples/multistage/Dockerfile",
            "--target",
            "test",
            "--build-arg",
            "BASE=alpine:3",
            "--format",
            "json",
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["target"], 2);
    assert_eq!(v["stages"][0]["deps"][0]["source"]["ref"], "alpine:3");
    assert_eq!(v["stages"][4]["needed"], false);
    for (fmt, head) in [("dot", "digraph stages {"), ("mermaid", "flowchart LR")] {
        let out = hoist(
            &[
                "graph",
                "-f",
                "examples/multistage/Dockerfile",
                "--format",
                fmt,
            ],
            None,
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(text(&out.stdout).starts_with(head));
    }
}

#[test]
fn graph_unknown_target_fails() {
    let out = hoist(
        &[
            "graph",
            "-f",
            "examples/multistage/Dockerfile",
            "--target",
            "nope",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("target stage \"nope\" could not be found"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn missing_dockerfile_names_the_path() {
    let out = hoist(&["parse", "-f", "no/such/Dockerfile"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("reading Dockerfile no/such/Dockerfile"),
        "{}",
        text(&out.stderr)
    );
}

/// A reader that goes away (`hoist parse … | head -1`): hoist stops with
/// 141 (128 + SIGPIPE) as `cat` would, never a panic.
#[test]
fn a_closed_stdout_ends_quietly() {
    let big = "FROM scratch\n".to_string() + &"LABEL a=b\n".repeat(5000);
    let mut child = Command::new(env!("CARGO_BIN_EXE_hoist"))
        .args(["parse", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Close the read end before hoist writes a byte.
    drop(child.stdout.take());
    // hoist may stop before reading it all; only its exit matters.
    let _ = child.stdin.take().unwrap().write_all(big.as_bytes());
    let out = child.wait_with_output().unwrap();
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(141), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

/// An OS error is printed once: a cause whose text the line before it
/// already holds (`PATH: File exists (os error 17)` then the bare
/// `io::Error`) is left out.
#[test]
fn an_os_error_is_printed_once() {
    let dir = std::env::temp_dir().join(format!("hoist-os-error-once-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("a-file");
    std::fs::write(&file, "").unwrap();
    let root = file.join("store");
    let out = hoist(&["--root", root.to_str().unwrap(), "images"], None);
    let err = text(&out.stderr);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.matches("(os error ").count(), 1, "{err}");
}

/// A mistyped `--target` gets BuildKit's `(did you mean build?)`.
#[test]
fn a_mistyped_target_suggests_the_stage() {
    let out = hoist(
        &[
            "graph",
            "-f",
            "examples/multistage/Dockerfile",
            "--target",
            "biuld",
        ],
        None,
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("target stage \"biuld\" could not be found (did you mean build?)"),
        "{err}"
    );
}

/// A mistyped `RUN` flag gets BuildKit's `(did you mean mount?)`.
#[test]
fn a_mistyped_run_flag_suggests_mount() {
    let out = hoist(
        &["parse", "-f", "-", "--format", "json"],
        Some("FROM scratch\nRUN --mout=type=cache,target=/c true\n"),
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("(did you mean mount?)"), "{err}");
}

/// An unknown flag is said as the docker CLI says it (cobra's `unknown
/// flag: --foo` and `See 'docker buildx build --help'.`), not clap's `--
/// --foo` tip, with a did-you-mean when a flag is close; exit code 2, as
/// every usage error, for every subcommand.
#[test]
fn unknown_flags_are_said_as_docker_says_them() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["build", "--pussh", "."],
            "error: unknown flag: --pussh\ndid you mean --push?\nSee 'hoist build --help'.\n",
        ),
        (
            &["build", "--zzzzzzzz=1"],
            "error: unknown flag: --zzzzzzzz\nSee 'hoist build --help'.\n",
        ),
        (
            &["images", "--zzzzzzzz"],
            "error: unknown flag: --zzzzzzzz\nSee 'hoist images --help'.\n",
        ),
        (
            &["store", "check", "--repiar"],
            "error: unknown flag: --repiar\ndid you mean --repair?\nSee 'hoist store check --help'.\n",
        ),
        (
            &["build", "-Z"],
            "error: unknown shorthand flag: 'Z' in -Z\nSee 'hoist build --help'.\n",
        ),
        (
            &["--zzzzzzzz"],
            "error: unknown flag: --zzzzzzzz\nSee 'hoist --help'.\n",
        ),
    ];
    for (args, want) in cases {
        let out = hoist(args, None);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(text(&out.stderr), *want, "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    // Other usage errors keep clap's words and the same exit code.
    let out = hoist(&["build", "a", "b"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("unexpected argument 'b'"));
}
