//! GC marks from refs (through indexes, manifests, configs) and cache
//! records and sweeps the rest; `all` prunes refs and cache first.
//! Also snapshots, cache records, leases and disk usage.

mod store_common;

use std::fs;
use std::sync::mpsc;
use std::time::Duration;

use hoist_engine::digest::Digest;
use hoist_engine::store::{Damage, GcOptions, Store, StoreError, chain_ids};
use store_common::{Rng, count_entries, index_json, put_image};

/// Commit a snapshot with one file in it.
fn snapshot(store: &Store, chain_id: &Digest, content: &[u8]) {
    let r = store.reserve_snapshot().unwrap();
    fs::create_dir(r.path().join("etc")).unwrap();
    fs::write(r.path().join("etc/file"), content).unwrap();
    let path = r.commit(chain_id).unwrap();
    assert!(path.join("etc/file").is_file());
}

#[test]
fn store_chain_ids_follow_the_oci_rule() {
    let a = Digest::of(b"a");
    let b = Digest::of(b"b");
    let c = Digest::of(b"c");
    let ids = chain_ids(&[a.clone(), b.clone(), c.clone()]);
    assert_eq!(ids[0], a);
    assert_eq!(ids[1], Digest::of(format!("{a} {b}").as_bytes()));
    assert_eq!(ids[2], Digest::of(format!("{} {c}", ids[1]).as_bytes()));
    assert!(chain_ids(&[]).is_empty());
}

#[test]
fn store_gc_keeps_reachable_and_removes_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut rng = Rng::new(20);
    let tagged = put_image(&store, &mut rng, 2, 2000);
    let in_index = put_image(&store, &mut rng, 1, 2000);
    let orphan = put_image(&store, &mut rng, 2, 3000);
    let idx = store
        .put_blob_bytes(&index_json(&[
            (in_index.manifest.clone(), in_index.manifest_size, "arm64"),
            (Digest::of(b"platform not pulled"), 10, "s390x"),
        ]))
        .unwrap();
    store.set_ref("tagged:1", &tagged.manifest, None).unwrap();
    store.set_ref("multi:1", &idx.digest, None).unwrap();
    let loose = store.put_blob_bytes(b"loose blob").unwrap();

    // Snapshots: the full chain of a kept image, a chain of the orphan.
    let kept_chains = chain_ids(&tagged.diff_ids);
    for id in &kept_chains {
        snapshot(&store, id, b"kept");
    }
    let orphan_chain = chain_ids(&orphan.diff_ids);
    snapshot(&store, &orphan_chain[1], b"orphan");
    let index_chain = chain_ids(&in_index.diff_ids);
    snapshot(&store, &index_chain[0], b"from the index");
    // Leftovers of a killed process.
    fs::write(dir.path().join("tmp/blob-999-dead-0"), b"half a blob").unwrap();
    fs::create_dir_all(dir.path().join("tmp/snap-999-dead-1/usr")).unwrap();

    let du = store.disk_usage().unwrap();
    assert_eq!(du.blobs.count, 4 + 3 + 4 + 1 + 1);
    assert_eq!(du.snapshots.count, 4);
    assert_eq!(du.temp.count, 2);
    let orphan_bytes: u64 = orphan
        .all_blobs()
        .iter()
        .map(|d| store.blob_size(d).unwrap().unwrap())
        .sum();
    assert_eq!(du.reclaimable, orphan_bytes + 10 + 6 + 11, "{du:?}");
    assert_eq!(du.images.len(), 2);

    let report = store.gc(GcOptions::default()).unwrap();
    assert_eq!(report.removed_blobs, 5, "{report:?}");
    assert_eq!(report.removed_blob_bytes, orphan_bytes + 10);
    assert_eq!(report.removed_snapshots, 1);
    assert_eq!(report.removed_snapshot_bytes, 6);
    assert_eq!(report.removed_temp_files, 2);
    assert!(report.removed_refs.is_empty());
    assert_eq!(count_entries(&dir.path().join("tmp")), 0);

    for d in tagged
        .all_blobs()
        .iter()
        .chain(&in_index.all_blobs())
        .chain([&idx.digest])
    {
        assert!(store.has_blob(d).unwrap(), "lost reachable {d}");
    }
    for d in orphan.all_blobs().iter().chain([&loose.digest]) {
        assert!(!store.has_blob(d).unwrap(), "kept unreachable {d}");
    }
    for id in &kept_chains {
        assert!(store.snapshot(id).unwrap().is_some());
    }
    assert!(store.snapshot(&index_chain[0]).unwrap().is_some());
    assert!(store.snapshot(&orphan_chain[1]).unwrap().is_none());
    assert!(store.check().unwrap().is_clean());
    // A second GC finds nothing.
    assert_eq!(store.gc(GcOptions::default()).unwrap().reclaimed_bytes(), 0);
}

