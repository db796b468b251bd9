//! Blobs: streamed writes with verification, verified reads, corruption
//! found on read and by `check`, layout and default root.

mod store_common;

use std::ffi::OsString;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;

use hoist_engine::digest::Digest;
use hoist_engine::store::{Damage, Store, StoreError, default_root_with};
use store_common::{Rng, count_entries};

fn corrupt(path: &std::path::Path) {
    fs::set_permissions(path, fs::Permissions::from_mode(0o644)).unwrap();
    let mut bytes = fs::read(path).unwrap();
    bytes[0] ^= 0x01;
    fs::write(path, bytes).unwrap();
}

#[test]
fn store_blob_roundtrip_streams_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let bytes = Rng::new(1).bytes(300_000);
    let digest = Digest::of(&bytes);

    let info = store
        .put_blob(&bytes[..], Some(&digest), Some(bytes.len() as u64))
        .unwrap();
    assert_eq!((info.digest.clone(), info.size), (digest.clone(), 300_000));
    let path = store.blob_path(&digest);
    assert_eq!(path, dir.path().join("blobs/sha256").join(digest.hex()));
    assert_eq!(
        fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o444
    );

    let mut back = Vec::new();
    store
        .open_blob(&digest)
        .unwrap()
        .read_to_end(&mut back)
        .unwrap();
    assert_eq!(back, bytes);
    assert_eq!(store.read_blob_verified(&digest).unwrap(), bytes);
    assert_eq!(store.blob_size(&digest).unwrap(), Some(300_000));
    assert_eq!(count_entries(&dir.path().join("tmp")), 0, "temp file left");
}

#[test]
fn store_blob_existing_is_not_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let info = store.put_blob_bytes(b"same bytes").unwrap();
    let ino = fs::metadata(store.blob_path(&info.digest)).unwrap().ino();
    // Known digest: nothing is read from this reader, which would fail.
    struct Failing;
    impl Read for Failing {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("must not be read"))
        }
    }
    store.put_blob(Failing, Some(&info.digest), None).unwrap();
    // Unknown digest: streamed to tmp, then dropped since it exists.
    let again = store.put_blob(&b"same bytes"[..], None, None).unwrap();
    assert_eq!(again, info);
    assert_eq!(
        fs::metadata(store.blob_path(&info.digest)).unwrap().ino(),
        ino
    );
    assert_eq!(count_entries(&dir.path().join("tmp")), 0);
}

#[test]
fn store_blob_wrong_digest_or_size_is_refused_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let claimed = Digest::of(b"expected");
    let err = store
        .put_blob(&b"actual"[..], Some(&claimed), None)
        .unwrap_err();
    assert!(
        matches!(err, StoreError::BlobDigestMismatch { .. }),
        "{err}"
    );
    assert!(err.to_string().contains(&claimed.to_string()), "{err}");
    let err = store
        .put_blob(&b"actual"[..], Some(&Digest::of(b"actual")), Some(7))
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::BlobSizeMismatch {
                expected: 7,
                actual: 6,
                ..
            }
        ),
        "{err}"
    );
    assert!(!store.has_blob(&claimed).unwrap());
    assert!(!store.has_blob(&Digest::of(b"actual")).unwrap());
    assert_eq!(count_entries(&dir.path().join("blobs/sha256")), 0);
    assert_eq!(count_entries(&dir.path().join("tmp")), 0);
}

#[test]
fn store_blob_writer_streams_and_cleans_up_when_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut w = store.blob_writer().unwrap();
    for chunk in [&b"hello "[..], b"streamed ", b"world"] {
        w.write_all(chunk).unwrap();
    }
    assert_eq!(count_entries(&dir.path().join("tmp")), 1);
    let info = w.commit(None, None).unwrap();
    assert_eq!(info.digest, Digest::of(b"hello streamed world"));
    assert_eq!(
        store.read_blob_verified(&info.digest).unwrap(),
        b"hello streamed world"
    );

    let mut w = store.blob_writer().unwrap();
    w.write_all(b"abandoned").unwrap();
    drop(w);
    assert_eq!(count_entries(&dir.path().join("tmp")), 0);
    assert!(!store.has_blob(&Digest::of(b"abandoned")).unwrap());
}

