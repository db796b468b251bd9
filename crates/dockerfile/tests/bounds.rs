//! Bounded work on hostile Dockerfiles: expansion bombs are refused at
//! their line, and long Dockerfiles (100k lines, 10k-stage chains) load in
//! linear time. BuildKit has no such limits (its lexer expands whatever it
//! is given); hoist's are in `hoist_dockerfile::limits`. Timing goals are
//! in `benches/hostile.rs`; these tests check outcomes only.

mod hostile;

use hoist_dockerfile::instruction::Command;
use hoist_dockerfile::limits::{MAX_CONFIG_BYTES, MAX_WORD_BYTES};
use hoist_dockerfile::{Error, Pos, graph::Source};

fn error_of(text: &str) -> Error {
    match hostile::front_end(text) {
        Ok(_) => panic!("no error"),
        Err(e) => e,
    }
}

const TOO_LONG: &str = "expanded word is longer than 1 MiB (the limit)";

#[test]
fn arg_bomb_is_refused_at_the_line_that_passes_1_mib() {
    // a5 is 10^6 bytes, under 1 MiB; a6 would be 10^7: line 8.
    let e = error_of(&hostile::bomb("ARG", 9));
    assert!(e.message.ends_with(TOO_LONG), "{}", e.message);
    assert!(
        e.message.starts_with("failed to process \"${a5}"),
        "{}",
        e.message
    );
    assert_eq!(e.pos, Pos { line: 8, column: 1 });
}

#[test]
fn env_bomb_is_refused_at_the_line_that_passes_1_mib() {
    let e = error_of(&hostile::bomb("ENV", 9));
    assert!(e.message.ends_with(TOO_LONG), "{}", e.message);
    assert_eq!(e.pos, Pos { line: 8, column: 1 });
}

#[test]
fn global_arg_bomb_is_refused_too() {
    let text = hostile::bomb("ARG", 9).replacen("FROM scratch\n", "", 1) + "FROM scratch\n";
    let e = error_of(&text);
    assert!(e.message.ends_with(TOO_LONG), "{}", e.message);
    assert_eq!(e.pos, Pos { line: 7, column: 1 });
}

#[test]
fn a_smaller_bomb_expands_in_full() {
    for keyword in ["ARG", "ENV"] {
        let loaded = hostile::front_end(&hostile::bomb(keyword, 5)).unwrap();
        let (key, value) = loaded.vars.last().unwrap();
        assert_eq!(key, "a5");
        assert_eq!(value.len(), 1_000_000);
        assert!(value.bytes().all(|b| b == b'x'));
    }
}

#[test]
fn a_word_of_exactly_1_mib_is_accepted_and_one_byte_more_refused() {
    // a1 = 1 KiB, a2 = a1 × 1024 = 1 MiB (+ "y" on line 5).
    let base = format!(
        "FROM scratch\nARG a1={}\nARG a2={}\n",
        "x".repeat(1024),
        "${a1}".repeat(1024)
    );
    let ok = hostile::front_end(&base).unwrap();
    assert_eq!(ok.vars.last().unwrap().1.len(), MAX_WORD_BYTES);
    let e = error_of(&format!("{base}LABEL a=b\nLABEL big=${{a2}}y\n"));
    assert_eq!(
        e.message,
        format!("failed to process \"${{a2}}y\": {TOO_LONG}")
    );
    assert_eq!(e.pos, Pos { line: 5, column: 1 });
}

#[test]
fn pattern_replacement_bomb_is_refused() {
    // Each of 1 Ki characters replaced by 1 Ki of them and one more.
    let text = format!(
        "FROM scratch\nARG v={}\nRUN true\nENV big=${{v//?/${{v}}x}}\n",
        "x".repeat(1024)
    );
    let e = error_of(&text);
    assert!(e.message.ends_with(TOO_LONG), "{}", e.message);
    assert_eq!(e.pos.line, 4);
    // Without the one more, exactly 1 MiB: accepted.
    let fine = text.replace("${v}x}", "$v}");
    let loaded = hostile::front_end(&fine).unwrap();
    assert_eq!(loaded.vars.last().unwrap().1.len(), MAX_WORD_BYTES);
}

#[test]
fn pattern_matching_cost_is_refused() {
    // An 8 Ki value against a 4 Ki-element pattern: 2^25 steps.
    let text = format!(
        "FROM scratch\nARG v={}\nARG p={}\nENV r=${{v##$p}}\n",
        "a".repeat(1 << 13),
        "*a".repeat(1 << 11)
    );
    let e = error_of(&text);
    assert!(
        e.message
            .contains("pattern matching needs more than 16777216 steps"),
        "{}",
        e.message
    );
    assert_eq!(e.pos, Pos { line: 4, column: 1 });
    // The same pattern on a short value is answered.
    let short = text.replacen(&"a".repeat(1 << 13), "aaa", 1);
    let loaded = hostile::front_end(&short).unwrap();
    assert_eq!(loaded.vars.last().unwrap(), &("r".into(), "aaa".into()));
}

