//! Path indexes of layers and their stacks, against the real unpacker: a
//! stack must say of every path exactly what unpacking the same layers
//! into a directory gives (whiteouts, opaque directories, files replacing
//! directories and back, hard links within and across layers, gzip, zstd
//! and plain blobs), or decline (`None`) where the unpacker would follow a
//! symlink, fail, or depend on the order of entries. The writer's index
//! and the one read back from the blob are always the same.

mod layer_index_support;

use std::io::Read;
use std::path::Path;
use std::time::Instant;

use hoist_engine::executor::snapshot::{Views, dest_view, keep_index};
use hoist_engine::executor::state::Layer;
use hoist_engine::image::Descriptor;
use hoist_engine::layer::{Compression, EntryKind, LayerIndex, index_blob};
use hoist_engine::ops::file::DestView;
use hoist_engine::store::{GcOptions, Store};
use layer_index_support::*;
use proptest::prelude::*;

fn read_all(stack: &hoist_engine::layer::IndexStack, path: &str) -> String {
    let (mut r, _) = stack.open(path.as_bytes()).unwrap().expect("a file");
    let mut s = String::new();
    r.read_to_string(&mut s).unwrap();
    s
}

#[test]
fn layer_index_whiteouts_and_opaque_dirs_across_layers() {
    let dir = tempfile::tempdir().unwrap();
    let layers = three_layers(dir.path());
    let refs: Vec<&Built> = layers.iter().collect();
    assert_scan_agrees(&refs);
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    unpack_all(&refs, &root).unwrap();
    let stack = stack(&refs).expect("a regular stack");
    assert_stack_is_tree(&stack, &refs, &root);
    // The same facts, spelled out.
    assert_eq!(stack.stat(b"app/a"), None, "whited out");
    assert_eq!(read_all(&stack, "app/a2"), "A", "its hard link stays");
    assert_eq!(stack.stat(b"app/sub").unwrap().kind, EntryKind::File);
    assert_eq!(stack.stat(b"app/sub/c"), None, "gone with its directory");
    assert_eq!(stack.stat(b"data/keep"), None, "hidden by the opaque dir");
    assert_eq!(read_all(&stack, "data/old"), "reborn");
    assert_eq!(stack.stat(b"data").unwrap().mode, 0o700);
    assert_eq!(stack.stat(b"deep"), None);
    assert_eq!(stack.stat(b"deep/er/f"), None);
    assert_eq!(stack.stat(b"lnk").unwrap().kind, EntryKind::Dir);
    assert_eq!(read_all(&stack, "ext"), "B", "read from the gzip base");
    assert_eq!(stack.stat(b"opt").unwrap().link, b"/data");
    let y = stack.stat(b"app/sub2/y").unwrap();
    assert_eq!((y.uid, y.gid, y.mode), (1000, 1001, 0o600));
}

#[test]
fn layer_index_declines_what_the_unpacker_would_do_differently() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // An entry below a lower layer's symlink lands at the link's target.
    let l0 = layer_with(d, "l0", Compression::None, |w| {
        w.append_symlink(p("l"), p("/t"), &meta(0o777)).unwrap();
    });
    let l1 = layer_with(d, "l1", Compression::Gzip, |w| file(w, "l/x", b"x"));
    assert!(l0.index.is_regular() && l1.index.is_regular());
    assert!(stack(&[&l1]).is_some(), "alone, l/x is an ordinary path");
    assert!(stack(&[&l0, &l1]).is_none());
    let root = d.join("root");
    std::fs::create_dir(&root).unwrap();
    unpack_all(&[&l0, &l1], &root).unwrap();
    assert!(tree_map(&root).contains_key("t/x"), "why: it went through");
    // Within one layer: below a file, a child before its directory, a
    // whiteout of something the layer writes, a hard link to a later file.
    let below_file = layer_with(d, "a", Compression::None, |w| {
        file(w, "f", b"1");
        file(w, "f/x", b"2");
    });
    let child_first = layer_with(d, "b", Compression::None, |w| {
        file(w, "d/x", b"1");
        w.append_dir(p("d"), &meta(0o755)).unwrap();
    });
    let whiteout_and_write = layer_with(d, "c", Compression::None, |w| {
        w.append_whiteout(p("w")).unwrap();
        file(w, "w", b"1");
    });
    let link_first = layer_with(d, "e", Compression::None, |w| {
        w.append_hardlink(p("h"), p("later"), &meta(0o644)).unwrap();
        file(w, "later", b"1");
    });
    for l in [&below_file, &child_first, &whiteout_and_write, &link_first] {
        assert!(!l.index.is_regular());
        assert!(stack(&[l]).is_none());
        assert_scan_agrees(&[l]);
    }
    // Across layers: an opaque marker in a file, a hard link to nothing.
    let f = layer_with(d, "f", Compression::None, |w| file(w, "f", b"1"));
    let opaque_in_file = layer_with(d, "g", Compression::None, |w| {
        w.append_opaque(p("f")).unwrap();
    });
    assert!(stack(&[&f, &opaque_in_file]).is_none());
    let dangling = layer_with(d, "h", Compression::None, |w| {
        w.append_hardlink(p("h"), p("nothing"), &meta(0o644))
            .unwrap();
    });
    assert!(stack(&[&f, &dangling]).is_none());
    // A blob the unpacker refuses (`..`) is irregular, read from the blob.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_size(0);
    h.as_old_mut().name[..7].copy_from_slice(b"../evil");
    h.set_cksum();
    b.append(&h, &[][..]).unwrap();
    let bytes = b.into_inner().unwrap();
    let digest = hoist_engine::digest::Digest::of(&bytes);
    let index = index_blob(&bytes[..], &digest, None, None).unwrap();
    assert!(!index.is_regular());
    // A wrong diff_id is the unpacker's error too.
    let wrong = hoist_engine::digest::Digest::of(b"another tar");
    assert!(index_blob(&bytes[..], &digest, None, Some(&wrong)).is_err());
}

