//! The entry API (what COPY uses to stream files into a layer without a
//! snapshot), whiteout and opaque semantics against a lower tree, and
//! rootless id mapping in both directions.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use hoist_engine::digest::Digest;
use hoist_engine::layer::{
    Compression, EntryMeta, IdMap, IdRange, LayerError, LayerOptions, LayerWriter, Ownership,
    Special, UnpackOptions, unpack, write_tree,
};

fn meta(mode: u32, mtime: i64) -> EntryMeta {
    EntryMeta {
        mtime,
        ..EntryMeta::new(mode)
    }
}

#[test]
fn layer_entry_api_streams_files_links_and_whiteouts() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    for d in ["root/opq/sub", "root/del-dir/x", "root/keep"] {
        fs::create_dir_all(tmp.path().join(d)).unwrap();
    }
    for f in [
        "root/opq/old",
        "root/opq/sub/old",
        "root/del",
        "root/keep/k",
        "root/del-dir/x/y",
    ] {
        fs::write(tmp.path().join(f), "lower").unwrap();
    }

    let opts = LayerOptions {
        compression: Compression::Zstd,
        source_date_epoch: Some(1_700_000_000),
        ..LayerOptions::default()
    };
    let mut blob = Vec::new();
    let mut w = LayerWriter::new(&mut blob, &opts).unwrap();
    let mut xmeta = meta(0o640, 1_800_000_000); // clamped to the epoch
    xmeta
        .xattrs
        .insert(b"user.origin".to_vec(), b"context".to_vec());
    w.append_whiteout(Path::new("del")).unwrap();
    w.append_whiteout(Path::new("del-dir")).unwrap();
    w.append_dir(Path::new("new"), &meta(0o750, 1_600_000_000))
        .unwrap();
    w.append_file(Path::new("new/a.txt"), &xmeta, 5, &b"hello"[..])
        .unwrap();
    w.append_hardlink(Path::new("new/b.txt"), Path::new("new/a.txt"), &xmeta)
        .unwrap();
    w.append_symlink(Path::new("new/link"), Path::new("a.txt"), &meta(0o777, 0))
        .unwrap();
    w.append_special(Path::new("new/pipe"), Special::Fifo, &meta(0o600, 0))
        .unwrap();
    w.append_dir(Path::new("opq"), &meta(0o755, 0)).unwrap();
    // Written before the marker in the same layer: the marker spares it.
    w.append_file(Path::new("opq/mine"), &meta(0o644, 0), 4, &b"mine"[..])
        .unwrap();
    w.append_opaque(Path::new("opq")).unwrap();
    // A whiteout of something this layer made is not applied to it.
    w.append_whiteout(Path::new("opq/mine")).unwrap();
    let big = vec![42u8; (1 << 20) + 3];
    w.append_file(
        Path::new("./new//big"),
        &meta(0o600, 0),
        big.len() as u64,
        &big[..],
    )
    .unwrap();
    assert!(matches!(
        w.append_file(Path::new("/abs"), &meta(0o644, 0), 0, &b""[..]),
        Err(LayerError::InvalidPath { .. })
    ));
    assert!(matches!(
        w.append_dir(Path::new("a/../b"), &meta(0o755, 0)),
        Err(LayerError::InvalidPath { .. })
    ));
    let layer = w.finish().unwrap();
    assert_eq!(layer.digest, Digest::of(&blob));
    assert_eq!(
        layer.diff_id,
        Digest::of(&zstd::decode_all(&blob[..]).unwrap())
    );
    assert_eq!(
        layer.media_type,
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );

    let mut uopts = UnpackOptions::new(layer.digest.clone());
    uopts.diff_id = Some(layer.diff_id.clone());
    uopts.size = Some(layer.size);
    let report = unpack(&blob[..], &root, &uopts).unwrap();
    assert_eq!(report.entries, 12);
    assert!(!root.join("del").exists() && !root.join("del-dir").exists());
    assert_eq!(fs::read(root.join("keep/k")).unwrap(), b"lower");
    let mut opq: Vec<_> = fs::read_dir(root.join("opq"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    opq.sort();
    assert_eq!(opq, ["mine"]);
    let a = fs::metadata(root.join("new/a.txt")).unwrap();
    assert_eq!(a.mtime(), 1_700_000_000);
    assert_eq!(a.permissions().mode() & 0o7777, 0o640);
    assert_eq!(a.ino(), fs::metadata(root.join("new/b.txt")).unwrap().ino());
    let mut value = [0u8; 32];
    let n = rustix::fs::getxattr(root.join("new/a.txt"), "user.origin", &mut value[..]).unwrap();
    assert_eq!(&value[..n], b"context");
    assert_eq!(
        fs::read_link(root.join("new/link")).unwrap(),
        Path::new("a.txt")
    );
    assert_eq!(fs::read(root.join("new/big")).unwrap(), big);
    let new = fs::metadata(root.join("new")).unwrap();
    assert_eq!(
        (new.mtime(), new.permissions().mode() & 0o7777),
        (1_600_000_000, 0o750)
    );

    // Applying the same layer twice gives the same tree (whiteouts of
    // absent paths are no-ops, existing entries are replaced).
    unpack(&blob[..], &root, &uopts).unwrap();
    assert_eq!(fs::read(root.join("new/a.txt")).unwrap(), b"hello");
}

#[test]
fn layer_id_maps_translate_host_and_container_ids() {
    // Needs root (chown to arbitrary ids), as the whole suite does.
    let map = IdMap {
        uids: vec![IdRange {
            container: 0,
            host: 100_000,
            size: 65_536,
        }],
        gids: vec![IdRange {
            container: 0,
            host: 200_000,
            size: 65_536,
        }],
    };
    let tmp = tempfile::tempdir().unwrap();
    let tree = tmp.path().join("tree");
    fs::create_dir(&tree).unwrap();
    fs::write(tree.join("root-owned"), "r").unwrap();
    fs::write(tree.join("user-owned"), "u").unwrap();
    std::os::unix::fs::chown(tree.join("root-owned"), Some(100_000), Some(200_000)).unwrap();
    std::os::unix::fs::chown(tree.join("user-owned"), Some(101_000), Some(201_000)).unwrap();
    let opts = LayerOptions {
        compression: Compression::None,
        id_map: Some(map.clone()),
        ..LayerOptions::default()
    };
    let mut blob = Vec::new();
    let layer = write_tree(&tree, &opts, &mut blob).unwrap();
    let mut ids = Vec::new();
    let mut archive = tar::Archive::new(&blob[..]);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let h = entry.header();
        ids.push((h.uid().unwrap(), h.gid().unwrap()));
        entry.read_to_end(&mut Vec::new()).unwrap();
    }
    assert_eq!(ids, [(0, 0), (1000, 1000)]);

    // Unpacking maps them back to host ids.
    let target = tmp.path().join("target");
    fs::create_dir(&target).unwrap();
    let mut uopts = UnpackOptions::new(layer.digest.clone());
    uopts.ownership = Ownership::from_id_map(map);
    unpack(&blob[..], &target, &uopts).unwrap();
    let owner = |p: &str| {
        let m = fs::metadata(target.join(p)).unwrap();
        (m.uid(), m.gid())
    };
    assert_eq!(owner("root-owned"), (100_000, 200_000));
    assert_eq!(owner("user-owned"), (101_000, 201_000));

    // A host id outside the map cannot be written.
    std::os::unix::fs::chown(tree.join("user-owned"), Some(7), None).unwrap();
    let e = write_tree(&tree, &opts, std::io::sink()).unwrap_err();
    assert!(
        matches!(
            e,
            LayerError::UnmappedId {
                id: 7,
                kind: "uid",
                ..
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("user-owned"), "{e}");

    // Ownership::Skip leaves files to the unpacking user.
    let skipped = tmp.path().join("skipped");
    fs::create_dir(&skipped).unwrap();
    let mut uopts = UnpackOptions::new(layer.digest.clone());
    uopts.ownership = Ownership::Skip;
    unpack(&blob[..], &skipped, &uopts).unwrap();
    assert_eq!(fs::metadata(skipped.join("user-owned")).unwrap().uid(), 0);
}