#[test]
fn store_blob_corruption_is_found_on_read_and_by_check() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let good = store.put_blob_bytes(&Rng::new(2).bytes(10_000)).unwrap();
    let bad = store.put_blob_bytes(&Rng::new(3).bytes(10_000)).unwrap();
    assert!(store.check().unwrap().is_clean());

    corrupt(&store.blob_path(&bad.digest));
    let err = store
        .open_blob(&bad.digest)
        .unwrap()
        .read_to_end(&mut Vec::new())
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
    assert!(err.to_string().contains("digest mismatch"), "{err}");
    let err = store.read_blob_verified(&bad.digest).unwrap_err();
    assert!(matches!(&err, StoreError::CorruptBlob { digest, .. } if *digest == bad.digest));
    assert!(err.to_string().contains(bad.digest.hex()), "{err}");
    store.read_blob_verified(&good.digest).unwrap();

    let report = store.check().unwrap();
    assert!(!report.is_clean());
    assert_eq!(report.blobs_checked, 2);
    assert!(
        matches!(&report.damage[..], [Damage::CorruptBlob { digest, actual }]
            if *digest == bad.digest && *actual != bad.digest),
        "{:?}",
        report.damage
    );

    // A stray file in the blob directory is damage too.
    fs::write(dir.path().join("blobs/sha256/not-a-digest"), b"x").unwrap();
    let report = store.check().unwrap();
    assert_eq!(report.damage.len(), 2, "{:?}", report.damage);
    assert!(
        report
            .damage
            .iter()
            .any(|d| matches!(d, Damage::StrayFile { .. }))
    );
}

#[test]
fn store_missing_blob_is_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let d = Digest::of(b"nope");
    assert!(matches!(store.open_blob(&d), Err(StoreError::BlobNotFound(x)) if x == d));
    assert_eq!(store.blob_size(&d).unwrap(), None);
}

#[test]
fn store_layout_and_version() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("nested/root");
    Store::open(&root).unwrap();
    for sub in ["blobs/sha256", "snapshots", "cache", "tmp", "locks"] {
        assert!(root.join(sub).is_dir(), "{sub}");
    }
    assert_eq!(fs::read_to_string(root.join("version")).unwrap(), "1\n");
    // Opening again is fine; a newer layout is refused.
    Store::open(&root).unwrap();
    fs::write(root.join("version"), "2\n").unwrap();
    let err = Store::open(&root).unwrap_err();
    assert!(matches!(err, StoreError::UnsupportedVersion { ref found, .. } if found == "2"));
    assert!(
        err.to_string().contains(&root.display().to_string()),
        "{err}"
    );
}

#[test]
fn store_default_root_rules() {
    let env = |pairs: &'static [(&'static str, &'static str)]| {
        move |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| OsString::from(v))
        }
    };
    let all = &[
        ("HOIST_ROOT", "/srv/hoist"),
        ("XDG_DATA_HOME", "/x/data"),
        ("HOME", "/home/u"),
    ];
    assert_eq!(
        default_root_with(env(all), false).unwrap(),
        PathBuf::from("/srv/hoist")
    );
    assert_eq!(
        default_root_with(env(all), true).unwrap(),
        PathBuf::from("/srv/hoist")
    );
    let no_override = &[("XDG_DATA_HOME", "/x/data"), ("HOME", "/home/u")];
    assert_eq!(
        default_root_with(env(no_override), true).unwrap(),
        PathBuf::from("/var/lib/hoist")
    );
    assert_eq!(
        default_root_with(env(no_override), false).unwrap(),
        PathBuf::from("/x/data/hoist")
    );
    let relative_xdg = &[("XDG_DATA_HOME", "rel"), ("HOME", "/home/u")];
    assert_eq!(
        default_root_with(env(relative_xdg), false).unwrap(),
        PathBuf::from("/home/u/.local/share/hoist")
    );
    assert!(matches!(
        default_root_with(env(&[]), false),
        Err(StoreError::NoRoot)
    ));
}
