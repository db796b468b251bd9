//! Refs: set, tag (by name and digest), resolve, list, untag, rmi; a ref
//! is never pointed at an incomplete or non-image blob.

mod store_common;

use hoist_engine::digest::Digest;
use hoist_engine::store::{Store, StoreError};
use store_common::{OCI_INDEX, OCI_MANIFEST, Rng, index_json, put_image, put_image_with_layers};

#[test]
fn store_refs_tag_resolve_list_untag() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut rng = Rng::new(10);
    let a = put_image(&store, &mut rng, 2, 1000);
    let b = put_image_with_layers(&store, &[rng.bytes(500)], "2025-05-05T00:00:00Z");

    assert!(store.list_images().unwrap().is_empty());
    let rec = store.set_ref("example.com/a:1", &a.manifest, None).unwrap();
    assert_eq!(rec.media_type, OCI_MANIFEST);
    assert_eq!(rec.created.as_deref(), Some("2024-01-02T03:04:05Z"));
    let expected_size: u64 = a
        .all_blobs()
        .iter()
        .map(|d| store.blob_size(d).unwrap().unwrap())
        .sum();
    assert_eq!(rec.size, expected_size);
    store
        .set_ref("example.com/b:latest", &b.manifest, None)
        .unwrap();

    // Tag by name and by digest.
    let copy = store.tag("example.com/a:1", "example.com/a:copy").unwrap();
    assert_eq!(copy.digest, a.manifest);
    let by_digest = store
        .tag(&b.manifest.to_string(), "example.com/b:v2")
        .unwrap();
    assert_eq!(by_digest.digest, b.manifest);
    assert_eq!(by_digest.created.as_deref(), Some("2025-05-05T00:00:00Z"));

    let names: Vec<String> = store
        .list_images()
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(
        names,
        [
            "example.com/a:1",
            "example.com/a:copy",
            "example.com/b:latest",
            "example.com/b:v2"
        ]
    );
    assert_eq!(
        store.resolve("example.com/a:copy").unwrap().digest,
        a.manifest
    );

    // Re-tagging moves the name.
    store
        .tag("example.com/b:latest", "example.com/a:copy")
        .unwrap();
    assert_eq!(
        store.resolve("example.com/a:copy").unwrap().digest,
        b.manifest
    );

    let gone = store.untag("example.com/a:1").unwrap();
    assert_eq!(gone.digest, a.manifest);
    assert!(matches!(
        store.resolve("example.com/a:1"),
        Err(StoreError::RefNotFound(n)) if n == "example.com/a:1"
    ));
    assert!(matches!(
        store.untag("example.com/a:1"),
        Err(StoreError::RefNotFound(_))
    ));
    // Blobs stay until GC.
    assert!(store.has_blob(&a.manifest).unwrap());

    // rmi by digest removes every name pointing at it.
    let removed = store.rmi(&b.manifest.to_string()).unwrap();
    let mut removed: Vec<String> = removed.into_iter().map(|r| r.name).collect();
    removed.sort();
    assert_eq!(
        removed,
        [
            "example.com/a:copy",
            "example.com/b:latest",
            "example.com/b:v2"
        ]
    );
    assert!(store.list_images().unwrap().is_empty());
    assert!(store.check().unwrap().is_clean());
}

#[test]
fn store_refs_persist_across_handles() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let img = put_image(&store, &mut Rng::new(11), 1, 100);
    store.set_ref("x:1", &img.manifest, None).unwrap();
    drop(store);
    let again = Store::open(dir.path()).unwrap();
    assert_eq!(again.resolve("x:1").unwrap().digest, img.manifest);
    let text = std::fs::read_to_string(dir.path().join("refs.json")).unwrap();
    assert!(text.contains(&img.manifest.to_string()), "{text}");
}

#[test]
fn store_refs_refuse_incomplete_or_non_images() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut rng = Rng::new(12);
    let img = put_image(&store, &mut rng, 2, 100);

    // Not stored at all.
    let absent = Digest::of(b"absent");
    assert!(matches!(
        store.set_ref("x:1", &absent, None),
        Err(StoreError::BlobNotFound(d)) if d == absent
    ));
    // A layer is not an image.
    let err = store.set_ref("x:1", &img.layers[0], None).unwrap_err();
    assert!(matches!(err, StoreError::InvalidBlob { .. }), "{err}");
    // A manifest whose layer is missing.
    let missing_layer = Digest::of(b"missing layer");
    let manifest = store_common::manifest_json((&img.config, 10), &[(missing_layer.clone(), 13)]);
    let m = store.put_blob_bytes(&manifest).unwrap();
    let err = store.set_ref("x:1", &m.digest, None).unwrap_err();
    assert!(
        matches!(&err, StoreError::IncompleteImage { digest, missing }
            if *digest == m.digest && *missing == missing_layer),
        "{err}"
    );
    // Bad names.
    for bad in ["", "has space", "tab\tname", &img.manifest.to_string()] {
        let err = store.set_ref(bad, &img.manifest, None).unwrap_err();
        assert!(matches!(err, StoreError::InvalidName(_)), "{bad:?}: {err}");
    }
    assert!(store.list_images().unwrap().is_empty());
}

#[test]
fn store_refs_index_with_one_platform_present() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut rng = Rng::new(13);
    let amd64 = put_image(&store, &mut rng, 1, 200);
    let not_pulled = Digest::of(b"arm64 manifest, never pulled");
    let index = index_json(&[
        (amd64.manifest.clone(), amd64.manifest_size, "amd64"),
        (not_pulled.clone(), 500, "arm64"),
    ]);
    let idx = store.put_blob_bytes(&index).unwrap();
    let rec = store.set_ref("multi:1", &idx.digest, None).unwrap();
    assert_eq!(rec.media_type, OCI_INDEX);
    assert_eq!(rec.created.as_deref(), Some("2024-01-02T03:04:05Z"));
    assert!(rec.size > idx.size + amd64.manifest_size);
    assert!(
        store.check().unwrap().is_clean(),
        "{:?}",
        store.check().unwrap()
    );

    // An index none of whose platforms is stored is refused.
    let empty = store
        .put_blob_bytes(&index_json(&[(not_pulled.clone(), 500, "arm64")]))
        .unwrap();
    let err = store.set_ref("multi:2", &empty.digest, None).unwrap_err();
    assert!(matches!(err, StoreError::IncompleteImage { missing, .. } if missing == not_pulled));
}
