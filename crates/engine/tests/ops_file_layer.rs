//! The layer mode: what entries `write_layer` emits (sorted, parents first,
//! existing parents with the base's metadata as BuildKit's differ would),
//! `SOURCE_DATE_EPOCH` clamping, determinism, and a rich tree unpacked into
//! a fresh directory compared with `apply_to_dir` on an empty one.

mod ops_file_support;

use std::path::Path;

use hoist_engine::layer::{Compression, LayerOptions, LayerWriter};
use hoist_engine::ops::file::{CopyPlan, SourceSpec, apply_to_dir, write_layer};
use ops_file_support::*;

fn copy(ctx: &Path, src: &str, dest: &str) -> CopyPlan {
    CopyPlan {
        sources: vec![SourceSpec::context(ctx, src)],
        dest: dest.to_string(),
        now: Some(now()),
        ..Default::default()
    }
}

fn rich_context() -> tempfile::TempDir {
    let c = tempfile::tempdir().unwrap();
    let p = c.path();
    file(p, "app/bin/run", b"#!/bin/sh\necho hi\n", 0o755);
    file(p, "app/etc/conf", b"k=v\n", 0o640);
    file(p, "app/setuid", b"", 0o4755);
    dir(p, "app/empty", 0o700);
    dir(p, "app/sticky", 0o1777);
    symlink(p, "app/link", "bin/run");
    symlink(p, "app/dangling", "/nowhere");
    std::fs::hard_link(p.join("app/etc/conf"), p.join("app/conf-hard")).unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        p.join("app/fifo"),
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
    let long = "d".repeat(120);
    file(p, &format!("app/{long}/{long}.txt"), b"long names", 0o644);
    c
}

#[test]
fn ops_file_layer_unpacked_fresh_equals_apply_on_empty_root() {
    let c = rich_context();
    let p = copy(c.path(), "app", "/srv/");
    let (bytes, blob, report) = layer(&p, None).unwrap();
    let fresh = tempfile::tempdir().unwrap();
    unpack_into(&bytes, &blob, fresh.path());
    let applied = tempfile::tempdir().unwrap();
    let r2 = apply_to_dir(&p, applied.path()).unwrap();
    let a = snapshot(fresh.path());
    let b = snapshot(applied.path());
    assert_same(&a, &b);
    assert_eq!(report.entries, r2.entries);
    assert_eq!(report.bytes, r2.bytes);
    assert_eq!(a["srv/setuid"].mode, 0o4755);
    assert_eq!(a["srv/sticky"].mode, 0o1777);
    assert_eq!(a["srv/empty"].mode, 0o700);
    assert_eq!(a["srv/link"].data, b"bin/run");
    assert_eq!(a["srv/dangling"].data, b"/nowhere");
    assert_eq!(a["srv/fifo"].kind, 's');
    // Context files are root's, whoever owns them on disk.
    assert!(a.values().all(|s| (s.uid, s.gid) == (0, 0) || !is_root()));
    let names = entry_names(&bytes);
    let mut sorted = names.clone();
    sorted.sort_by(|x, y| x.split('/').cmp(y.split('/')));
    assert_eq!(names, sorted, "entries in walk order");
    assert_eq!(names[0], "srv/");
}

#[test]
fn ops_file_layer_parent_entries_carry_the_base_metadata() {
    let c = tempfile::tempdir().unwrap();
    file(c.path(), "f", b"x", 0o644);
    dir(c.path(), "tree/sub", 0o711);
    file(c.path(), "tree/sub/g", b"g", 0o600);
    let t = std::fs::FileTimes::new()
        .set_modified(std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_111_111));
    std::fs::File::open(c.path().join("tree"))
        .unwrap()
        .set_times(t)
        .unwrap();
    let base = tempfile::tempdir().unwrap();
    dir(base.path(), "usr/local", 0o750);
    dir(base.path(), "existing", 0o701);
    file(base.path(), "usr/other", b"untouched", 0o644);
    let (bytes, _, _) = layer(&copy(c.path(), "f", "/usr/local/bin/"), Some(base.path())).unwrap();
    assert_eq!(
        entry_names(&bytes),
        ["usr/", "usr/local/", "usr/local/bin/", "usr/local/bin/f"]
    );
    let h = entry_headers(&bytes);
    assert_eq!(
        h["usr/local/"].0, 0o750,
        "an existing parent keeps its mode"
    );
    assert_eq!(h["usr/local/"].3, NOW, "and gets the time of the change");
    assert_eq!(h["usr/local/bin/"].0, 0o755, "a created parent is 0755");
    // A directory source into an existing directory: the directory keeps
    // its mode and takes the source's mtime (fsutil's restoreFileTimestamp).
    let (bytes, _, _) = layer(&copy(c.path(), "tree", "/existing"), Some(base.path())).unwrap();
    assert_eq!(
        entry_names(&bytes),
        ["existing/", "existing/sub/", "existing/sub/g"]
    );
    let h = entry_headers(&bytes);
    assert_eq!((h["existing/"].0, h["existing/"].3), (0o701, 1_111_111));
    assert_eq!(h["existing/sub/"].0, 0o711);
    // The root itself is never an entry.
    let (bytes, _, _) = layer(&copy(c.path(), "tree", "/"), Some(base.path())).unwrap();
    assert_eq!(entry_names(&bytes), ["sub/", "sub/g"]);
}

#[test]
fn ops_file_layer_source_date_epoch_clamps_and_output_is_deterministic() {
    let c = rich_context();
    let p = copy(c.path(), "app", "/srv/");
    let write = |epoch: Option<i64>| {
        let opts = LayerOptions {
            compression: Compression::Gzip,
            source_date_epoch: epoch,
            ..Default::default()
        };
        let mut w = LayerWriter::new(Vec::new(), &opts).unwrap();
        write_layer(&p, None, &mut w).unwrap();
        w.finish_into_inner().unwrap()
    };
    let (a, bytes) = write(Some(1_000));
    let (b, _) = write(Some(1_000));
    assert_eq!(a.digest, b.digest, "same inputs, same blob");
    assert_eq!(a.media_type, "application/vnd.oci.image.layer.v1.tar+gzip");
    let mut raw = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bytes[..]), &mut raw).unwrap();
    let h = entry_headers(&raw);
    assert!(
        h.values().all(|e| e.3 <= 1_000),
        "every mtime clamped: {h:?}"
    );
    let (c2, _) = write(None);
    assert_ne!(
        a.digest, c2.digest,
        "without the epoch the source mtimes stay"
    );
}

#[test]
fn ops_file_layer_devices_from_a_stage_when_root() {
    if !is_root() {
        eprintln!("skipped: making a device node needs root");
        return;
    }
    let s = tempfile::tempdir().unwrap();
    rustix::fs::mknodat(
        rustix::fs::CWD,
        s.path().join("null"),
        rustix::fs::FileType::CharacterDevice,
        rustix::fs::Mode::from_raw_mode(0o666),
        rustix::fs::makedev(1, 3),
    )
    .unwrap();
    let p = CopyPlan {
        sources: vec![SourceSpec::stage(s.path(), "null")],
        dest: "/dev/".into(),
        now: Some(now()),
        ..Default::default()
    };
    let (_t, r) = both(&p, tempfile::tempdir().unwrap().path());
    use std::os::unix::fs::{FileTypeExt, MetadataExt};
    let md = std::fs::symlink_metadata(r.join("dev/null")).unwrap();
    assert!(md.file_type().is_char_device());
    assert_eq!(md.rdev(), rustix::fs::makedev(1, 3));
}
