//! The file op over an index view of the destination image gives the same
//! layer, byte for byte, as over the unpacked directory: the crafted
//! destination escapes of `ops_file_escape` (`/app -> /`, `/etc ->
//! ../../..`, links out of the root, loops, a link to a file as a parent),
//! `--chown` names read from `/etc/passwd` in a layer blob (plain or gzip),
//! `ADD` archives whose hard links name base files, parents emitted with
//! the base's metadata, and a stack with whiteouts, an opaque directory, a
//! file over a directory and a directory over a symlink. Errors match too.

mod layer_index_support;
mod ops_file_support;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hoist_engine::layer::{Compression, LayerOptions, LayerWriter};
use hoist_engine::ops::file::{
    Chown, CopyPlan, DestView, FileOpError, SourceSpec, write_layer, write_layer_on,
};
use layer_index_support::{Built, stack, three_layers, tree_layer, unpack_all};
use ops_file_support::{T, dir, entry_headers, file, now, raw_tar, symlink};

/// A base root, a context with `f`, and a directory outside both that the
/// absolute links point at.
struct Lab {
    tmp: tempfile::TempDir,
    base: PathBuf,
    ctx: PathBuf,
    outside: PathBuf,
}

impl Lab {
    fn new() -> Lab {
        let tmp = tempfile::tempdir().unwrap();
        let (base, ctx) = (tmp.path().join("base"), tmp.path().join("ctx"));
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(&base).unwrap();
        file(&ctx, "f", b"payload", 0o644);
        file(&outside, "canary.txt", b"do not touch", 0o644);
        dir(&outside, "dir", 0o755);
        Lab {
            tmp,
            base,
            ctx,
            outside,
        }
    }

    fn out(&self, rel: &str) -> String {
        format!("{}/{rel}", self.outside.display())
    }

    fn plan(&self, dest: &str) -> CopyPlan {
        CopyPlan {
            sources: vec![SourceSpec::context(&self.ctx, "f")],
            dest: dest.to_string(),
            now: Some(now()),
            ..Default::default()
        }
    }

    fn add(&self, tar: &[u8], dest: &str) -> CopyPlan {
        std::fs::write(self.ctx.join("a.tar"), tar).unwrap();
        CopyPlan {
            sources: vec![SourceSpec::context(&self.ctx, "a.tar")],
            is_add: true,
            ..self.plan(dest)
        }
    }

    /// The base as one layer (`compression`), read through its index.
    fn index_view(&self, compression: Compression) -> (Built, DestView) {
        let name = format!("base-{compression:?}");
        let built = tree_layer(self.tmp.path(), &name, &self.base, compression);
        let stack = stack(&[&built]).expect("the base indexes");
        (built, DestView::Index(Arc::new(stack)))
    }

    /// `plan` over the base directory and over its index (plain and gzip
    /// blobs): the same layer or the same error. Returns the layer.
    fn same(&self, plan: &CopyPlan) -> Result<Vec<u8>, FileOpError> {
        let on_dir = layer_on(plan, Some(&DestView::Dir(self.base.clone())));
        let direct = write_layer_into(plan, Some(&self.base));
        assert_eq!(
            on_dir.as_ref().map_err(ToString::to_string),
            direct.as_ref().map_err(ToString::to_string),
            "write_layer is write_layer_on a directory"
        );
        // The directory view names files by their host path, the index
        // view by their path in the image.
        let base = self.base.display().to_string();
        let shown = |e: &FileOpError| e.to_string().replace(&base, "");
        for compression in [Compression::None, Compression::Gzip] {
            let (_built, view) = self.index_view(compression);
            let on_index = layer_on(plan, Some(&view));
            assert_eq!(
                on_index.as_ref().map_err(shown),
                on_dir.as_ref().map_err(shown),
                "{plan:?} over an index ({compression:?}) vs the directory"
            );
        }
        on_dir
    }
}

fn layer_on(plan: &CopyPlan, view: Option<&DestView>) -> Result<Vec<u8>, FileOpError> {
    let mut bytes = Vec::new();
    let opts = LayerOptions {
        compression: Compression::None,
        ..Default::default()
    };
    let mut w = LayerWriter::new(&mut bytes, &opts).unwrap();
    write_layer_on(plan, view, &mut w)?;
    w.finish().unwrap();
    Ok(bytes)
}

fn write_layer_into(plan: &CopyPlan, base: Option<&Path>) -> Result<Vec<u8>, FileOpError> {
    let mut bytes = Vec::new();
    let opts = LayerOptions {
        compression: Compression::None,
        ..Default::default()
    };
    let mut w = LayerWriter::new(&mut bytes, &opts).unwrap();
    write_layer(plan, base, &mut w)?;
    w.finish().unwrap();
    Ok(bytes)
}

