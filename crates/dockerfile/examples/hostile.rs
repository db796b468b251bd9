//! Runs the whole front end on a generated hostile Dockerfile and prints
//! how long it took; for measuring peak memory with `/usr/bin/time -v`:
//!
//! `cargo run --release -p hoist-dockerfile --example hostile -- KIND N`,
//! KIND one of `ENV`, `ARG`, `LABEL`, `WORKDIR` (N lines), `chain` (N
//! stages), `ARG-bomb` or `ENV-bomb` (N levels).

use std::time::Instant;

#[path = "../tests/hostile/mod.rs"]
mod hostile;

fn main() {
    let mut args = std::env::args().skip(1);
    let kind = args.next().unwrap_or_else(|| "chain".into());
    let n: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let text = match kind.as_str() {
        "chain" => hostile::chain(n),
        "ARG-bomb" => hostile::bomb("ARG", n),
        "ENV-bomb" => hostile::bomb("ENV", n),
        kind => hostile::many_lines(kind, n),
    };
    let started = Instant::now();
    let outcome = hostile::front_end(&text).map(|_| ());
    println!(
        "{kind} {n}: {} bytes in, {outcome:?} in {:.3}s",
        text.len(),
        started.elapsed().as_secs_f64()
    );
}
