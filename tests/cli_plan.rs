//! The build plan as a user meets it: `hoist graph --steps` prints the
//! step graph `hoist build` runs; the whole Dockerfile is planned before
//! any step runs (as BuildKit lowers it to LLB first); steps run as soon
//! as their own inputs are ready, not when their stage's are.

use hoist_test_support::bin;
use hoist_test_support::lab::{Lab, write};

const MULTI: &str = "FROM base:1 AS build\n\
                     RUN echo hi > /out\n\
                     FROM base:1\n\
                     ENV A=1\n\
                     LABEL b=2\n\
                     COPY --from=build /out /out\n\
                     WORKDIR /app\n\
                     RUN --mount=type=bind,from=build,target=/b cat /b/out\n";

#[test]
fn graph_steps_prints_the_step_graph_a_build_runs() {
    let lab = Lab::new(bin!());
    let ctx = lab.path("ctx");
    write(&ctx, &[("Dockerfile", MULTI)]);
    let df = ctx.join("Dockerfile");
    let (text, _) = lab.ok(&["graph", "--steps", "-f", df.to_str().unwrap()]);
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    assert_eq!(
        text,
        format!(
            "#0 source [build] docker.io/library/base:1 (linux/{arch})\n\
             #1 exec   [build] RUN echo hi > /out <- #0\n\
             #2 source [stage-1] docker.io/library/base:1 (linux/{arch})\n\
             #3 meta   [stage-1] ENV A=1 (+1 more) <- #2\n\
             #4 file   [stage-1] COPY --from=build /out /out <- #3 #1\n\
             #5 mkdir  [stage-1] WORKDIR /app <- #4\n\
             #6 exec   [stage-1] RUN --mount=type=bind,from=build,target=/b cat /b/out <- #5 #1\n"
        )
    );
    let (dot, _) = lab.ok(&[
        "graph",
        "--steps",
        "--format",
        "dot",
        "-f",
        df.to_str().unwrap(),
    ]);
    assert!(dot.starts_with("digraph steps {"), "{dot}");
    for edge in [
        "s0 -> s1;",
        "s1 -> s4;",
        "s3 -> s4;",
        "s1 -> s6;",
        "s5 -> s6;",
    ] {
        assert!(dot.contains(edge), "{edge} in {dot}");
    }
    let (mermaid, _) = lab.ok(&[
        "graph",
        "--steps",
        "--format",
        "mermaid",
        "-f",
        df.to_str().unwrap(),
    ]);
    assert!(mermaid.starts_with("flowchart TD\n"), "{mermaid}");
    assert!(mermaid.contains("  s1 --> s6\n"), "{mermaid}");

    // What the graph shows is what the build runs: every exec, file and
    // mkdir step is a step of the build's progress, by the same text.
    let log = lab
        .ok(&[
            "build",
            "--progress",
            "plain",
            "-t",
            "multi:1",
            ctx.to_str().unwrap(),
        ])
        .1;
    for line in text.lines() {
        let Some((_, rest)) = line.split_once("] ") else {
            continue;
        };
        let shown = rest.split(" <- ").next().unwrap();
        if ["exec", "file", "mkdir"]
            .iter()
            .any(|k| line.split_whitespace().nth(1) == Some(k))
        {
            assert!(
                log.contains(shown),
                "{shown:?} not in the build's log:\n{log}"
            );
        }
    }
}

#[test]
fn graph_steps_of_a_missing_base_names_it_at_its_line() {
    let lab = Lab::empty(bin!());
    let ctx = lab.path("ctx");
    write(
        &ctx,
        &[("Dockerfile", "FROM scratch\nFROM 127.0.0.1:9/none:1\n")],
    );
    let out = lab.hoist(&[
        "graph",
        "--steps",
        "-f",
        ctx.join("Dockerfile").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Dockerfile:2:"), "{err}");
    assert!(err.contains("127.0.0.1:9/none:1"), "{err}");
}

/// BuildKit lowers the whole Dockerfile before it solves anything: a bad
/// value in a late instruction fails the build before an earlier `RUN`
/// runs (hoist used to run the steps before it first).
#[test]
fn a_late_error_fails_before_any_step_runs() {
    let lab = Lab::new(bin!());
    let ctx = lab.path("ctx");
    write(
        &ctx,
        &[(
            "Dockerfile",
            "FROM base:1\nRUN echo ran-the-step\nARG P=80/tpc\nEXPOSE $P\n",
        )],
    );
    let out = lab.hoist(&["build", "--progress", "plain", ctx.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid proto: tpc"), "{err}");
    assert!(err.contains("Dockerfile:4"), "{err}");
    assert!(!err.contains("ran-the-step"), "the RUN ran:\n{err}");
}

/// A step waits for its own inputs only: the target's first `RUN` runs
/// while the stage it later copies from is still running (as BuildKit's
/// solver schedules vertices). The two steps meet through a shared cache
/// mount; each gives up after a bounded wait, so a scheduler that ran
/// them one after the other fails the build instead of hanging it.
#[test]
fn steps_run_when_their_own_inputs_are_ready() {
    let lab = Lab::new(bin!());
    let ctx = lab.path("ctx");
    let meet = |me: &str, other: &str| {
        format!(
            "RUN --mount=type=cache,target=/meet,id=meet,sharing=shared \
             touch /meet/{me} && i=0 && while [ ! -e /meet/{other} ]; do \
             i=$((i+1)); [ $i -lt 600 ] || exit 7; sleep 0.1; done && echo met > /{me}\n"
        )
    };
    let df = format!(
        "FROM base:1 AS side\n{}FROM base:1\n{}COPY --from=side /side /side\n",
        meet("side", "main"),
        meet("main", "side"),
    );
    write(&ctx, &[("Dockerfile", &df)]);
    lab.ok(&["build", "-t", "met:1", ctx.to_str().unwrap()]);
    let root = lab.rootfs("met:1");
    assert_eq!(std::fs::read_to_string(root.join("side")).unwrap(), "met\n");
    assert_eq!(std::fs::read_to_string(root.join("main")).unwrap(), "met\n");
}

/// A failed step's error names its instruction's place and shows it
/// whole: every line of a continued `RUN`, not only its first.
#[test]
fn a_failed_step_shows_its_whole_instruction() {
    let lab = Lab::new(bin!());
    let ctx = lab.path("ctx");
    write(
        &ctx,
        &[(
            "Dockerfile",
            "FROM base:1\nENV A=1\nRUN echo first && \\\n    echo second && \\\n    exit 4\nRUN echo never\n",
        )],
    );
    let out = lab.hoist(&["build", "--progress", "plain", ctx.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Dockerfile:3: process"), "{err}");
    assert!(err.contains("exit code: 4"), "{err}");
    for line in [
        "  3 | RUN echo first && \\",
        "  4 |     echo second && \\",
        "  5 |     exit 4",
    ] {
        assert!(err.contains(line), "{line:?} in\n{err}");
    }
    assert!(!err.contains("  6 |"), "{err}");
}
