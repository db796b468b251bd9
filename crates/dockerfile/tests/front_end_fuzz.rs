//! A time-boxed fuzz loop over the whole front end (parse, load, scopes,
//! graph), on stable Rust: Dockerfile-shaped text from proptest's
//! generators with a fixed seed, run for `HOIST_FUZZ_SECONDS` (default 2)
//! or 50,000 cases, whichever ends first. No input may panic, and what
//! comes out keeps within the limits of `hoist_dockerfile::limits`.
//!
//! A longer run: `HOIST_FUZZ_SECONDS=600 cargo test --release -p
//! hoist-dockerfile --test front_end_fuzz`.

mod hostile;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use hoist_dockerfile::limits::MAX_WORD_BYTES;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// Pieces of Dockerfile syntax, stages and expansion forms among them.
const PIECES: &[&str] = &[
    "FROM scratch AS s0\n",
    "FROM s0 AS s1\n",
    "FROM s1\n",
    "FROM $B\n",
    "FROM --platform=$BUILDPLATFORM s0 AS s2\n",
    "ARG B=s0\n",
    "ARG a=xxxxxxxxxx\n",
    "ARG a=${a}${a}${a}${a}${a}${a}${a}${a}${a}${a}\n",
    "ENV a=$a$a$a$a$a$a$a$a$a$a\n",
    "ENV p=*a*a*a*a*a*a\n",
    "ARG ",
    "ENV ",
    "LABEL ",
    "WORKDIR ",
    "RUN ",
    "COPY ",
    "ADD ",
    "EXPOSE ",
    "USER ",
    "VOLUME ",
    "ONBUILD ",
    "COPY --from=s1 / /\n",
    "COPY --from=0 a b\n",
    "RUN --mount=from=s0,target=/x true\n",
    "${a:-${a:+$a}}",
    "${a//?/$a}",
    "${a##$p}",
    "${a%%*}",
    "${a/x/y}",
    "${x?unset}",
    "${",
    "}",
    "$a",
    "k=v",
    "=",
    " ",
    "'",
    "\"",
    "\\\n",
    "<<EOF\n",
    "EOF\n",
    "# escape=`\n",
    "[\"a\", \"b\"]",
    "\n",
    "é",
];

fn dockerfiles() -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::sample::select(PIECES), 0..60)
        .prop_map(|pieces| pieces.concat())
}

/// The front end on `text`: whatever it returns, nothing it holds is
/// longer than the word limit.
fn check(text: &str) {
    let Ok(loaded) = hostile::front_end(text) else {
        return;
    };
    for (_, value) in &loaded.vars {
        assert!(value.len() <= MAX_WORD_BYTES);
    }
    let _ = loaded.graph.needed_order();
    let _ = loaded.graph.to_dot();
}

#[test]
fn the_front_end_never_panics_on_generated_dockerfiles() {
    let seconds = std::env::var("HOIST_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::deterministic_rng(RngAlgorithm::ChaCha),
    );
    let strategy = dockerfiles();
    let mut cases = 0;
    while cases < 50_000 && (cases < 100 || Instant::now() < deadline) {
        let text = strategy.new_tree(&mut runner).unwrap().current();
        if catch_unwind(AssertUnwindSafe(|| check(&text))).is_err() {
            panic!("the front end panicked on {text:?}");
        }
        cases += 1;
    }
    assert!(cases >= 100);
}