#[test]
fn store_gc_keeps_what_cache_records_name_unless_all() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut rng = Rng::new(21);
    let cached = put_image(&store, &mut rng, 1, 500);
    let cached_snapshot = Digest::of(b"some build step");
    snapshot(&store, &cached_snapshot, b"step output");
    let record = serde_json::json!({
        "snapshot": cached_snapshot,
        "outputs": [{"layer": cached.layers[0]}],
        "image": cached.manifest,
    });
    store
        .put_cache_record("op:RUN make", &serde_json::to_vec(&record).unwrap())
        .unwrap();
    store
        .put_cache_record("opaque", b"not json at all")
        .unwrap();
    let img = put_image(&store, &mut rng, 1, 500);
    store.set_ref("kept:1", &img.manifest, None).unwrap();

    let report = store.gc(GcOptions::default()).unwrap();
    assert_eq!(report.removed_blobs, 0, "{report:?}");
    assert_eq!(report.removed_snapshots, 0);
    assert_eq!(report.removed_cache_records, 0);
    assert!(store.snapshot(&cached_snapshot).unwrap().is_some());
    for d in cached.all_blobs() {
        assert!(store.has_blob(&d).unwrap());
    }
    assert_eq!(
        store.get_cache_record("opaque").unwrap().as_deref(),
        Some(&b"not json at all"[..])
    );

    let report = store.gc(GcOptions { all: true }).unwrap();
    assert_eq!(report.removed_refs, ["kept:1"]);
    assert_eq!(report.removed_cache_records, 2);
    assert_eq!(report.removed_blobs, 6);
    assert_eq!(report.removed_snapshots, 1);
    assert!(store.list_images().unwrap().is_empty());
    assert_eq!(store.get_cache_record("op:RUN make").unwrap(), None);
    assert_eq!(count_entries(&dir.path().join("blobs/sha256")), 0);
    assert_eq!(count_entries(&dir.path().join("snapshots")), 0);
    assert_eq!(count_entries(&dir.path().join("cache")), 0);
    assert!(store.check().unwrap().is_clean());
}

#[test]
fn store_cache_records_roundtrip() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.get_cache_record("k").unwrap(), None);
    store.put_cache_record("k", b"{\"v\":1}").unwrap();
    store.put_cache_record("k", b"{\"v\":2}").unwrap();
    store
        .put_cache_record("sha256:whatever/../x", b"{}")
        .unwrap();
    assert_eq!(
        store.get_cache_record("k").unwrap().as_deref(),
        Some(&b"{\"v\":2}"[..])
    );
    assert_eq!(count_entries(&dir.path().join("cache")), 2);
    assert!(store.remove_cache_record("k").unwrap());
    assert!(!store.remove_cache_record("k").unwrap());
    assert_eq!(count_entries(&dir.path().join("tmp")), 0);
}