#[test]
fn layer_index_files_are_checked_when_read() {
    let dir = tempfile::tempdir().unwrap();
    let layers = three_layers(dir.path());
    let bytes = layers[0].index.encode();
    assert_eq!(LayerIndex::decode(&bytes).unwrap(), layers[0].index);
    let mut torn = bytes.clone();
    let mid = torn.len() / 2;
    torn[mid] ^= 1;
    assert!(LayerIndex::decode(&torn).is_err(), "a flipped byte");
    assert!(LayerIndex::decode(&bytes[..bytes.len() - 1]).is_err());
    assert!(LayerIndex::decode(&[]).is_err());
    assert!(LayerIndex::decode(&vec![0; 4096]).is_err());
}

#[test]
fn layer_index_of_20000_entries_loads_in_milliseconds() {
    let dir = tempfile::tempdir().unwrap();
    let l = layer_with(dir.path(), "big", Compression::None, |w| {
        for d in 0..100 {
            w.append_dir(&Path::new("tree").join(format!("d{d:03}")), &meta(0o755))
                .unwrap();
            for f in 0..200 {
                let name = format!("tree/d{d:03}/file-{f:04}.txt");
                file(w, &name, name.as_bytes());
            }
        }
    });
    assert!(l.index.len() > 20_000);
    let bytes = l.index.encode();
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        let index = LayerIndex::decode(&bytes).unwrap();
        best = best.min(t.elapsed().as_secs_f64());
        assert_eq!(index.len(), l.index.len());
    }
    eprintln!(
        "decode of {} entries ({} bytes): {:.2} ms",
        l.index.len(),
        bytes.len(),
        best * 1e3
    );
    // Generous for unoptimised test builds; release figures are in the report.
    assert!(best < 1.0, "{best} s");
    let stack = stack(&[&l]).unwrap();
    assert_eq!(
        read_all(&stack, "tree/d042/file-0123.txt"),
        "tree/d042/file-0123.txt"
    );
}

fn stored_layer(store: &Store, built: &Built, media_type: &str) -> Layer {
    let info = store.put_blob_bytes(&built.bytes).unwrap();
    Layer {
        descriptor: Descriptor::new(media_type, info.digest, info.size),
        diff_id: built.blob.diff_id.clone(),
    }
}

