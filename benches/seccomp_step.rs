//! The cost of Docker's seccomp profile on a `RUN` step (security issue,
//! item 4; goal ≤ +1 ms): the same empty step (`/bin/sh -c true` over a
//! busybox overlay: sandbox process up, namespaces, mounts, pivot_root,
//! exec, down) with the filter loaded and without it, measured in the same
//! run, through the sandbox itself so that nothing else differs
//! (`Plan::seccomp`). Also the once-per-build compile of the profile.
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

criterion_group!(benches, seccomp);
criterion_main!(benches);
