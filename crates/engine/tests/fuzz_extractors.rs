//! A time-boxed fuzzer for every extractor (issue 11: "a fuzz target per
//! extractor ... with 0 crashes and 0 escapes"), on stable Rust: random
//! hostile tars (names with `..`, absolute names, whiteouts; directories
//! with setuid modes; symlinks to a canary tree beside the root, by
//! absolute and relative targets; hardlinks, fifos; entries replaced by
//! later ones) go through the context-on-stdin extractor, the layer
//! unpacker (both formats), `ADD`'s archive extraction (to a directory and
//! to a layer) and `hoist load`. After each, the canary must be unchanged;
//! errors are fine, panics are not.
//!
//! `HOIST_FUZZ_SECS` (default 2) is the budget per extractor;
//! `HOIST_FUZZ_SEED` replays a run (the seed is printed on failure).

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hoist_engine::context::Context;
use hoist_engine::digest::Digest;
use hoist_engine::layer::{Privileges, UnpackOptions, unpack};
use hoist_engine::ops::file::{CopyPlan, SourceSpec, apply_to_dir};
use hoist_engine::store::Store;

/// xorshift64*: no dependency, reproducible from the seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

fn budget() -> Duration {
    let secs = std::env::var("HOIST_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    Duration::from_secs_f64(secs)
}

fn seed() -> u64 {
    std::env::var("HOIST_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        })
}

/// The canary beside every root: `work/canary`, the root is `work/root`.
fn make_canary(work: &Path) -> PathBuf {
    let c = work.join("canary");
    std::fs::create_dir_all(c.join("dir/sub")).unwrap();
    std::fs::write(c.join("tool"), b"host tool").unwrap();
    std::fs::write(c.join("dir/file"), b"host file").unwrap();
    c
}

type Seen = BTreeMap<PathBuf, (u32, u32, u32, i64, i64, u64, Vec<u8>)>;

fn look(root: &Path) -> Seen {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let m = std::fs::symlink_metadata(&p).unwrap();
        let data = if m.is_file() {
            std::fs::read(&p).unwrap()
        } else {
            Vec::new()
        };
        if m.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
        }
        let nlink = if m.is_dir() { 0 } else { m.nlink() };
        out.insert(
            p,
            (
                m.mode(),
                m.uid(),
                m.gid(),
                m.mtime(),
                m.mtime_nsec(),
                nlink,
                data,
            ),
        );
    }
    out
}

/// A random hostile tar aimed at `canary` (absolute) and `../canary`.
fn hostile(rng: &mut Rng, canary: &Path) -> Vec<u8> {
    let c = canary.to_string_lossy().into_owned();
    // Mostly a few plain names, so that later entries meet earlier ones;
    // now and then one an extractor must refuse or treat specially.
    let plain = ["a", "b", "a/b", "b/a", "a/b/c", "./a"];
    let odd = [
        ".",
        "..",
        "../x",
        "a/../b",
        "/abs",
        "/a/b",
        ".wh.a",
        "a/.wh.b",
        "a/.wh..wh..opq",
    ];
    let targets = [
        format!("{c}/tool"),
        format!("{c}/dir"),
        c.clone(),
        "../canary/tool".to_string(),
        "../canary/dir".to_string(),
        "../../../../../../..".to_string(),
        "/".to_string(),
        "a".to_string(),
        ".".to_string(),
        "a/b".to_string(),
    ];
    let modes = [0o755, 0o4755, 0o2777, 0o777, 0o000, 0o644, 0o6755, 0o1777];
    let mut b = tar::Builder::new(Vec::new());
    for _ in 0..1 + rng.below(12) {
        let name = if rng.below(20) == 0 {
            *rng.pick(&odd)
        } else {
            *rng.pick(&plain)
        };
        let mut h = tar::Header::new_gnu();
        h.set_mtime(rng.below(3) as u64);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mode(*rng.pick(&modes));
        let mut data: &[u8] = &[];
        match rng.below(20) {
            0..=6 => h.set_entry_type(tar::EntryType::Directory),
            7..=9 => {
                h.set_entry_type(tar::EntryType::Regular);
                data = b"planted";
            }
            10..=15 => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_link_name(rng.pick(&targets)).unwrap();
            }
            16..=18 => {
                h.set_entry_type(tar::EntryType::Link);
                let t = if rng.below(2) == 0 {
                    rng.pick(&plain).to_string()
                } else {
                    rng.pick(&targets).clone()
                };
                let raw = h.as_old_mut().linkname.as_mut();
                raw.fill(0);
                let n = t.len().min(raw.len());
                raw[..n].copy_from_slice(&t.as_bytes()[..n]);
            }
            _ => h.set_entry_type(tar::EntryType::Fifo),
        }
        h.set_size(data.len() as u64);
        let raw = h.as_old_mut().name.as_mut();
        raw.fill(0);
        raw[..name.len()].copy_from_slice(name.as_bytes());
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    b.into_inner().unwrap()
}