/// `ARG b=` 1 MiB less a byte (so every word stays under the word limit),
/// then `ENV e=$b` `envs` times: one config entry, rewritten.
fn repeated_big_env(envs: usize) -> String {
    let mut s = format!(
        "FROM scratch\nARG k={}\nARG b={}\n",
        "x".repeat(1023),
        "${k}".repeat(1024)
    );
    for _ in 0..envs {
        s.push_str("ENV e=$b\n");
    }
    s
}

#[test]
fn a_stage_past_64_mib_of_expanded_words_is_refused() {
    // Counted: ARG k (1 + 1023), ARG b (1 + 1023 × 1024), then each
    // ENV (1 + 1023 × 1024). The 64th ENV passes 64 MiB: line 3 + 64.
    let each = 1 + 1023 * 1024;
    let first = 1 + 1023 + each;
    let envs = (MAX_CONFIG_BYTES - first) / each + 1;
    assert_eq!(envs, 64);
    let e = error_of(&repeated_big_env(envs));
    assert_eq!(
        e.message,
        "ENV: the stage's expanded instructions add up to more than 64 MiB (the limit on a stage's config)"
    );
    assert_eq!(
        e.pos,
        Pos {
            line: 3 + envs,
            column: 1
        }
    );
    // One fewer is within the limit.
    let loaded = hostile::front_end(&repeated_big_env(envs - 1)).unwrap();
    assert_eq!(loaded.vars.last().unwrap().1.len(), each - 1);
}

#[test]
fn the_limit_is_per_stage() {
    // 33 MiB each, 66 MiB together.
    let stage = repeated_big_env(32);
    let two = format!("{stage}{stage}");
    let loaded = hostile::front_end(&two).unwrap();
    assert_eq!(loaded.expanded.len(), 2);
}

#[test]
fn many_lines_of_each_kind_load_with_every_value() {
    const N: usize = 100_000;
    for kind in hostile::KINDS {
        let loaded = hostile::front_end(&hostile::many_lines(kind, N)).unwrap();
        let ins = &loaded.expanded[0];
        assert_eq!(ins.len(), N, "{kind}");
        let last = &ins[N - 1];
        assert_eq!(last.span.start.line, N + 1);
        match (&last.command, kind) {
            (Command::Env { env }, "ENV") => assert_eq!(env[0].value, format!("v{}", N - 1)),
            (Command::Arg { args }, "ARG") => {
                assert_eq!(
                    args[0].default.as_deref(),
                    Some(format!("v{}", N - 1).as_str())
                )
            }
            (Command::Label { labels }, "LABEL") => {
                assert_eq!(labels[0].value, format!("v{}", N - 1))
            }
            (Command::Workdir { path }, "WORKDIR") => assert_eq!(path, &format!("w{}", N - 1)),
            (other, kind) => panic!("{kind}: {other:?}"),
        }
        if kind == "ENV" || kind == "ARG" {
            assert_eq!(loaded.vars.len(), N, "{kind}");
            assert_eq!(loaded.vars[N / 2].1, format!("v{}", N / 2));
        }
    }
}

#[test]
fn a_10k_stage_chain_loads_and_needs_every_stage_in_order() {
    const N: usize = 10_000;
    let loaded = hostile::front_end(&hostile::chain(N)).unwrap();
    let graph = &loaded.graph;
    assert_eq!(graph.stages.len(), N);
    assert_eq!(graph.target, N - 1);
    assert_eq!(graph.needed_order(), (0..N).collect::<Vec<_>>());
    assert_eq!(graph.stages[0].base(), &Source::Scratch);
    assert!(
        graph.stages[1..]
            .iter()
            .all(|s| s.base() == &Source::Stage(s.index - 1))
    );
    assert_eq!(
        loaded.df.stage_by_name("S9999").map(|s| s.index),
        Some(N - 1)
    );
}

#[test]
fn a_long_cycle_is_found_without_recursion() {
    // Stage 0 copies from the last stage of a 10k chain: a cycle through
    // all of them, reported at stage 0's COPY.
    const N: usize = 10_000;
    let text = hostile::chain(N).replacen(
        "FROM scratch AS s0\n",
        &format!("FROM scratch AS s0\nCOPY --from=s{} / /\n", N - 1),
        1,
    );
    let e = error_of(&text);
    assert_eq!(e.message, "circular dependency detected on stage: s0");
    assert_eq!(e.pos, Pos { line: 2, column: 1 });
}
