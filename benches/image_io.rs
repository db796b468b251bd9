//! Image I/O against the tools users have today, in one run:
//! - writing a layer (one file of random bytes, as the lab's
//!   `scratch-copy-big`) with gzip and zstd, against the compressor alone
//!   on the same bytes (goal: hoist ≥ 85% of the compressor's speed);
//! - `hoist push` and `hoist pull` of that image through a fresh local
//!   `docker-registry`, against `skopeo copy` of the same image (goal:
//!   ≤ 0.5× skopeo's time), with peak RSS (goal: ≤ 64 MiB at any size).
//!
//! `cargo bench --bench image_io` (1 GiB, 3 runs; `HOIST_BENCH_MB=N` and
//! `HOIST_BENCH_RUNS=N` change that, `HOIST_BENCH_PHASES=layer|registry` picks); `cargo test --benches` (or `-- --test`) runs a 4 MiB smoke pass.
//! Needs `docker-registry`, `skopeo` and `/usr/bin/time` (package `time`).

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use hoist_engine::export::archive::{ArchiveOptions, ExportImage, write_layout_dir};
use hoist_engine::image::{Descriptor, Manifest, Raw, media_types};
use hoist_engine::layer::{Compression, LayerOptions, write_tree};
use hoist_engine::store::Store;
use hoist_engine::testing::Registry;