#[test]
fn layer_index_dest_view_indexes_stored_blobs_without_unpacking() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let layers = three_layers(dir.path());
    let stored: Vec<Layer> = layers
        .iter()
        .map(|b| stored_layer(&store, b, &b.blob.media_type))
        .collect();
    let Some(DestView::Index(stack)) = dest_view(&store, &Views::default(), &stored).unwrap()
    else {
        panic!("an index view");
    };
    assert_eq!(stack.len(), 3);
    assert_eq!(
        read_all(&stack, "etc/passwd"),
        "root:x:0:0::/root:/bin/sh\n"
    );
    assert!(
        store.list_snapshots().unwrap().is_empty(),
        "nothing unpacked"
    );
    let kept = std::fs::read_dir(store.root().join("indexes"))
        .unwrap()
        .count();
    assert_eq!(kept, 3, "one index per blob, read once from its headers");
    for (l, b) in stored.iter().zip(&layers) {
        let path = store.root().join("indexes").join(l.descriptor.digest.hex());
        let index = LayerIndex::decode(&std::fs::read(path).unwrap()).unwrap();
        assert_eq!(index, b.index);
    }
    // A stack the indexes decline is materialised, as before.
    let d = dir.path();
    let l0 = layer_with(d, "s0", Compression::None, |w| {
        w.append_symlink(p("l"), p("/t"), &meta(0o777)).unwrap();
    });
    let l1 = layer_with(d, "s1", Compression::None, |w| file(w, "l/x", b"x"));
    let odd = [
        stored_layer(&store, &l0, &l0.blob.media_type),
        stored_layer(&store, &l1, &l1.blob.media_type),
    ];
    let Some(DestView::Dir(root)) = dest_view(&store, &Views::default(), &odd).unwrap() else {
        panic!("a directory view");
    };
    assert!(root.join("t/x").is_file());
    assert_eq!(
        dest_view(&store, &Views::default(), &[])
            .unwrap()
            .map(|_| ()),
        None
    );
}

#[test]
fn layer_index_prune_removes_the_indexes_of_removed_blobs() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    let layers = three_layers(dir.path());
    let kept = stored_layer(&store, &layers[0], &layers[0].blob.media_type);
    let dropped = stored_layer(&store, &layers[1], &layers[1].blob.media_type);
    keep_index(&store, &kept.descriptor.digest, &layers[0].index);
    keep_index(&store, &dropped.descriptor.digest, &layers[1].index);
    let orphan = hoist_engine::digest::Digest::of(b"no such blob");
    keep_index(&store, &orphan, &layers[2].index);
    let record = serde_json::json!({"layer": kept.descriptor.digest.to_string()});
    store
        .put_cache_record("k", record.to_string().as_bytes())
        .unwrap();
    let indexes = store.root().join("indexes");
    let names = || {
        let mut v: Vec<String> = std::fs::read_dir(&indexes)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    assert_eq!(names().len(), 3);
    let report = store.gc(GcOptions::default()).unwrap();
    assert_eq!(names(), vec![kept.descriptor.digest.hex().to_string()]);
    assert!(report.removed_cache_records >= 2);
    assert!(store.check().unwrap().is_clean(), "check ignores indexes");
    store.gc(GcOptions { all: true }).unwrap();
    assert!(names().is_empty());
}

/// A small universe of paths and link targets for random layers.
const PATHS: [&str; 14] = [
    "a", "b", "a/a", "a/b", "b/a", "b/b", "a/a/a", "a/a/b", "a/b/a", "a/b/b", "b/a/a", "b/a/b",
    "b/b/a", "b/b/b",
];
const TARGETS: [&str; 6] = ["/", "a", "../b", "/a/b", "nowhere", "a/b/../.."];

#[derive(Debug, Clone)]
enum Op {
    Dir(usize, u32, u32),
    File(usize, u8, u32, u32),
    Symlink(usize, usize),
    Hardlink(usize, usize),
    Whiteout(usize),
    Opaque(usize),
}

impl Op {
    /// The name the entry has in the tar, for sorting.
    fn written(&self) -> String {
        let at = |i: &usize| PATHS[*i].to_string();
        match self {
            Op::Whiteout(i) => match PATHS[*i].rsplit_once('/') {
                Some((dir, name)) => format!("{dir}/.wh.{name}"),
                None => format!(".wh.{}", PATHS[*i]),
            },
            Op::Opaque(i) => format!("{}/.wh..wh..opq", PATHS[*i]),
            Op::Dir(i, ..) | Op::File(i, ..) | Op::Symlink(i, _) | Op::Hardlink(i, _) => at(i),
        }
    }
}

