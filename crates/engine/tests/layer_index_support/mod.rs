//! Shared helpers for the path-index tests: layers written by the real
//! writer (with their index) into blob files, the same layers unpacked by
//! the real unpacker into a directory, and a comparison of what the index
//! stack and the directory say about every path.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hoist_engine::layer::{
    Compression, EntryKind, EntryMeta, IndexStack, LayerBlob, LayerError, LayerIndex, LayerOptions,
    LayerWriter, UnpackOptions, append_tree, index_blob, unpack,
};

/// One layer: its blob bytes, description, recorded index and blob file.
pub struct Built {
    pub bytes: Vec<u8>,
    pub blob: LayerBlob,
    pub index: LayerIndex,
    pub path: PathBuf,
}

pub fn opts(compression: Compression) -> LayerOptions {
    LayerOptions {
        compression,
        ..Default::default()
    }
}

/// Writes a layer with `fill` into `dir/name`, recording its index.
pub fn layer_with(
    dir: &Path,
    name: &str,
    compression: Compression,
    fill: impl FnOnce(&mut LayerWriter<&mut Vec<u8>>),
) -> Built {
    let mut bytes = Vec::new();
    let mut w = LayerWriter::new(&mut bytes, &opts(compression))
        .unwrap()
        .with_index();
    fill(&mut w);
    let (blob, index) = w.finish_with_index().unwrap();
    let path = dir.join(name);
    std::fs::write(&path, &bytes).unwrap();
    Built {
        bytes,
        blob,
        index: index.expect("an index was recorded"),
        path,
    }
}

/// The layer of the directory `tree`, written with its index.
pub fn tree_layer(dir: &Path, name: &str, tree: &Path, compression: Compression) -> Built {
    layer_with(dir, name, compression, |w| {
        append_tree(w, tree, &opts(compression)).unwrap();
    })
}

/// The stack of `layers` (bottom first), if indexes can answer for it.
pub fn stack(layers: &[&Built]) -> Option<IndexStack> {
    IndexStack::new(
        layers
            .iter()
            .map(|l| (Arc::new(l.index.clone()), l.path.clone()))
            .collect(),
    )
}

/// Every layer's index read back from its blob equals the recorded one.
pub fn assert_scan_agrees(layers: &[&Built]) {
    for l in layers {
        let scanned = index_blob(&l.bytes[..], &l.blob.digest, None, Some(&l.blob.diff_id))
            .expect("the blob indexes");
        assert_eq!(scanned, l.index, "writer and reader disagree");
        let decoded = LayerIndex::decode(&l.index.encode()).expect("decodes");
        assert_eq!(decoded, l.index, "encoding round trip");
    }
}

/// Unpacks `layers` in order onto `root`.
pub fn unpack_all(layers: &[&Built], root: &Path) -> Result<(), LayerError> {
    for l in layers {
        unpack(
            &l.bytes[..],
            root,
            &UnpackOptions::new(l.blob.digest.clone()),
        )?;
    }
    Ok(())
}

/// What a directory holds at one path, read without following anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// `d`, `f` (regular file or hard link), `l`, or `o` (other).
    pub kind: char,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Files and symlinks only (directories are stamped by the unpacker).
    pub mtime: Option<i64>,
    /// File contents or link target.
    pub data: Vec<u8>,
}

/// Every path below `root` (walked, never followed).
pub fn tree_map(root: &Path) -> BTreeMap<String, Seen> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Seen>) {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    for p in names {
        let md = std::fs::symlink_metadata(&p).unwrap();
        let ft = md.file_type();
        let (kind, data) = if ft.is_dir() {
            ('d', Vec::new())
        } else if ft.is_symlink() {
            let t = std::fs::read_link(&p).unwrap();
            ('l', t.into_os_string().into_encoded_bytes())
        } else if ft.is_file() {
            ('f', std::fs::read(&p).unwrap())
        } else {
            ('o', Vec::new())
        };
        let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
        out.insert(
            rel,
            Seen {
                kind,
                mode: if kind == 'l' { 0 } else { md.mode() & 0o7777 },
                uid: md.uid(),
                gid: md.gid(),
                mtime: (kind != 'd').then(|| md.mtime()),
                data,
            },
        );
        if ft.is_dir() {
            walk(root, &p, out);
        }
    }
}