fn names(bytes: &[u8]) -> Vec<String> {
    ops_file_support::entry_names(bytes)
}

#[test]
fn ops_file_index_destination_escapes_resolve_as_on_the_directory() {
    let lab = Lab::new();
    symlink(&lab.base, "app", "/");
    symlink(&lab.base, "etc", "../../..");
    symlink(&lab.base, "x", &lab.out("dir"));
    symlink(&lab.base, "y", &lab.out("canary.txt"));
    symlink(&lab.base, "d", "nowhere/deeper");
    dir(&lab.base, "c", 0o755);
    symlink(&lab.base, "a", "b");
    symlink(&lab.base, "b", "/c/../../../..");
    symlink(&lab.base, "m/f", &lab.out("canary.txt"));
    for i in 0..20 {
        symlink(&lab.base, &format!("l{i}"), &lab.out("dir"));
    }
    let mut dests: Vec<String> = [
        "/app/",
        "/etc/",
        "/x/",
        "/y",
        "/d/",
        "/a/x/",
        "/../../../../tmp-escape/",
        "/m/",
    ]
    .map(String::from)
    .to_vec();
    dests.extend((0..20).map(|i| format!("/l{i}/deep/er/")));
    for dest in &dests {
        let bytes = lab
            .same(&lab.plan(dest))
            .unwrap_or_else(|e| panic!("{dest}: {e}"));
        assert!(!names(&bytes).is_empty());
    }
    assert_eq!(names(&lab.same(&lab.plan("/app/")).unwrap()), ["f"]);
    let inside = lab.out("dir/f");
    assert!(
        names(&lab.same(&lab.plan("/x/")).unwrap())
            .contains(&inside.trim_start_matches('/').to_string()),
        "followed as if the root were /"
    );
    assert!(
        names(&lab.same(&lab.plan("/m/")).unwrap()).contains(&"m/f".to_string()),
        "the link in the way is replaced"
    );
    let mut p = lab.plan(".");
    p.workdir = "/etc/sub".into();
    assert_eq!(names(&lab.same(&p).unwrap()), ["sub/", "sub/f"]);
}

#[test]
fn ops_file_index_resolution_errors_are_the_same() {
    let lab = Lab::new();
    symlink(&lab.base, "loop1", "loop2");
    symlink(&lab.base, "loop2", "/loop1");
    file(&lab.base, "file", b"base", 0o644);
    symlink(&lab.base, "pf", "/file");
    dir(&lab.base, "adir", 0o755);
    let err = lab.same(&lab.plan("/loop1/")).unwrap_err();
    assert!(matches!(err, FileOpError::TooManyLinks { .. }), "{err}");
    let err = lab.same(&lab.plan("/pf/sub/")).unwrap_err();
    assert!(matches!(err, FileOpError::NotADirectory { .. }), "{err}");
    // A directory in the way of a file.
    file(&lab.ctx, "adir", b"x", 0o644);
    let p = CopyPlan {
        sources: vec![SourceSpec::context(&lab.ctx, "adir")],
        ..lab.plan("/adir")
    };
    lab.same(&p).unwrap();
    let p = CopyPlan {
        sources: vec![
            SourceSpec::context(&lab.ctx, "f"),
            SourceSpec::context(&lab.ctx, "adir"),
        ],
        ..lab.plan("/file")
    };
    let err = lab.same(&p).unwrap_err();
    assert!(matches!(err, FileOpError::SeveralSources { .. }), "{err}");
}

#[test]
fn ops_file_index_chown_names_come_from_the_layer_blob() {
    let lab = Lab::new();
    // /etc/passwd resolves to /passwd of the image, never the host's.
    symlink(&lab.base, "etc", "../../..");
    file(
        &lab.base,
        "passwd",
        b"alice:x:4321:4322::/:/bin/sh\n",
        0o644,
    );
    file(&lab.base, "group", b"staff:x:50:alice\n", 0o644);
    for (spec, ids) in [
        ("alice", (4321, 4322)),
        ("alice:staff", (4321, 50)),
        ("7:8", (7, 8)),
    ] {
        let p = CopyPlan {
            chown: Some(Chown::Spec(spec.into())),
            ..lab.plan("/")
        };
        let bytes = lab.same(&p).unwrap();
        let h = &entry_headers(&bytes)["f"];
        assert_eq!((h.1, h.2), (ids.0, ids.1), "{spec}");
    }
    let p = CopyPlan {
        chown: Some(Chown::Spec("daemon".into())),
        ..lab.plan("/")
    };
    let err = lab.same(&p).unwrap_err();
    assert!(matches!(err, FileOpError::UnknownUser { .. }), "{err}");
    // A passwd that is a directory is refused the same way.
    std::fs::remove_file(lab.base.join("passwd")).unwrap();
    dir(&lab.base, "passwd", 0o755);
    let p = CopyPlan {
        chown: Some(Chown::Spec("alice".into())),
        ..lab.plan("/")
    };
    let err = lab.same(&p).unwrap_err();
    assert!(matches!(err, FileOpError::UserDb { .. }), "{err}");
}