fn op() -> impl Strategy<Value = Op> {
    let at = 0..PATHS.len();
    prop_oneof![
        3 => (at.clone(), prop::sample::select(vec![0o755u32, 0o700]), prop::sample::select(vec![0u32, 1000]))
            .prop_map(|(i, m, u)| Op::Dir(i, m, u)),
        4 => (at.clone(), any::<u8>(), prop::sample::select(vec![0o644u32, 0o600]), prop::sample::select(vec![0u32, 1000]))
            .prop_map(|(i, c, m, u)| Op::File(i, c, m, u)),
        1 => (at.clone(), 0..TARGETS.len()).prop_map(|(i, t)| Op::Symlink(i, t)),
        1 => (at.clone(), at.clone()).prop_map(|(i, t)| Op::Hardlink(i, t)),
        2 => at.clone().prop_map(Op::Whiteout),
        1 => at.prop_map(Op::Opaque),
    ]
}

fn write_ops(w: &mut hoist_engine::layer::LayerWriter<&mut Vec<u8>>, ops: &[Op]) {
    for op in ops {
        let mut m = meta(0o644);
        let r = match op {
            Op::Dir(i, mode, uid) => {
                (m.mode, m.uid, m.gid) = (*mode, *uid, *uid);
                w.append_dir(p(PATHS[*i]), &m)
            }
            Op::File(i, c, mode, uid) => {
                (m.mode, m.uid, m.gid, m.mtime) =
                    (*mode, *uid, *uid, 1_600_000_000 + i64::from(*c));
                w.append_file(p(PATHS[*i]), &m, 1, &[*c][..])
            }
            Op::Symlink(i, t) => w.append_symlink(p(PATHS[*i]), p(TARGETS[*t]), &meta(0o777)),
            Op::Hardlink(i, t) => w.append_hardlink(p(PATHS[*i]), p(PATHS[*t]), &m),
            Op::Whiteout(i) => w.append_whiteout(p(PATHS[*i])),
            Op::Opaque(i) => w.append_opaque(p(PATHS[*i])),
        };
        r.unwrap();
    }
}

/// Lists the parent directories of the layer's paths, as writers do.
fn with_parents(ops: &mut Vec<Op>) {
    let at = |s: &str| PATHS.iter().position(|p| *p == s);
    let mut listed: Vec<usize> = Vec::new();
    for op in ops.iter() {
        let path = match op {
            Op::Dir(i, ..) | Op::File(i, ..) | Op::Symlink(i, _) | Op::Hardlink(i, _) => PATHS[*i],
            Op::Whiteout(i) | Op::Opaque(i) => PATHS[*i],
        };
        let mut prefix = String::new();
        for comp in path
            .split('/')
            .collect::<Vec<_>>()
            .iter()
            .rev()
            .skip(1)
            .rev()
        {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(comp);
            if let Some(i) = at(&prefix)
                && !listed.contains(&i)
            {
                listed.push(i);
            }
        }
    }
    let named = |i: usize, ops: &[Op]| {
        ops.iter()
            .any(|op| matches!(op, Op::Dir(j, ..) | Op::File(j, ..) | Op::Symlink(j, _) | Op::Hardlink(j, _) if *j == i))
    };
    for i in listed {
        if !named(i, ops) {
            ops.push(Op::Dir(i, 0o755, 0));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Random stacks of up to four layers, in tar order or not, with or
    /// without their parent directories listed (as writers list them):
    /// whenever the indexes answer, they say what unpacking says; whenever
    /// unpacking fails, they do not answer.
    #[test]
    fn layer_index_random_stacks_agree_with_the_unpacker(
        layers in prop::collection::vec(
            (prop::collection::vec(op(), 1..7), any::<bool>(), any::<bool>()),
            1..5,
        )
    ) {
        let dir = tempfile::tempdir().unwrap();
        let codecs = [Compression::None, Compression::Gzip, Compression::Zstd];
        let built: Vec<Built> = layers
            .iter()
            .enumerate()
            .map(|(n, (ops, sorted, parents))| {
                let mut ops = ops.clone();
                if *parents {
                    with_parents(&mut ops);
                }
                if *sorted {
                    ops.sort_by(|a, b| a.written().split('/').cmp(b.written().split('/')));
                }
                layer_with(dir.path(), &format!("l{n}"), codecs[n % 3], |w| write_ops(w, &ops))
            })
            .collect();
        let refs: Vec<&Built> = built.iter().collect();
        assert_scan_agrees(&refs);
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let unpacked = unpack_all(&refs, &root);
        match (stack(&refs), unpacked) {
            (Some(s), Ok(())) => assert_stack_is_tree(&s, &refs, &root),
            (Some(_), Err(e)) => panic!("the indexes answer where unpacking fails: {e}"),
            (None, _) => {}
        }
    }
}