const NAME: &str = "docker.io/library/big:1";

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` and `-- --test` do not.
    let test_mode =
        !std::env::args().any(|a| a == "--bench") || std::env::args().any(|a| a == "--test");
    let env_num = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let mb = if test_mode {
        4
    } else {
        env_num("HOIST_BENCH_MB", 1024)
    };
    let runs = if test_mode {
        1
    } else {
        env_num("HOIST_BENCH_RUNS", 3) as usize
    };
    let work = tempfile::tempdir().expect("temp dir");
    let tree = work.path().join("tree");
    std::fs::create_dir_all(&tree).expect("tree dir");
    write_random(&tree.join("big.bin"), mb << 20);
    println!("# image_io: {mb} MiB of random bytes, {runs} run(s) per cell, medians\n");
    let phases = std::env::var("HOIST_BENCH_PHASES").unwrap_or_else(|_| "layer,registry".into());
    if phases.contains("layer") {
        layer_phase(&tree, runs);
    }
    if phases.contains("registry") {
        registry_phase(&tree, work.path(), runs);
    }
}

fn layer_phase(tree: &Path, runs: usize) {
    println!(
        "| layer write | hoist (s) | compressor alone (s) | hoist speed / compressor speed | hoist peak RSS (MiB) |"
    );
    println!("|---|---|---|---|---|");
    for compression in [Compression::Gzip, Compression::Zstd] {
        let opts = LayerOptions {
            compression,
            ..LayerOptions::default()
        };
        let (hoist_s, rss) = median_with_rss(runs, || {
            write_tree(tree, &opts, io::sink()).expect("write layer");
        });
        let (alone_s, _) =
            median_with_rss(runs, || compress_alone(&tree.join("big.bin"), compression));
        println!(
            "| {compression:?} | {hoist_s:.2} | {alone_s:.2} | {:.2} | {rss} |",
            alone_s / hoist_s
        );
    }
}

fn registry_phase(tree: &Path, work: &Path, runs: usize) {
    let store_dir = work.join("store");
    let layout = work.join("layout");
    make_image(tree, &store_dir, &layout);
    let hoist = PathBuf::from(env!("CARGO_BIN_EXE_hoist"));
    println!(
        "\n| registry | hoist (s) | hoist RSS (MiB) | skopeo copy (s) | skopeo RSS (MiB) | hoist / skopeo time |"
    );
    println!("|---|---|---|---|---|---|");
    let mut push_h = Vec::new();
    let mut push_s = Vec::new();
    for _ in 0..runs {
        let reg = Registry::start(Some(work))
            .expect("docker-registry (Debian package docker-registry) runs");
        push_h.push(timed(
            Command::new(&hoist).arg("--root").arg(&store_dir).args([
                "push",
                "-q",
                NAME,
                &format!("{}/h/big:1", reg.addr()),
            ]),
        ));
        drop(reg);
        let reg = Registry::start(Some(work))
            .expect("docker-registry (Debian package docker-registry) runs");
        push_s.push(timed(Command::new("skopeo").args([
            "copy",
            "-q",
            "--dest-tls-verify=false",
            &format!("oci:{}:1", layout.display()),
            &format!("docker://{}/s/big:1", reg.addr()),
        ])));
    }
    row("push", &push_h, &push_s);
    let reg =
        Registry::start(Some(work)).expect("docker-registry (Debian package docker-registry) runs");
    let remote = format!("{}/h/big:1", reg.addr());
    timed(
        Command::new(&hoist)
            .arg("--root")
            .arg(&store_dir)
            .args(["push", "-q", NAME, &remote]),
    );
    let mut pull_h = Vec::new();
    let mut pull_s = Vec::new();
    for i in 0..runs {
        let fresh = work.join(format!("pull-store-{i}"));
        pull_h.push(timed(
            Command::new(&hoist)
                .arg("--root")
                .arg(&fresh)
                .args(["pull", "-q", &remote]),
        ));
        let out = work.join(format!("pull-oci-{i}"));
        pull_s.push(timed(Command::new("skopeo").args([
            "copy",
            "-q",
            "--src-tls-verify=false",
            &format!("docker://{remote}"),
            &format!("oci:{}:x", out.display()),
        ])));
        let _ = std::fs::remove_dir_all(&fresh);
        let _ = std::fs::remove_dir_all(&out);
    }
    row("pull", &pull_h, &pull_s);
}

fn row(what: &str, hoist: &[(f64, u64)], skopeo: &[(f64, u64)]) {
    let (ht, hr) = median_pair(hoist);
    let (st, sr) = median_pair(skopeo);
    println!(
        "| {what} | {ht:.2} | {hr} | {st:.2} | {sr} | {:.2} |",
        ht / st
    );
}

fn median_pair(v: &[(f64, u64)]) -> (f64, u64) {
    let mut t: Vec<f64> = v.iter().map(|x| x.0).collect();
    let mut r: Vec<u64> = v.iter().map(|x| x.1).collect();
    t.sort_by(f64::total_cmp);
    r.sort();
    (t[t.len() / 2], r[r.len() / 2])
}

/// Run `cmd` under `/usr/bin/time`: wall seconds and peak RSS in MiB.
fn timed(cmd: &mut Command) -> (f64, u64) {
    let tf = tempfile::NamedTempFile::new().expect("time file");
    let program = cmd.get_program().to_owned();
    let args: Vec<_> = cmd.get_args().map(|a| a.to_owned()).collect();
    let status = Command::new("/usr/bin/time")
        .args(["-f", "%e %M", "-o"])
        .arg(tf.path())
        .arg(&program)
        .args(&args)
        .stdout(Stdio::null())
        .status()
        .expect("/usr/bin/time (Debian package time) runs");
    assert!(status.success(), "{program:?} {args:?} failed");
    let text = std::fs::read_to_string(tf.path()).expect("time output");
    let mut it = text.split_whitespace();
    let secs: f64 = it.next().and_then(|s| s.parse().ok()).expect("seconds");
    let kb: u64 = it.next().and_then(|s| s.parse().ok()).expect("max rss");
    (secs, kb / 1024)
}

/// Median seconds of `runs` calls, and this process's peak RSS (MiB)
/// during them (VmHWM reset through /proc/self/clear_refs first).
fn median_with_rss(runs: usize, mut f: impl FnMut()) -> (f64, u64) {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let mut times = Vec::new();
    for _ in 0..runs {
        let t = Instant::now();
        f();
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0);
    (times[times.len() / 2], hwm / 1024)
}

fn compress_alone(path: &Path, compression: Compression) {
    let mut file = io::BufReader::with_capacity(1 << 20, std::fs::File::open(path).expect("open"));
    let mut buf = vec![0u8; 1 << 20];
    match compression {
        Compression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(io::sink(), flate2::Compression::new(6));
            pump(&mut file, &mut enc, &mut buf);
            enc.finish().expect("gzip");
        }
        Compression::Zstd => {
            let mut enc = zstd::Encoder::new(io::sink(), 3).expect("zstd");
            pump(&mut file, &mut enc, &mut buf);
            enc.finish().expect("zstd");
        }
        Compression::None => {}
    }
}

fn pump(r: &mut impl Read, w: &mut impl Write, buf: &mut [u8]) {
    loop {
        let n = r.read(buf).expect("read");
        if n == 0 {
            break;
        }
        w.write_all(&buf[..n]).expect("compress");
    }
}

/// `len` pseudo-random (incompressible) bytes, written in 1 MiB chunks.
fn write_random(path: &Path, len: u64) {
    let mut f = io::BufWriter::new(std::fs::File::create(path).expect("create"));
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut chunk = vec![0u8; 1 << 20];
    let mut left = len;
    while left > 0 {
        for word in chunk.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        let n = left.min(chunk.len() as u64) as usize;
        f.write_all(&chunk[..n]).expect("write");
        left -= n as u64;
    }
    f.flush().expect("flush");
}

/// The tree as a one-layer gzip image in a store (and as an OCI layout for skopeo).
fn make_image(tree: &Path, store_dir: &Path, layout: &Path) {
    let store = Store::open(store_dir).expect("store");
    let opts = LayerOptions {
        compression: Compression::Gzip,
        ..LayerOptions::default()
    };
    let mut writer = store.blob_writer().expect("blob writer");
    let blob = write_tree(tree, &opts, &mut writer).expect("layer");
    writer
        .commit(Some(&blob.digest), Some(blob.size))
        .expect("commit layer");
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [blob.diff_id.to_string()]},
    });
    let config = store
        .put_blob_bytes(&serde_json::to_vec(&config).expect("json"))
        .expect("config");
    let manifest = Manifest::new(
        media_types::OCI_MANIFEST,
        Descriptor::new(media_types::OCI_CONFIG, config.digest, config.size),
        vec![Descriptor::new(
            media_types::OCI_LAYER_GZIP,
            blob.digest,
            blob.size,
        )],
    );
    let raw = Raw::from_value(manifest).expect("manifest");
    store.put_blob_bytes(raw.bytes()).expect("manifest blob");
    store
        .set_ref(NAME, raw.digest(), Some(media_types::OCI_MANIFEST))
        .expect("ref");
    let img = ExportImage {
        manifest: raw,
        names: vec![NAME.into()],
        descriptor_annotations: Default::default(),
    };
    write_layout_dir(&store, &[img], ArchiveOptions::default(), layout).expect("layout");
}
