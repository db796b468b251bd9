//! The stage graph: dependencies, `--target`, skipped stages, and errors,
//! each mirroring BuildKit's `dockerfile2llb` rule named in the test.

use hoist_dockerfile::graph::{DepKind, Source};
use hoist_dockerfile::{BuildOptions, StageGraph, load};

fn graph(text: &str, target: Option<&str>) -> Result<StageGraph, hoist_dockerfile::Error> {
    let df = load(text)?;
    let opts = BuildOptions {
        target: target.map(str::to_string),
        ..Default::default()
    };
    StageGraph::build(&df, &opts)
}

fn names(g: &StageGraph, idx: &[usize]) -> Vec<String> {
    idx.iter().map(|i| g.stages[*i].display_name()).collect()
}

const MULTI: &str = "\
ARG BASE=busybox
FROM $BASE AS deps
RUN true
FROM deps AS build
RUN true
FROM build AS test
RUN exit 1
FROM golang AS docs
RUN true
FROM scratch AS release
COPY --from=build /out /
COPY --from=0 /deps /
COPY --from=alpine:3 /etc/os-release /
";

#[test]
fn target_needs_only_its_dependencies() {
    let g = graph(MULTI, None).unwrap();
    assert_eq!(g.stages[g.target].display_name(), "release");
    assert_eq!(names(&g, &g.needed_order()), ["deps", "build", "release"]);
    // The failing `test` stage and the unused `docs` stage are never run.
    assert_eq!(names(&g, &g.skipped()), ["test", "docs"]);
    assert_eq!(g.images(), ["alpine:3", "busybox"]);
}

#[test]
fn target_selects_a_stage_case_insensitively() {
    let g = graph(MULTI, Some("TEST")).unwrap();
    assert_eq!(names(&g, &g.needed_order()), ["deps", "build", "test"]);
    assert_eq!(g.images(), ["busybox"]);
}

#[test]
fn from_an_earlier_stage_by_name_is_a_stage_dependency() {
    let g = graph(MULTI, None).unwrap();
    assert_eq!(g.stages[1].base(), &Source::Stage(0));
    assert_eq!(g.stages[0].base(), &Source::Image("busybox".into()));
    assert_eq!(g.stages[4].base(), &Source::Scratch);
}

#[test]
fn from_a_later_stage_name_is_an_image_as_in_buildkit() {
    // BuildKit's addState only matches names of stages already added.
    let g = graph(
        "FROM later AS first\nFROM scratch AS later\n",
        Some("first"),
    )
    .unwrap();
    assert_eq!(g.stages[0].base(), &Source::Image("later".into()));
}

#[test]
fn from_by_number_is_an_image_as_in_buildkit() {
    // BuildKit resolves `FROM` by stage name only; `COPY --from` takes an index.
    let g = graph("FROM scratch\nFROM 0\n", None).unwrap();
    assert_eq!(g.stages[1].base(), &Source::Image("0".into()));
}

#[test]
fn copy_from_index_name_and_image() {
    let g = graph(MULTI, None).unwrap();
    let deps: Vec<(&Source, DepKind)> = g.stages[4]
        .deps
        .iter()
        .map(|d| (&d.source, d.kind))
        .collect();
    assert_eq!(
        deps,
        [
            (&Source::Scratch, DepKind::From),
            (&Source::Stage(1), DepKind::CopyFrom),
            (&Source::Stage(0), DepKind::CopyFrom),
            (&Source::Image("alpine:3".into()), DepKind::CopyFrom),
        ]
    );
    assert_eq!(g.stages[4].deps[1].pos.line, 11);
}

#[test]
fn run_mount_from_is_a_dependency() {
    let g = graph("FROM scratch AS src\nFROM busybox\nRUN --mount=from=src,target=/s true\nRUN --mount=type=bind,from=node:20,target=/n true\n", None).unwrap();
    let deps: Vec<&Source> = g.stages[1]
        .deps
        .iter()
        .filter(|d| d.kind == DepKind::MountFrom)
        .map(|d| &d.source)
        .collect();
    assert_eq!(deps, [&Source::Stage(0), &Source::Image("node:20".into())]);
    assert!(g.stages[0].needed);
}