/// What the stack holds at `path`, in the same terms.
pub fn stack_seen(stack: &IndexStack, path: &str) -> Option<Seen> {
    let s = stack.stat(path.as_bytes())?;
    let kind = match s.kind {
        EntryKind::Dir => 'd',
        EntryKind::File | EntryKind::Hardlink => 'f',
        EntryKind::Symlink => 'l',
        EntryKind::Other => 'o',
    };
    let data = match kind {
        'l' => s.link.clone(),
        'f' => {
            let (mut r, size) = stack.open(path.as_bytes()).unwrap().expect("a file opens");
            let mut out = Vec::new();
            r.read_to_end(&mut out).unwrap();
            assert_eq!(out.len() as u64, size, "{path}: size");
            out
        }
        _ => Vec::new(),
    };
    Some(Seen {
        kind,
        mode: if kind == 'l' { 0 } else { s.mode },
        uid: s.uid,
        gid: s.gid,
        mtime: (kind != 'd').then_some(s.mtime),
        data,
    })
}

/// The stack and the unpacked `root` agree on every path of `root` and on
/// every path any layer names.
pub fn assert_stack_is_tree(stack: &IndexStack, layers: &[&Built], root: &Path) {
    let tree = tree_map(root);
    let mut paths: BTreeSet<String> = tree.keys().cloned().collect();
    for l in layers {
        for p in l.index.paths() {
            if !p.is_empty() {
                paths.insert(String::from_utf8_lossy(p).into_owned());
            }
        }
    }
    for p in &paths {
        assert_eq!(
            stack_seen(stack, p).as_ref(),
            tree.get(p),
            "{p}: index stack (left) vs unpacked tree (right)"
        );
    }
}

pub fn meta(mode: u32) -> EntryMeta {
    EntryMeta {
        mtime: 1_600_000_000,
        ..EntryMeta::new(mode)
    }
}

pub fn p(s: &str) -> &Path {
    Path::new(s)
}

pub fn file(w: &mut hoist_engine::layer::LayerWriter<&mut Vec<u8>>, path: &str, body: &[u8]) {
    w.append_file(p(path), &meta(0o644), body.len() as u64, body)
        .unwrap();
}

/// A base tree (gzip), a layer of whiteouts, an opaque directory, a file
/// over a directory, a directory over a symlink and a hard link into the
/// base (plain), and one more (zstd) on top.
pub fn three_layers(dir: &Path) -> Vec<Built> {
    let tree = dir.join("tree");
    for (rel, body) in [
        ("app/a", "A"),
        ("app/b", "B"),
        ("app/sub/c", "C"),
        ("data/old", "old"),
        ("data/keep/x", "x"),
        ("etc/passwd", "root:x:0:0::/root:/bin/sh\n"),
        ("deep/er/f", "f"),
    ] {
        std::fs::create_dir_all(tree.join(rel).parent().unwrap()).unwrap();
        std::fs::write(tree.join(rel), body).unwrap();
    }
    std::fs::hard_link(tree.join("app/a"), tree.join("app/a2")).unwrap();
    std::os::unix::fs::symlink("/app", tree.join("lnk")).unwrap();
    let l0 = tree_layer(dir, "l0", &tree, Compression::Gzip);
    let l1 = layer_with(dir, "l1", Compression::None, |w| {
        w.append_whiteout(p("app/a")).unwrap();
        file(w, "app/sub", b"now a file");
        w.append_dir(p("data"), &meta(0o700)).unwrap();
        w.append_opaque(p("data")).unwrap();
        file(w, "data/new", b"new");
        w.append_whiteout(p("deep")).unwrap();
        w.append_hardlink(p("ext"), p("app/b"), &meta(0o644))
            .unwrap();
        w.append_dir(p("lnk"), &meta(0o755)).unwrap();
        file(w, "lnk/inside", b"in");
    });
    let l2 = layer_with(dir, "l2", Compression::Zstd, |w| {
        w.append_dir(p("app/sub2"), &meta(0o750)).unwrap();
        let mut owned = meta(0o600);
        (owned.uid, owned.gid) = (1000, 1001);
        w.append_file(p("app/sub2/y"), &owned, 1, &b"y"[..])
            .unwrap();
        file(w, "data/old", b"reborn");
        w.append_symlink(p("opt"), p("/data"), &meta(0o777))
            .unwrap();
    });
    vec![l0, l1, l2]
}
