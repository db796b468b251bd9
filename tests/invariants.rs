//! The house rules of ARCHITECTURE.md that a reading of the sources can
//! check: which crate and module may reach which. Each test names the
//! rule; a failure names the file and line that breaks it.
//! (`crates/engine/tests/solve.rs::the_solver_knows_no_dockerfile` checks
//! the solver's; clippy's print lints check "only the CLI prints".)

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn sources(dir: &Path) -> Vec<PathBuf> {
    hoist_test_support::sources::rust_files(dir)
}

/// `file:line: text` of each line of `files` (comments aside) containing
/// one of `words`.
fn mentions(files: &[PathBuf], words: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).unwrap();
        for (i, line) in text.lines().enumerate() {
            let code = line.trim_start();
            if code.starts_with("//") {
                continue;
            }
            if words.iter().any(|w| code.contains(w)) {
                found.push(format!("{}:{}: {}", f.display(), i + 1, code));
            }
        }
    }
    found
}

/// The `[dependencies]` names of a crate's manifest.
fn dependencies(manifest: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(manifest).unwrap();
    let mut in_deps = false;
    let mut out = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
        } else if in_deps && let Some((name, _)) = line.split_once('=') {
            out.push(
                name.trim()
                    .split('.')
                    .next()
                    .unwrap_or_default()
                    .to_string(),
            );
        }
    }
    assert!(
        !out.is_empty(),
        "{} lists no dependencies",
        manifest.display()
    );
    out
}

#[test]
fn the_dockerfile_crate_reaches_nothing_of_ours() {
    let deps = dependencies(&root().join("crates/dockerfile/Cargo.toml"));
    let ours: Vec<&String> = deps.iter().filter(|d| d.starts_with("hoist")).collect();
    assert!(ours.is_empty(), "hoist-dockerfile depends on {ours:?}");
}

#[test]
fn the_sandbox_crate_reaches_no_engine_code() {
    let deps = dependencies(&root().join("crates/sandbox/Cargo.toml"));
    for forbidden in ["hoist-engine", "hoist-dockerfile"] {
        assert!(
            !deps.iter().any(|d| d == forbidden),
            "hoist-sandbox depends on {forbidden}"
        );
    }
    let found = mentions(
        &sources(&root().join("crates/sandbox/src")),
        &["hoist_engine", "hoist_dockerfile"],
    );
    assert!(found.is_empty(), "{found:#?}");
}

/// Only the executor of exec ops (`ops::run`) calls the sandbox; the CLI's
/// `main` only for what must happen before anything else (the sandbox
/// entry point, the rootless re-exec, hoist's private mount namespace).
#[test]
fn only_the_executor_calls_the_sandbox() {
    let engine = root().join("crates/engine/src");
    let run = engine.join("ops/run");
    let outside: Vec<PathBuf> = sources(&engine)
        .into_iter()
        .filter(|f| !f.starts_with(&run))
        .collect();
    let found = mentions(&outside, &["hoist_sandbox"]);
    assert!(found.is_empty(), "{found:#?}");
    let cli: Vec<PathBuf> = sources(&root().join("src"))
        .into_iter()
        .filter(|f| !f.ends_with("src/main.rs"))
        .collect();
    let found = mentions(&cli, &["hoist_sandbox"]);
    assert!(found.is_empty(), "{found:#?}");
}

/// The plan (lowering) reads no files and starts nothing: base images
/// reach it through its `Bases` seam.
#[test]
fn the_plan_does_no_io() {
    let found = mentions(
        &sources(&root().join("crates/engine/src/plan")),
        &[
            "std::fs",
            "std::process",
            "std::net",
            "tokio",
            "crate::store",
            "crate::registry",
            "crate::ops",
            "crate::context",
        ],
    );
    // `crate::ops::run::{Network, Security}`: the exec op's value types.
    let found: Vec<String> = found
        .into_iter()
        .filter(|l| {
            !l.contains("crate::ops::run::Network") && !l.contains("crate::ops::run::Security")
        })
        .collect();
    assert!(found.is_empty(), "{found:#?}");
}

/// The executor runs plan ops: it reads no Dockerfile syntax (no
/// instructions, scopes or parser) — all of that is the plan's.
#[test]
fn the_executor_reads_no_dockerfile_syntax() {
    let found = mentions(
        &sources(&root().join("crates/engine/src/executor")),
        &[
            "hoist_dockerfile::instruction",
            "hoist_dockerfile::parse",
            "StageScope",
            "GlobalScope",
            "StageGraph",
            "Command::",
        ],
    );
    assert!(found.is_empty(), "{found:#?}");
}

/// Library crates deny printing (only the CLI prints).
#[test]
fn library_crates_deny_printing() {
    for lib in [
        "crates/dockerfile/src/lib.rs",
        "crates/engine/src/lib.rs",
        "crates/sandbox/src/lib.rs",
        "crates/userdb/src/lib.rs",
    ] {
        let text = std::fs::read_to_string(root().join(lib)).unwrap();
        assert!(
            text.contains("clippy::print_stdout") && text.contains("clippy::print_stderr"),
            "{lib} does not deny clippy::print_stdout and print_stderr"
        );
    }
}