#[test]
fn onbuild_triggers_of_a_base_stage_add_dependencies() {
    let g = graph(
        "FROM scratch AS assets\nFROM busybox AS base\nONBUILD COPY --from=assets / /\nFROM base\n",
        None,
    )
    .unwrap();
    assert!(
        g.stages[0].needed,
        "the trigger runs in the last stage and needs `assets`"
    );
    assert_eq!(g.stages[2].deps.last().unwrap().source, Source::Stage(0));
}

#[test]
fn errors() {
    let cases: &[(&str, Option<&str>, &str, usize)] = &[
        (
            "FROM scratch AS a\nCOPY --from=b / /\nFROM scratch AS b\nCOPY --from=a / /\n",
            None,
            "circular dependency detected on stage: a",
            2,
        ),
        (
            "FROM scratch AS a\nCOPY --from=b / /\nFROM scratch AS b\n",
            Some("a"),
            "cannot copy from stage \"b\", it needs to be defined before current stage \"a\"",
            2,
        ),
        (
            "FROM scratch\nCOPY --from=7 / /\n",
            None,
            "invalid stage index 7",
            2,
        ),
        (
            "FROM scratch AS a\nARG S=a\nCOPY --from=$S / /\n",
            None,
            "variable expansion is not supported for --from, define a new stage with FROM using ARG from global scope as a workaround",
            3,
        ),
        (
            "FROM scratch\nRUN --mount=from=$X,target=/x true\n",
            None,
            "'from' doesn't support variable expansion, define alias stage instead",
            2,
        ),
        (
            "FROM scratch AS a\n",
            Some("nope"),
            "target stage \"nope\" could not be found (stages: a)",
            0,
        ),
        (
            "ARG E=\nFROM $E\n",
            None,
            "base name ($E) should not be blank",
            2,
        ),
        (
            "FROM --platform=linux//x scratch\n",
            None,
            "invalid platform \"linux//x\": expected os/arch[/variant]",
            1,
        ),
    ];
    let mut failures = Vec::new();
    for (text, target, want, line) in cases {
        match graph(text, *target) {
            Ok(_) => failures.push(format!("{text:?}: no error, want {want:?}")),
            Err(e) if e.message != *want || e.pos.line != *line => failures.push(format!(
                "{text:?}: got {:?} at line {}, want {want:?} at line {line}",
                e.message, e.pos.line
            )),
            Err(_) => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn forward_reference_in_a_skipped_stage_is_not_an_error() {
    // BuildKit only dispatches reachable stages; an unused broken stage never fails the build.
    let g = graph(
        "FROM scratch AS a\nCOPY --from=b / /\nFROM scratch AS b\nFROM scratch AS c\n",
        None,
    )
    .unwrap();
    assert_eq!(names(&g, &g.skipped()), ["a", "b"]);
}

#[test]
fn dot_and_mermaid_show_skipped_stages() {
    let g = graph(MULTI, None).unwrap();
    let dot = g.to_dot();
    assert!(dot.starts_with("digraph stages {"));
    assert!(
        dot.contains("\"stage_2\" [label=\"test (skipped)\", style=dashed"),
        "{dot}"
    );
    assert!(
        dot.contains("\"stage_4\" [label=\"release (target)\", penwidth=2]"),
        "{dot}"
    );
    assert!(
        dot.contains("\"stage_1\" -> \"stage_4\" [style=dashed, label=\"copy\"];"),
        "{dot}"
    );
    assert!(dot.contains("\"img_busybox\" -> \"stage_0\";"), "{dot}");
    let mm = g.to_mermaid();
    assert!(mm.starts_with("flowchart LR\n"));
    assert!(mm.contains("  class stage_2,stage_3 skipped\n"), "{mm}");
    assert!(mm.contains("  stage_1 -. copy .-> stage_4\n"), "{mm}");
}
