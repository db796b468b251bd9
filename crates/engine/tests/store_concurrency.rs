//! Concurrency: writers in 4 threads, and in 4 processes, share one store
//! (same blobs written at once, refs updated at once, one shared name
//! raced) while GC runs beside them; nothing is lost or damaged.

mod store_common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use hoist_engine::digest::Digest;
use hoist_engine::store::{GcOptions, Store};
use store_common::{Rng, count_entries, put_image_with_layers};

const WRITERS: usize = 4;
const IMAGES: usize = 6;
const CHILD_ROOT: &str = "HOIST_STORE_CONC_ROOT";
const CHILD_ID: &str = "HOIST_STORE_CONC_ID";

/// One writer: `IMAGES` images sharing a base layer with every other
/// writer, each tagged under its own name and under `shared:latest`.
/// Returns (name, manifest digest) pairs.
fn write_images(store: &Store, id: usize) -> Vec<(String, Digest)> {
    let base = Rng::new(999).bytes(64 * 1024);
    let mut rng = Rng::new(id as u64 + 1);
    let mut tagged = Vec::new();
    for k in 0..IMAGES {
        let lease = store.lease().unwrap();
        let img = put_image_with_layers(
            store,
            &[base.clone(), rng.bytes(8 * 1024)],
            "2024-06-01T00:00:00Z",
        );
        let name = format!("w{id}/img:{k}");
        store.set_ref(&name, &img.manifest, None).unwrap();
        store.set_ref("shared:latest", &img.manifest, None).unwrap();
        drop(lease);
        tagged.push((name, img.manifest));
        std::thread::sleep(Duration::from_millis(2));
    }
    tagged
}

/// GC in a loop until `stop`; how many times it ran.
fn gc_loop(store: Store, stop: Arc<AtomicBool>) -> usize {
    let mut runs = 0;
    while !stop.load(Ordering::SeqCst) {
        store.gc(GcOptions::default()).unwrap();
        runs += 1;
        std::thread::sleep(Duration::from_millis(5));
    }
    runs
}

fn assert_store_holds(root: &Path, tagged: &[(String, Digest)]) {
    let store = Store::open(root).unwrap();
    let report = store.check().unwrap();
    assert!(report.is_clean(), "{:#?}", report.damage);
    let images = store.list_images().unwrap();
    assert_eq!(images.len(), WRITERS * IMAGES + 1);
    for (name, digest) in tagged {
        assert_eq!(&store.resolve(name).unwrap().digest, digest, "{name}");
    }
    let latest = store.resolve("shared:latest").unwrap().digest;
    assert!(tagged.iter().any(|(_, d)| *d == latest));
    // Everything reachable is kept, nothing else: one shared layer, and per
    // image a unique layer, a config and a manifest.
    store.gc(GcOptions::default()).unwrap();
    assert_eq!(
        count_entries(&root.join("blobs/sha256")),
        1 + 3 * WRITERS * IMAGES
    );
    assert_eq!(count_entries(&root.join("tmp")), 0);
    assert!(store.check().unwrap().is_clean());
}

#[test]
fn store_concurrent_threads_write_and_tag_beside_gc() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    Store::open(&root).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let gc = {
        let (store, stop) = (Store::open(&root).unwrap(), stop.clone());
        std::thread::spawn(move || gc_loop(store, stop))
    };
    let started = Arc::new(AtomicUsize::new(0));
    let writers: Vec<_> = (0..WRITERS)
        .map(|id| {
            // Each writer has its own handle, as separate processes would.
            let store = Store::open(&root).unwrap();
            let started = started.clone();
            std::thread::spawn(move || {
                started.fetch_add(1, Ordering::SeqCst);
                write_images(&store, id)
            })
        })
        .collect();
    let tagged: Vec<_> = writers
        .into_iter()
        .flat_map(|w| w.join().unwrap())
        .collect();
    stop.store(true, Ordering::SeqCst);
    let runs = gc.join().unwrap();
    assert_eq!(started.load(Ordering::SeqCst), WRITERS);
    assert!(runs >= 1, "gc never ran");
    assert_store_holds(&root, &tagged);
}

#[test]
fn store_concurrent_processes_write_and_tag_beside_gc() {
    if let (Some(root), Some(id)) = (std::env::var_os(CHILD_ROOT), std::env::var_os(CHILD_ID)) {
        let store = Store::open(Path::new(&root)).unwrap();
        let id: usize = id.to_str().unwrap().parse().unwrap();
        for (name, digest) in write_images(&store, id) {
            println!("tagged {name} {digest}");
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let store = Store::open(&root).unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..WRITERS)
        .map(|id| {
            Command::new(&exe)
                .args([
                    "store_concurrent_processes_write_and_tag_beside_gc",
                    "--exact",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD_ROOT, &root)
                .env(CHILD_ID, id.to_string())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let gc = {
        let stop = stop.clone();
        std::thread::spawn(move || gc_loop(store, stop))
    };
    let mut tagged = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // libtest's "test … ..." has no newline, so look inside lines.
        for line in stdout.lines() {
            if let Some((_, rest)) = line.split_once("tagged ") {
                let (name, digest) = rest.split_once(' ').unwrap();
                tagged.push((name.to_string(), digest.parse().unwrap()));
            }
        }
    }
    stop.store(true, Ordering::SeqCst);
    assert!(gc.join().unwrap() >= 1, "gc never ran");
    assert_eq!(tagged.len(), WRITERS * IMAGES);
    assert_store_holds(&root, &tagged);
}
