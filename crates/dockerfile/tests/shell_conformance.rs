//! BuildKit's own word-expansion cases (`frontend/dockerfile/shell/envVarTest`
//! and `wordsTest`), from the repository's copy in `testdata/conformance/`
//! (see its README for the formats). Every `A` and `U` case of `envVarTest` and every
//! case of `wordsTest` must pass; `W` (Windows-only) cases are counted as
//! skipped. All failures are collected and reported together.

use std::collections::BTreeMap;

use hoist_dockerfile::expand::ShellLex;

const SHELL_DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../testdata/conformance/buildkit-dockerfile/shell"
);

/// Cases in the files at the pinned upstream commit; a change in the data
/// must be looked at, not silently absorbed.
const ENV_VAR_CASES: usize = 228;
const ENV_VAR_WINDOWS_ONLY: usize = 2;
const WORDS_CASES: usize = 24;

fn read(name: &str) -> String {
    let path = format!("{SHELL_DIR}/{name}");
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("conformance file {path} is missing or unreadable: {e}"))
}

#[test]
fn env_var_test() {
    let text = read("envVarTest");
    let env: BTreeMap<String, String> = [
        ("PWD", "/home"),
        ("SHELL", "bash"),
        ("KOREAN", "한국어"),
        ("NULL", ""),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let lex = ShellLex::new('\\');
    let (mut ran, mut windows) = (0, 0);
    let mut failures = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.trim().split('|').collect();
        assert_eq!(
            fields.len(),
            3,
            "envVarTest:{line_no}: malformed line {line:?}"
        );
        let (platform, input, expected) = (fields[0].trim(), fields[1].trim(), fields[2].trim());
        match platform {
            "W" => {
                windows += 1;
                continue;
            }
            "A" | "U" => {}
            other => panic!("envVarTest:{line_no}: unknown platform {other:?}"),
        }
        ran += 1;
        let got = lex.process_word(input, &env);
        let ok = match (&got, expected) {
            (Err(_), "error") => true,
            (Ok(word), expected) => expected != "error" && word == expected,
            (Err(_), _) => false,
        };
        if !ok {
            failures.push(format!(
                "envVarTest:{line_no}: {input:?}: expected {expected:?}, got {got:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {ran} envVarTest cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(ran, ENV_VAR_CASES, "number of envVarTest cases run");
    assert_eq!(
        windows, ENV_VAR_WINDOWS_ONLY,
        "number of Windows-only envVarTest cases"
    );
}

#[test]
fn words_test() {
    let text = read("wordsTest");
    let lex = ShellLex::new('\\');
    let mut env: Vec<(String, String)> = Vec::new();
    let mut ran = 0;
    let mut failures = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        if line.starts_with('#') {
            continue;
        }
        if let Some(assignment) = line.strip_prefix("ENV ") {
            // The value runs to the end of the line, trailing spaces included.
            let assignment = assignment.trim_start_matches(' ');
            let (name, value) = assignment.split_once('=').unwrap_or((assignment, ""));
            env.push((name.to_owned(), value.to_owned()));
            continue;
        }
        let fields: Vec<&str> = line.split('|').collect();
        assert_eq!(
            fields.len(),
            2,
            "wordsTest:{line_no}: malformed line {line:?}"
        );
        let input = fields[0].trim();
        let expected: Vec<&str> = fields[1].trim_start_matches(' ').split(',').collect();
        ran += 1;
        let got = match lex.process_words(input, &env) {
            Ok(words) => words,
            Err(_) => vec!["error".to_owned()],
        };
        if got != expected {
            failures.push(format!(
                "wordsTest:{line_no}: {input:?}: expected {expected:?}, got {got:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {ran} wordsTest cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(ran, WORDS_CASES, "number of wordsTest cases run");
}
