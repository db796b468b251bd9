//! One empty `RUN` step, end to end: the sandbox process up (namespaces,
//! overlay, /proc, /dev, /sys, pivot_root), `/bin/sh -c true`, down, then
//! the diff read (unchanged copy-ups pruned) and written as a layer.
//! Goal (the RUN issue): a median at or under 15 ms. Figures in
//! `benches/README.md`. Needs root (as CI); busybox-static for `/bin/sh`.

use std::path::{Path, PathBuf};

use criterion::{Criterion, criterion_group, criterion_main};
use hoist_engine::layer::{LayerOptions, TreeMode, write_tree};
use hoist_engine::ops::run::{RunRequest, Snapshotters, run};

fn lower(dir: &Path) -> PathBuf {
    let root = dir.join("lower");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
    std::os::unix::fs::symlink("busybox", root.join("bin/sh")).unwrap();
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").unwrap();
    root
}

fn empty_run(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let lower = lower(dir.path());
    let mut n = 0;
    let snapshotters = Snapshotters::new();
    let mut group = c.benchmark_group("run");
    group.sample_size(if cfg!(debug_assertions) { 10 } else { 50 });
    group.bench_function("empty RUN step (sandbox up, sh -c true, down, diff)", |b| {
        b.iter(|| {
            n += 1;
            let upper = dir.path().join(format!("upper-{n}"));
            std::fs::create_dir(&upper).unwrap();
            let req = RunRequest {
                sandbox_exe: PathBuf::from(env!("CARGO_BIN_EXE_hoist")),
                lower: vec![lower.clone()],
                upper: upper.clone(),
                scratch_parent: dir.path().to_path_buf(),
                args: vec!["/bin/sh".into(), "-c".into(), "true".into()],
                env: vec!["PATH=/bin".into()],
                cwd: "/".into(),
                user: String::new(),
                network: hoist_engine::executor::RunNetwork::Host,
                mounts: Vec::new(),
                limits: Default::default(),
                isolation: None,
                security: Default::default(),
                hostname: None,
                extra_hosts: Vec::new(),
                cancel: Default::default(),
                probe: Default::default(),
            };
            let out = run(&req, &snapshotters, &mut |_| {}).unwrap();
            assert_eq!(out.code, 0);
            let opts = LayerOptions {
                mode: TreeMode::OverlayUpper,
                ..LayerOptions::default()
            };
            write_tree(&upper, &opts, std::io::sink()).unwrap();
            std::fs::remove_dir_all(&upper).unwrap();
        })
    });
    group.finish();
}

criterion_group!(benches, empty_run);
criterion_main!(benches);
