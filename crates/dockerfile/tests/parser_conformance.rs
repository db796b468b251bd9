//! BuildKit's parser conformance cases: every `testfiles/*/Dockerfile` must
//! parse to the AST dump in its `result`, every `testfiles-negative/*` must
//! be rejected. The data is the repository's copy in
//! `testdata/conformance/` (its README says where it came from); a missing
//! folder or a changed case count fails the test.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

const ROOT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../testdata/conformance/buildkit-dockerfile/parser"
);
const POSITIVE_CASES: usize = 33;
const NEGATIVE_CASES: usize = 4;

fn case_dirs(dir: &str, expected: usize) -> Vec<PathBuf> {
    let path = Path::new(ROOT).join(dir);
    let entries = fs::read_dir(&path)
        .unwrap_or_else(|e| panic!("conformance folder {} is missing: {e}", path.display()));
    let mut dirs: Vec<PathBuf> = entries
        .map(|e| e.expect("reading a directory entry").path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    assert_eq!(
        dirs.len(),
        expected,
        "case count in {} changed",
        path.display()
    );
    dirs
}

/// A small line diff: each line of `want` and `got` that differs.
fn diff(want: &str, got: &str) -> String {
    let (w, g): (Vec<&str>, Vec<&str>) = (want.lines().collect(), got.lines().collect());
    let mut out = String::new();
    for i in 0..w.len().max(g.len()) {
        let (a, b) = (w.get(i), g.get(i));
        if a != b {
            let _ = writeln!(
                out,
                "  line {}:\n    - {}\n    + {}",
                i + 1,
                a.unwrap_or(&"<none>"),
                b.unwrap_or(&"<none>")
            );
        }
    }
    if out.is_empty() {
        out = format!("  (only line endings differ)\n    - {want:?}\n    + {got:?}\n");
    }
    out
}

#[test]
fn buildkit_parser_conformance() {
    let mut failures = Vec::new();
    let mut passed = 0;
    for dir in case_dirs("testfiles", POSITIVE_CASES) {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = fs::read_to_string(dir.join("Dockerfile")).expect("reading Dockerfile");
        let want = fs::read_to_string(dir.join("result")).expect("reading result");
        match hoist_dockerfile::parse(&text) {
            Ok(ast) => {
                let got = ast.dump() + "\n";
                if got == want {
                    passed += 1;
                } else {
                    failures.push(format!("{name}: dump differs\n{}", diff(&want, &got)));
                }
            }
            Err(e) => failures.push(format!(
                "{name}: unexpected error at {}:{}: {}",
                e.pos.line, e.pos.column, e
            )),
        }
    }
    for dir in case_dirs("testfiles-negative", NEGATIVE_CASES) {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = fs::read_to_string(dir.join("Dockerfile")).expect("reading Dockerfile");
        match hoist_dockerfile::parse(&text) {
            Err(_) => passed += 1,
            Ok(ast) => failures.push(format!(
                "negative {name}: parsed without error:\n{}",
                ast.dump()
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} conformance cases failed ({passed} passed):\n\n{}",
        failures.len(),
        POSITIVE_CASES + NEGATIVE_CASES,
        failures.join("\n\n")
    );
}
