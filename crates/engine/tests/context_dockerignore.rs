//! moby/patternmatcher's own test tables (`testdata/conformance/dockerignore`),
//! read in place: every case must give the answer the Go code gives with
//! `New` + `MatchesOrParentMatches`, which is what `docker build` uses.

use std::path::PathBuf;

use hoist_engine::context::Matcher;
use serde_json::Value;

const EXPECTED_CASES: usize = 137;

fn cases_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/conformance/dockerignore/dockerignore-match-cases.jsonl")
}

#[test]
fn context_dockerignore_conformance() {
    let path = cases_path();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("conformance data missing at {}: {e}", path.display()));
    let mut count = 0;
    let mut failures = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        count += 1;
        let case: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("line {}: {e}", i + 1));
        let patterns: Vec<String> = case["patterns"]
            .as_array()
            .expect("patterns")
            .iter()
            .map(|p| p.as_str().expect("pattern string").to_string())
            .collect();
        let path = case["path"].as_str().expect("path");
        let got = match Matcher::from_strings(&patterns) {
            Ok(m) => Value::Bool(m.matches_or_parent_matches(path)),
            Err(_) => Value::String("error".into()),
        };
        if got != case["match"] {
            failures.push(format!(
                "line {}: patterns {patterns:?} path {path:?}: want {}, got {got} ({})",
                i + 1,
                case["match"],
                case["source"]
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(
        count,
        EXPECTED_CASES,
        "case count changed in {}",
        path.display()
    );
}
