//! The cost of Docker's seccomp profile on a `RUN` step (security issue,
//! item 4; goal ≤ +1 ms): the same empty step (`/bin/sh -c true` over a
//! busybox overlay: sandbox process up, namespaces, mounts, pivot_root,
//! exec, down) with the filter loaded and without it, measured in the same
//! run, through the sandbox itself so that nothing else differs
//! (`Plan::seccomp`). Also the once-per-build compile of the profile.
//!
//! Criterion measures the two one after the other; on a loaded machine the
//! load moves between them, so `paired` also runs the two alternately,
//! one pair at a time (order swapped every pair), and prints the medians
//! and the median of the per-pair differences, in wall time and in the CPU
//! time (user + system) the step's processes used, which other load moves
//! far less (`HOIST_BENCH_PAIRS`, default 200; 5 in a debug smoke run).
//! Needs root (as CI) and busybox-static. Figures in `benches/README.md`.

use std::path::{Path, PathBuf};

use criterion::{Criterion, criterion_group, criterion_main};
use hoist_sandbox::isolation::Plan;
use hoist_sandbox::{Network, Rootfs, RunSpec};

fn lower(dir: &Path) -> PathBuf {
    let root = dir.join("lower");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", root.join("bin/sh")).unwrap();
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    root
}

/// One empty step, the filter on or off; fails loudly if the step does.
fn step(dir: &Path, lower: &Path, n: usize, filter: Option<&str>) {
    let step = dir.join(format!("step-{n}"));
    let (upper, work, merged) = (step.join("upper"), step.join("work"), step.join("merged"));
    for d in [&upper, &work, &merged] {
        std::fs::create_dir_all(d).unwrap();
    }
    let spec = RunSpec {
        rootfs: Rootfs {
            lower: vec![lower.to_path_buf()],
            upper,
            work,
            merged,
            copy: false,
        },
        args: vec!["/bin/sh".into(), "-c".into(), "true".into()],
        env: vec!["PATH=/bin".into()],
        cwd: "/".into(),
        user: String::new(),
        hostname: "buildkitsandbox".into(),
        network: Network::Host,
        stack: None,
        mounts: Vec::new(),
        report: step.join("report.json"),
        limits: Default::default(),
        isolation: Plan {
            seccomp: filter.is_some(),
            ..Plan::default()
        },
        security: Default::default(),
        seccomp: filter.map(str::to_string),
    };
    let spec_path = step.join("spec.json");
    std::fs::write(&spec_path, serde_json::to_vec(&spec).unwrap()).unwrap();
    let status = hoist_sandbox::command(Path::new(env!("CARGO_BIN_EXE_hoist")), &spec_path)
        .status()
        .unwrap();
    assert!(status.success(), "{status}");
    std::fs::remove_dir_all(&step).unwrap();
}

fn seccomp(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let lower = lower(dir.path());
    let filter = hoist_sandbox::seccomp::compile_for(&Plan::default()).unwrap();
    let mut n = 0;
    let mut group = c.benchmark_group("seccomp");
    group.sample_size(if cfg!(debug_assertions) { 10 } else { 100 });
    group.bench_function("empty RUN step, no filter", |b| {
        b.iter(|| {
            n += 1;
            step(dir.path(), &lower, n, None)
        })
    });
    group.bench_function("empty RUN step, Docker's default profile", |b| {
        b.iter(|| {
            n += 1;
            step(dir.path(), &lower, n, Some(&filter))
        })
    });
    group.bench_function("compile Docker's default profile (once per build)", |b| {
        b.iter(|| hoist_sandbox::seccomp::compile_for(&Plan::default()).unwrap())
    });
    group.finish();
}

/// Filtered and unfiltered steps alternately; medians and the median of
/// the paired differences, printed.
fn paired(_: &mut Criterion) {
    let pairs: usize = std::env::var("HOIST_BENCH_PAIRS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(if cfg!(debug_assertions) { 5 } else { 200 });
    let dir = tempfile::tempdir().unwrap();
    let lower = lower(dir.path());
    let filter = hoist_sandbox::seccomp::compile_for(&Plan::default()).unwrap();
    // (wall ms, CPU ms of the step's processes: every child reaped here).
    let cpu = || {
        let u =
            nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).unwrap();
        let ms = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 * 1e3 + t.tv_usec() as f64 / 1e3;
        ms(u.user_time()) + ms(u.system_time())
    };
    let timed = |n: usize, f: Option<&str>| {
        let (start, cpu0) = (std::time::Instant::now(), cpu());
        step(dir.path(), &lower, n, f);
        (start.elapsed().as_secs_f64() * 1e3, cpu() - cpu0)
    };
    let mut wall = [Vec::new(), Vec::new(), Vec::new()];
    let mut used = [Vec::new(), Vec::new(), Vec::new()];
    for i in 0..pairs {
        let (a, b) = if i % 2 == 0 {
            let b = timed(2 * i, None);
            (timed(2 * i + 1, Some(&filter)), b)
        } else {
            let a = timed(2 * i, Some(&filter));
            (a, timed(2 * i + 1, None))
        };
        for (v, (x, y)) in [(&mut wall, (a.0, b.0)), (&mut used, (a.1, b.1))] {
            v[0].push(y);
            v[1].push(x);
            v[2].push(x - y);
        }
    }
    let quartiles = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let q = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
        format!("{:+.3} [IQR {:+.3} to {:+.3}]", q(0.5), q(0.25), q(0.75))
    };
    for (what, v) in [("wall", &mut wall), ("CPU", &mut used)] {
        let [off, on, diff] = v;
        println!(
            "seccomp/paired {what} ms ({pairs} pairs): no filter {}; Docker's profile {}; \
             difference per pair {}",
            quartiles(off),
            quartiles(on),
            quartiles(diff)
        );
    }
}

criterion_group!(benches, seccomp, paired);
criterion_main!(benches);
