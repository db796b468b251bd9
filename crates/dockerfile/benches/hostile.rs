//! The front end (load, scopes, graph: `tests/hostile/mod.rs`'s
//! `front_end`) on long Dockerfiles: 100,000 lines of each of `ENV`, `ARG`,
//! `LABEL` and `WORKDIR`, a 10,000-stage `FROM` chain, and `--call=outline`
//! of a 10,000-stage chain with 1,000 global args (`outline_chain`). Goal: each in
//! at most 1 s (security issue item 6). Figures in `benches/README.md`.
//!
//! `cargo bench -p hoist-dockerfile --bench hostile`. Under `cargo test
//! --benches` (no `--bench` argument) the inputs are 100 times smaller, so
//! the unoptimised run stays quick.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

#[path = "../tests/hostile/mod.rs"]
mod hostile;

/// 1 when benchmarking, 100 under `cargo test`.
fn scale_down() -> usize {
    if std::env::args().any(|a| a == "--bench") {
        1
    } else {
        100
    }
}

fn bench_hostile(c: &mut Criterion) {
    let lines = 100_000 / scale_down();
    let stages = 10_000 / scale_down();
    let mut group = c.benchmark_group("hostile");
    group.sample_size(10);
    for kind in hostile::KINDS {
        let text = hostile::many_lines(kind, lines);
        group.bench_function(format!("{}_{lines}_lines", kind.to_lowercase()), |b| {
            b.iter(|| hostile::front_end(black_box(&text)).unwrap())
        });
    }
    let text = hostile::many_lines("ARG", lines);
    group.bench_function(format!("outline_arg_{lines}_lines"), |b| {
        b.iter(|| {
            let ast = hoist_dockerfile::parse(black_box(&text)).unwrap();
            let df = hoist_dockerfile::Dockerfile::from_ast(&ast).unwrap();
            hoist_dockerfile::outline::outline(&ast, &df, &Default::default()).unwrap()
        })
    });
    let text = hostile::chain(stages);
    group.bench_function(format!("chain_{stages}_stages"), |b| {
        b.iter(|| hostile::front_end(black_box(&text)).unwrap())
    });
    let globals = 1_000 / scale_down();
    let text = hostile::outline_chain(stages, globals);
    group.bench_function(format!("outline_{stages}_stages_{globals}_globals"), |b| {
        b.iter(|| {
            let ast = hoist_dockerfile::parse(black_box(&text)).unwrap();
            let df = hoist_dockerfile::Dockerfile::from_ast(&ast).unwrap();
            hoist_dockerfile::outline::outline(&ast, &df, &Default::default()).unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, bench_hostile);
criterion_main!(benches);
