//! Parse a generated 5,000-line Dockerfile: every instruction kind, flags,
//! continuations, heredocs, JSON and shell forms, several stages.
//! Figures are recorded in `benches/README.md`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

/// A Dockerfile of exactly `lines` lines that exercises the whole parser.
pub fn big_dockerfile(lines: usize) -> String {
    let mut out = String::from("# syntax=docker/dockerfile:1\nARG BASE=debian:12\n");
    let mut n = 2;
    let mut stage = 0;
    let block = |stage: usize| -> Vec<String> {
        vec![
            format!("FROM ${{BASE}} AS s{stage}"),
            "ARG VERSION=1.0 TARGETARCH".into(),
            format!("ENV APP_HOME=/opt/app{stage} PATH=/opt/bin:$PATH"),
            "LABEL org.opencontainers.image.title=\"app\" version=${VERSION}".into(),
            "WORKDIR $APP_HOME".into(),
            "COPY --chown=1000:1000 --chmod=755 --link src/ ./src/".into(),
            "RUN --mount=type=cache,target=/var/cache/apt \\".into(),
            "    apt-get update && \\".into(),
            "    apt-get install -y --no-install-recommends curl ca-certificates && \\".into(),
            "    rm -rf /var/lib/apt/lists/*".into(),
            "RUN <<EOF".into(),
            "set -eux".into(),
            "echo building ${VERSION} for ${TARGETARCH}".into(),
            "EOF".into(),
            "EXPOSE 8080/tcp 9090".into(),
            "HEALTHCHECK --interval=30s --timeout=3s CMD [\"curl\", \"-f\", \"http://localhost/\"]"
                .into(),
            "USER 1000:1000".into(),
            "VOLUME [\"/data\"]".into(),
            "ENTRYPOINT [\"/opt/app/bin/server\", \"--port\", \"8080\"]".into(),
            "CMD [\"--help\"]".into(),
        ]
    };
    loop {
        let b = block(stage);
        if n + b.len() > lines {
            break;
        }
        for l in b {
            out.push_str(&l);
            out.push('\n');
            n += 1;
        }
        stage += 1;
    }
    while n < lines {
        out.push_str("# padding\n");
        n += 1;
    }
    out
}

fn bench_parse(c: &mut Criterion) {
    let text = big_dockerfile(5_000);
    assert_eq!(text.lines().count(), 5_000);
    // The same input for a peer measured outside this bench (benches/README.md).
    if let Ok(path) = std::env::var("HOIST_BENCH_DUMP") {
        std::fs::write(&path, &text).expect("write HOIST_BENCH_DUMP");
    }
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_function("ast_5000_lines", |b| {
        b.iter(|| hoist_dockerfile::parse(black_box(&text)).expect("parses"))
    });
    g.bench_function("typed_5000_lines", |b| {
        b.iter(|| hoist_dockerfile::load(black_box(&text)).expect("parses"))
    });
    let df = hoist_dockerfile::load(&text).expect("parses");
    g.bench_function("stage_graph_5000_lines", |b| {
        b.iter(|| {
            hoist_dockerfile::StageGraph::build(black_box(&df), &Default::default()).expect("graph")
        })
    });
    g.finish();
}

criterion_group!(benches, bench_parse);
criterion_main!(benches);