#[test]
fn store_snapshots_commit_lookup_remove() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let id = Digest::of(b"chain");
    assert_eq!(store.snapshot(&id).unwrap(), None);

    // Dropped uncommitted: nothing stays, even read-only directories.
    let r = store.reserve_snapshot().unwrap();
    let ro = r.path().join("ro");
    fs::create_dir(&ro).unwrap();
    fs::write(ro.join("f"), b"x").unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&ro, fs::Permissions::from_mode(0o555)).unwrap();
    drop(r);
    assert_eq!(count_entries(&dir.path().join("tmp")), 0);

    snapshot(&store, &id, b"first");
    // A second commit of the same chain id keeps the first one.
    let r = store.reserve_snapshot().unwrap();
    fs::write(r.path().join("other"), b"second").unwrap();
    let path = r.commit(&id).unwrap();
    assert_eq!(fs::read(path.join("etc/file")).unwrap(), b"first");
    assert!(!path.join("other").exists());
    assert_eq!(count_entries(&dir.path().join("tmp")), 0);
    assert_eq!(store.list_snapshots().unwrap(), std::slice::from_ref(&id));

    assert!(store.remove_snapshot(&id).unwrap());
    assert!(!store.remove_snapshot(&id).unwrap());
    assert_eq!(store.snapshot(&id).unwrap(), None);
    assert_eq!(count_entries(&dir.path().join("tmp")), 0);
}

#[test]
fn store_gc_waits_for_leases_and_refuses_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let lease = store.lease().unwrap();
    // Content written under a lease, not yet tagged.
    let mut rng = Rng::new(22);
    let img = put_image(&store, &mut rng, 1, 100);
    assert!(matches!(
        store.gc(GcOptions::default()),
        Err(StoreError::LeaseHeld { count: 1, .. })
    ));

    // Another handle (as another process would) waits for the lease.
    let other = Store::open(dir.path()).unwrap();
    let (tx, rx) = mpsc::channel();
    let gc = std::thread::spawn(move || {
        let report = other.gc(GcOptions::default());
        tx.send(()).unwrap();
        report
    });
    assert!(
        rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "gc ran under a lease"
    );
    store.set_ref("built:1", &img.manifest, None).unwrap();
    drop(lease);
    let report = gc.join().unwrap().unwrap();
    assert_eq!(report.removed_blobs, 0, "{report:?}");
    assert!(store.resolve("built:1").is_ok());
}

#[test]
fn store_gc_refuses_to_sweep_past_a_damaged_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let img = put_image(&store, &mut Rng::new(23), 2, 100);
    store.set_ref("x:1", &img.manifest, None).unwrap();
    let path = store.blob_path(&img.manifest);
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] = b' ';
    fs::write(&path, bytes).unwrap();

    let err = store.gc(GcOptions::default()).unwrap_err();
    assert!(
        matches!(&err, StoreError::Damaged { digest, .. } if *digest == img.manifest),
        "{err}"
    );
    for d in img.all_blobs() {
        assert!(store.has_blob(&d).unwrap());
    }
    let report = store.check().unwrap();
    assert!(
        report
            .damage
            .iter()
            .any(|d| matches!(d, Damage::CorruptBlob { digest, .. } if *digest == img.manifest)),
        "{report:?}"
    );
}

#[test]
fn store_check_reports_missing_blobs_and_dangling_refs() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut rng = Rng::new(24);
    let a = put_image(&store, &mut rng, 2, 100);
    let b = put_image(&store, &mut rng, 1, 100);
    store.set_ref("a:1", &a.manifest, None).unwrap();
    store.set_ref("b:1", &b.manifest, None).unwrap();
    fs::remove_file(store.blob_path(&a.layers[1])).unwrap();
    fs::remove_file(store.blob_path(&b.manifest)).unwrap();
    let report = store.check().unwrap();
    assert_eq!(report.refs_checked, 2);
    assert_eq!(report.damage.len(), 2, "{report:?}");
    assert!(report.damage.contains(&Damage::MissingBlob {
        digest: a.layers[1].clone(),
        needed_by: a.manifest.clone()
    }));
    assert!(report.damage.contains(&Damage::DanglingRef {
        name: "b:1".into(),
        digest: b.manifest.clone()
    }));
    let text = report.damage[0].to_string();
    assert!(text.contains("sha256:"), "{text}");
}