#[test]
fn ops_file_index_archives_and_parents_use_the_base() {
    let lab = Lab::new();
    symlink(&lab.base, "app", &lab.out(""));
    file(&lab.base, "dest/etc/passwd", b"pw-from-the-base", 0o640);
    symlink(&lab.base, "dest/lnk", &lab.out("canary.txt"));
    dir(&lab.base, "tree/sub", 0o711);
    std::os::unix::fs::chown(lab.base.join("tree/sub"), Some(1000), Some(1001)).unwrap();
    // An xattr on a parent travels into the layer's parent entry.
    let _ = rustix::fs::setxattr(
        lab.base.join("tree"),
        "user.hoist-test",
        b"kept",
        rustix::fs::XattrFlags::empty(),
    );
    let tar = raw_tar(&[T::Dir("sub/", 0o755), T::File("sub/f", b"in", 0o644)]);
    lab.same(&lab.add(&tar, "/app/")).unwrap();
    // A hard link to a base file is written as a copy of its bytes, read
    // from the base layer's blob at the file's offset.
    let tar = raw_tar(&[T::Hardlink("h", "../../etc/passwd")]);
    let bytes = lab.same(&lab.add(&tar, "/dest/")).unwrap();
    assert!(
        String::from_utf8_lossy(&bytes).contains("pw-from-the-base"),
        "the base file's bytes"
    );
    // A hard link to a base symlink is that symlink, never read through.
    let tar = raw_tar(&[T::Hardlink("h", "lnk")]);
    let bytes = lab.same(&lab.add(&tar, "/dest/")).unwrap();
    assert_eq!(entry_headers(&bytes)["dest/h"].4, '2', "a symlink entry");
    assert!(!String::from_utf8_lossy(&bytes).contains("do not touch"));
    let bytes = lab.same(&lab.plan("/tree/sub/")).unwrap();
    let h = entry_headers(&bytes);
    assert_eq!(h["tree/sub/"].0 & 0o7777, 0o711);
    assert_eq!((h["tree/sub/"].1, h["tree/sub/"].2), (1000, 1001));
}

#[test]
fn ops_file_index_whiteouts_and_opaque_dirs_as_the_unpacked_stack() {
    let tmp = tempfile::tempdir().unwrap();
    let layers = three_layers(tmp.path());
    let refs: Vec<&Built> = layers.iter().collect();
    let root = tmp.path().join("root");
    std::fs::create_dir(&root).unwrap();
    unpack_all(&refs, &root).unwrap();
    let view = DestView::Index(Arc::new(stack(&refs).unwrap()));
    let ctx = tmp.path().join("ctx");
    file(&ctx, "f", b"payload", 0o644);
    let plan = |dest: &str, chown: Option<&str>| CopyPlan {
        sources: vec![SourceSpec::context(&ctx, "f")],
        dest: dest.to_string(),
        chown: chown.map(|c| Chown::Spec(c.into())),
        now: Some(now()),
        ..Default::default()
    };
    let cases = [
        ("/app/a", None),
        ("/app/a/", None),
        ("/data/keep/", None),
        ("/data/", None),
        ("/app/sub/x", None),
        ("/app/sub2/", None),
        ("/lnk/", None),
        ("/opt/", None),
        ("/deep/er/", None),
        ("/", Some("root")),
    ];
    for (dest, chown) in cases {
        let p = plan(dest, chown);
        let on_dir = layer_on(&p, Some(&DestView::Dir(root.clone())));
        let on_index = layer_on(&p, Some(&view));
        assert_eq!(
            on_index.as_ref().map_err(ToString::to_string),
            on_dir.as_ref().map_err(ToString::to_string),
            "{dest}"
        );
    }
    let bytes = layer_on(&plan("/opt/", None), Some(&view)).unwrap();
    assert!(
        names(&bytes).contains(&"data/f".to_string()),
        "through /opt -> /data"
    );
    let err = layer_on(&plan("/app/sub/x", None), Some(&view)).unwrap_err();
    assert!(matches!(err, FileOpError::NotADirectory { .. }), "{err}");
    let bytes = layer_on(&plan("/app/sub2/", None), Some(&view)).unwrap();
    let h = entry_headers(&bytes);
    assert_eq!(
        h["app/sub2/"].0 & 0o7777,
        0o750,
        "the zstd layer's directory"
    );
}