/// Runs `extract(tar, work)` on random tars until the budget is spent.
fn fuzz(what: &str, extract: impl Fn(&[u8], &Path)) {
    let seed = seed();
    let mut rng = Rng(seed);
    let start = Instant::now();
    let mut runs = 0u64;
    while start.elapsed() < budget() || runs < 20 {
        let work = tempfile::tempdir().unwrap();
        let canary = make_canary(work.path());
        std::fs::create_dir(work.path().join("root")).unwrap();
        let before = look(&canary);
        let tar = hostile(&mut rng, &canary);
        let result =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| extract(&tar, work.path())));
        assert!(
            result.is_ok(),
            "{what}: panicked (HOIST_FUZZ_SEED={seed}, run {runs})"
        );
        assert_eq!(
            before,
            look(&canary),
            "{what}: the canary changed (HOIST_FUZZ_SEED={seed}, run {runs})"
        );
        runs += 1;
    }
    eprintln!("{what}: {runs} hostile tars, 0 escapes (seed {seed})");
}

#[test]
fn fuzz_context_tar() {
    fuzz("context tar", |tar, work| {
        let _ = Context::from_tar(tar, &work.join("root/ctx"), None);
    });
}

#[test]
fn fuzz_layer_unpack() {
    fuzz("layer unpack", |tar, work| {
        for overlay in [false, true] {
            let root = work.join(format!("root/{overlay}"));
            std::fs::create_dir_all(&root).unwrap();
            let mut opts = UnpackOptions::new(Digest::of(tar));
            opts.overlay_format = overlay;
            opts.privileges = Privileges::Auto;
            let _ = unpack(tar, &root, &opts);
        }
    });
}

#[test]
fn fuzz_add_archive() {
    fuzz("ADD archive", |tar, work| {
        let ctx = work.join("ctx");
        std::fs::create_dir_all(&ctx).unwrap();
        std::fs::write(ctx.join("evil.tar"), tar).unwrap();
        let plan = CopyPlan {
            sources: vec![SourceSpec::context(&ctx, "evil.tar")],
            dest: "/x/".to_string(),
            is_add: true,
            ..Default::default()
        };
        let _ = apply_to_dir(&plan, &work.join("root"));
        // The layer path, then the layer unpacked.
        let opts = hoist_engine::layer::LayerOptions {
            compression: hoist_engine::layer::Compression::None,
            ..Default::default()
        };
        let mut w = hoist_engine::layer::LayerWriter::new(Vec::new(), &opts).unwrap();
        if hoist_engine::ops::file::write_layer(&plan, Some(&work.join("root")), &mut w).is_ok()
            && let Ok((blob, bytes)) = w.finish_into_inner()
        {
            let unpacked = work.join("root/unpacked");
            std::fs::create_dir_all(&unpacked).unwrap();
            let _ = unpack(&bytes[..], &unpacked, &UnpackOptions::new(blob.digest));
        }
    });
}

#[test]
fn fuzz_docker_save_archive() {
    fuzz("hoist load", |tar, work| {
        let store = Store::open(work.join("root/store")).unwrap();
        let _ = hoist_engine::import::archive::load_archive(&store, tar);
    });
}
