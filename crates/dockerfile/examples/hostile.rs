//! Runs the front end (load, global scope, graph, every stage's scope) on
//! a generated hostile Dockerfile and prints how long it took; used to
//! measure peak memory with `/usr/bin/time -v`.
//!
//! `cargo run --release -p hoist-dockerfile --example hostile -- KIND N`,
//! KIND one of `env`, `arg`, `label`, `workdir`, `chain`, `arg-bomb`, `env-bomb`.

use std::time::Instant;

use hoist_dockerfile::{BuildOptions, GlobalScope, StageGraph, StageScope, load};

fn main() {
    let mut args = std::env::args().skip(1);
    let kind = args.next().unwrap_or_else(|| "chain".into());
    let n: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let text = generate(&kind, n);
    let started = Instant::now();
    let outcome = front_end(&text);
    println!(
        "{kind} {n}: {} bytes, {:?} in {:.3}s",
        text.len(),
        outcome.map(|_| "ok").map_err(|e| e.to_string()),
        started.elapsed().as_secs_f64()
    );
}

fn generate(kind: &str, n: usize) -> String {
    let mut s = String::from("FROM scratch AS s0\n");
    match kind {
        "env" => (0..n).for_each(|i| s.push_str(&format!("ENV e{i}=v{i}\n"))),
        "arg" => (0..n).for_each(|i| s.push_str(&format!("ARG a{i}=v{i}\n"))),
        "label" => (0..n).for_each(|i| s.push_str(&format!("LABEL l{i}=v{i}\n"))),
        "workdir" => (0..n).for_each(|i| s.push_str(&format!("WORKDIR /w{i}\n"))),
        "chain" => (1..n).for_each(|i| s.push_str(&format!("FROM s{} AS s{i}\n", i - 1))),
        "arg-bomb" | "env-bomb" => {
            let kw = if kind == "arg-bomb" { "ARG" } else { "ENV" };
            s.push_str(&format!("{kw} a0=xxxxxxxxxx\n"));
            for i in 1..n {
                s.push_str(&format!(
                    "{kw} a{i}={}\n",
                    format!("${{a{}}}", i - 1).repeat(10)
                ));
            }
        }
        other => panic!("unknown kind {other}"),
    }
    s
}

fn front_end(text: &str) -> hoist_dockerfile::Result<()> {
    let df = load(text)?;
    let opts = BuildOptions::default();
    StageGraph::build(&df, &opts)?;
    let globals = GlobalScope::new(&df, &opts)?;
    for stage in &df.stages {
        let mut scope = StageScope::new(&df, &globals, &opts, &[]);
        for ins in &stage.instructions {
            scope.apply(ins)?;
        }
    }
    Ok(())
}
