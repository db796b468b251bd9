//! BuildKit's outline and targets cases (`tests/outline/*.json`, see its
//! README): what `--call=outline` and `--call=targets` report, field by
//! field as BuildKit's own tests assert it. A `null` in a case is a field
//! BuildKit's test does not check.

use std::collections::BTreeMap;
use std::path::Path;

use hoist_dockerfile::outline::{self, Location};
use hoist_dockerfile::{BuildOptions, Dockerfile, parse};
use serde_json::Value;

fn cases() -> Vec<(String, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/outline");
    let mut out: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let v = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            (p.file_stem().unwrap().to_string_lossy().into_owned(), v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// `expected` holds for `actual`: equal, or `null` (unchecked).
fn check(case: &str, what: &str, expected: &Value, actual: Value) {
    if !expected.is_null() {
        assert_eq!(*expected, actual, "{case}: {what}");
    }
}

fn line(l: &Location) -> Value {
    Value::from(l.line())
}

#[test]
fn buildkit_outline_and_targets_cases() {
    let cases = cases();
    assert_eq!(cases.len(), 4, "every case file is read");
    for (name, case) in cases {
        let text = case["dockerfile"].as_str().unwrap();
        let ast = parse(text).unwrap();
        let df = Dockerfile::from_ast(&ast).unwrap();
        let build_args: BTreeMap<String, String> =
            serde_json::from_value(case["build_args"].clone()).unwrap();
        let opts = BuildOptions {
            build_args,
            target: case["target"].as_str().map(str::to_string),
            ..Default::default()
        };
        let expect = &case["expect"];
        match case["call"].as_str().unwrap() {
            "outline" => {
                let o = outline::outline(&ast, &df, &opts).unwrap();
                check(&name, "name", &expect["name"], o.name.clone().into());
                check(
                    &name,
                    "description",
                    &expect["description"],
                    o.description.clone().into(),
                );
                if let Some(args) = expect["args"].as_array() {
                    assert_eq!(args.len(), o.args.len(), "{name}: args {:?}", o.args);
                    for (e, a) in args.iter().zip(&o.args) {
                        check(&name, "arg name", &e[0], a.name.clone().into());
                        check(&name, &a.name, &e[1], a.value.clone().into());
                        check(&name, &a.name, &e[2], a.description.clone().into());
                        check(&name, &a.name, &e[3], line(&a.location));
                    }
                }
                for (field, list) in [("secrets", &o.secrets), ("ssh", &o.ssh)] {
                    let Some(want) = expect[field].as_array() else {
                        continue;
                    };
                    assert_eq!(want.len(), list.len(), "{name}: {field} {list:?}");
                    for (e, r) in want.iter().zip(list) {
                        check(&name, field, &e[0], r.name.clone().into());
                        check(&name, &r.name, &e[1], r.required.into());
                        check(&name, &r.name, &e[2], line(&r.location));
                    }
                }
            }
            "targets" => {
                let t = outline::targets(&ast, &df);
                let want = expect["targets"].as_array().unwrap();
                assert_eq!(want.len(), t.len(), "{name}: {t:?}");
                for (e, t) in want.iter().zip(&t) {
                    check(&name, "target name", &e[0], t.name.clone().into());
                    check(&name, &t.name, &e[1], t.default.into());
                    check(&name, &t.name, &e[2], t.description.clone().into());
                    check(&name, &t.name, &e[3], t.base.clone().into());
                    check(&name, &t.name, &e[4], line(&t.location));
                }
            }
            other => panic!("{name}: unknown call {other}"),
        }
    }
}

/// The JSON is BuildKit's shape: empty fields left out, `location` as
/// `{"ranges":[{"start":{"line":N},"end":{"line":N}}]}`.
#[test]
fn outline_json_has_buildkits_shape() {
    let text = "# GO_VERSION sets the Go version for the build\nARG GO_VERSION=1.22\n\n# base-builder is the base stage for building the project\nFROM golang:${GO_VERSION} AS base-builder\nRUN --mount=type=secret,id=tok \\\n  true\n";
    let ast = parse(text).unwrap();
    let df = Dockerfile::from_ast(&ast).unwrap();
    let o = outline::outline(&ast, &df, &BuildOptions::default()).unwrap();
    let v = serde_json::to_value(&o).unwrap();
    assert_eq!(
        v,
        serde_json::json!({
            "name": "base-builder",
            "description": "is the base stage for building the project",
            "args": [{
                "name": "GO_VERSION",
                "description": "sets the Go version for the build",
                "value": "1.22",
                "location": {"ranges": [{"start": {"line": 2}, "end": {"line": 2}}]}
            }],
            "secrets": [{
                "name": "tok",
                "location": {"ranges": [{"start": {"line": 6}, "end": {"line": 7}}]}
            }]
        })
    );
}

#[path = "hostile/mod.rs"]
mod hostile;

/// A long chain of stages, each built on the one before and copying from
/// another: every stage's own arg and every global is reported once. (Its
/// cost, linear, is measured by `benches/hostile.rs`; BuildKit's copying
/// of captures made 10,000 stages take 23 GB here.)
#[test]
fn a_long_chain_reports_each_arg_once() {
    let (stages, globals) = (2_000, 100);
    let text = hostile::outline_chain(stages, globals);
    let ast = parse(&text).unwrap();
    let df = Dockerfile::from_ast(&ast).unwrap();
    let o = outline::outline(&ast, &df, &BuildOptions::default()).unwrap();
    assert_eq!(o.args.len(), (stages - 1) + globals);
    assert_eq!(o.args[0].name, "G0");
    assert_eq!(o.args[globals].name, "A1");
    assert_eq!(o.args.last().unwrap().name, format!("A{}", stages - 1));
}

/// Every many-line kind of the hostile set goes through the outline; an
/// `ARG` per line reports each (the outline takes the values the stage's
/// scope expanded: before, it copied the stage's variables for each `ARG`,
/// quadratic in the lines).
#[test]
fn many_line_dockerfiles_outline_each_arg() {
    let lines = 5_000;
    for kind in hostile::KINDS {
        let text = hostile::many_lines(kind, lines);
        let ast = parse(&text).unwrap();
        let df = Dockerfile::from_ast(&ast).unwrap();
        let o = outline::outline(&ast, &df, &BuildOptions::default()).unwrap();
        let want = if kind == "ARG" { lines } else { 0 };
        assert_eq!(o.args.len(), want, "{kind}");
    }
}

#[test]
fn unknown_target_is_the_builds_error() {
    let text = "FROM scratch AS build\n";
    let ast = parse(text).unwrap();
    let df = Dockerfile::from_ast(&ast).unwrap();
    let opts = BuildOptions {
        target: Some("buld".into()),
        ..Default::default()
    };
    let err = outline::outline(&ast, &df, &opts).unwrap_err();
    assert!(err.to_string().contains("did you mean build?"), "{err}");
}
