//! Crash safety: a child process (this test binary, re-executed) writes
//! blobs, refs, snapshots and cache records and runs GC in a loop; it is
//! killed with SIGKILL at random points, and after every kill the store
//! must open without repair, `check` clean, with every ref naming a
//! complete, readable image.

mod store_common;

use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use hoist_engine::store::{GcOptions, Store, StoreError, chain_ids};
use serde_json::Value;
use store_common::{Rng, config_json, count_entries, manifest_json};

const CHILD_ENV: &str = "HOIST_STORE_CRASH_ROOT";
const TEST_NAME: &str = "store_crash_safety_under_sigkill";

/// The child's endless loop: everything a build or pull does to a store.
fn child(root: &Path) {
    let store = Store::open(root).unwrap();
    let mut rng = Rng::from_time();
    let mut out = std::io::stdout();
    for i in 0u64.. {
        let lease = store.lease().unwrap();
        let mut layers = Vec::new();
        let mut diff_ids = Vec::new();
        for _ in 0..2 {
            let len = 4096 + rng.below(96 * 1024) as usize;
            let bytes = rng.bytes(len);
            let mut w = store.blob_writer().unwrap();
            for chunk in bytes.chunks(4096) {
                w.write_all(chunk).unwrap();
            }
            let info = w.commit(None, Some(bytes.len() as u64)).unwrap();
            diff_ids.push(hoist_engine::digest::Digest::of(
                &info.digest.to_string().into_bytes(),
            ));
            layers.push((info.digest, info.size));
        }
        let config = store
            .put_blob_bytes(&config_json(&diff_ids, "2024-01-01T00:00:00Z"))
            .unwrap();
        let manifest = store
            .put_blob_bytes(&manifest_json((&config.digest, config.size), &layers))
            .unwrap();
        store
            .set_ref(&format!("crash/img:{}", i % 5), &manifest.digest, None)
            .unwrap();
        if i % 3 == 0 {
            let r = store.reserve_snapshot().unwrap();
            for f in 0..20 {
                std::fs::write(r.path().join(format!("f{f}")), rng.bytes(2048)).unwrap();
            }
            let chain = chain_ids(&diff_ids);
            r.commit(chain.last().unwrap()).unwrap();
        }
        if i % 4 == 1 {
            let record = serde_json::json!({"layer": layers[0].0, "i": i});
            store
                .put_cache_record(&format!("key-{}", i % 3), record.to_string().as_bytes())
                .unwrap();
        }
        if i % 6 == 5 {
            match store.untag(&format!("crash/img:{}", (i + 2) % 5)) {
                Ok(_) | Err(StoreError::RefNotFound(_)) => {}
                Err(e) => panic!("{e}"),
            }
        }
        drop(lease);
        if i % 5 == 4 {
            store.gc(GcOptions::default()).unwrap();
        }
        writeln!(out, "progress {i}").unwrap();
        out.flush().unwrap();
    }
}

/// Every ref names a manifest whose config and layers read back verified.
fn assert_refs_complete(store: &Store) -> usize {
    let images = store.list_images().unwrap();
    for image in &images {
        let manifest: Value =
            serde_json::from_slice(&store.read_blob_verified(&image.digest).unwrap()).unwrap();
        let config = manifest["config"]["digest"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        store.read_blob_verified(&config).unwrap();
        let layers = manifest["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 2, "{}", image.name);
        for layer in layers {
            let digest = layer["digest"].as_str().unwrap().parse().unwrap();
            let mut n = 0;
            let mut reader = store.open_blob(&digest).unwrap();
            let mut buf = [0; 8192];
            loop {
                let got = reader.read(&mut buf).unwrap();
                if got == 0 {
                    break;
                }
                n += got as u64;
            }
            assert_eq!(n, layer["size"].as_u64().unwrap());
        }
    }
    images.len()
}

#[test]
fn store_crash_safety_under_sigkill() {
    if let Some(root) = std::env::var_os(CHILD_ENV) {
        child(Path::new(&root));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let exe = std::env::current_exe().unwrap();
    let seed = Rng::from_time().next();
    eprintln!("seed {seed}");
    let mut rng = Rng::new(seed);
    let mut progress = 0;
    let mut saw_refs = 0;
    for round in 0..12 {
        let mut child = Command::new(&exe)
            .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, &root)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(30 + rng.below(500)));
        child.kill().unwrap();
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.signal(),
            Some(9),
            "round {round}: the child ended on its own: {}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let done = stdout.matches("progress ").count();
        progress += done;
        let left = count_entries(&root.join("tmp"));

        let store = Store::open(&root).unwrap();
        let report = store.check().unwrap();
        assert!(report.is_clean(), "round {round}: {:#?}", report.damage);
        let refs = assert_refs_complete(&store);
        saw_refs += refs;
        eprintln!("round {round}: {done} iterations, {left} temp entries left, {refs} refs");
    }
    assert!(progress >= 3, "the child barely ran: {progress} iterations");
    assert!(saw_refs > 0, "no ref ever written");

    // Whatever the kills left in tmp/ goes with the next GC.
    let store = Store::open(&root).unwrap();
    let before = store.list_images().unwrap();
    store.gc(GcOptions::default()).unwrap();
    assert_eq!(count_entries(&root.join("tmp")), 0);
    assert!(store.check().unwrap().is_clean());
    assert_eq!(store.list_images().unwrap(), before);
    assert_refs_complete(&store);
}
