//! `Context::select` on crafted contexts: BuildKit's COPY source rules
//! (wildcards, directory contents, `..` clamped to the root, missing
//! sources), `.dockerignore` with re-included files, symlinks that point
//! out of the context (listed, never followed), and proof that only the
//! named paths are read.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use hoist_engine::context::{Context, ContextError, EntryKind, Selection};
use tempfile::TempDir;

fn write(root: &Path, rel: &str, body: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, body).unwrap();
}

/// a.txt b.txt c.md sub/d.txt sub/deep/e.txt a/b/c.txt a.log
fn sample() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    for f in [
        "a.txt",
        "b.txt",
        "c.md",
        "sub/d.txt",
        "sub/deep/e.txt",
        "a/b/c.txt",
        "a.log",
    ] {
        write(r, f, f);
    }
    dir
}

fn select(ctx: &Context, sources: &[&str]) -> Result<Selection, ContextError> {
    let sources: Vec<String> = sources.iter().map(|s| s.to_string()).collect();
    ctx.select(&sources, &[], true)
}

/// Each match as `path: rel, rel, ...`.
fn listing(sel: &Selection) -> Vec<String> {
    sel.sources
        .iter()
        .map(|s| {
            let rels: Vec<String> = s
                .entries
                .iter()
                .map(|e| e.rel_path.to_string_lossy().into_owned())
                .collect();
            format!("{}: {}", s.path, rels.join(","))
        })
        .collect()
}

#[test]
fn context_select_wildcards_follow_go_match_per_component() {
    let dir = sample();
    let ctx = Context::open(dir.path(), None).unwrap();
    let sel = select(&ctx, &["*.txt"]).unwrap();
    assert_eq!(listing(&sel), ["a.txt: ", "b.txt: "]);
    let sel = select(&ctx, &["?.md", "[ab].txt", "sub/*.txt", "*/*/e.txt"]).unwrap();
    assert_eq!(
        listing(&sel),
        [
            "c.md: ",
            "a.txt: ",
            "b.txt: ",
            "sub/d.txt: ",
            "sub/deep/e.txt: "
        ]
    );
    assert_eq!(
        sel.sources
            .iter()
            .map(|s| s.source_index)
            .collect::<Vec<_>>(),
        [0, 1, 1, 2, 3]
    );
    // BuildKit's testEmptyWildcard: no match is not an error.
    let sel = select(&ctx, &["nomatch*"]).unwrap();
    assert!(sel.sources.is_empty());
    // A wildcard matching a directory stands for its contents too.
    let sel = select(&ctx, &["su?"]).unwrap();
    assert_eq!(listing(&sel), ["sub: ,d.txt,deep,deep/e.txt"]);
    assert!(sel.sources[0].is_dir());
}

#[test]
fn context_select_directory_contents_in_walk_order() {
    let dir = sample();
    let ctx = Context::open(dir.path(), None).unwrap();
    let sel = select(&ctx, &["."]).unwrap();
    // Pre-order, names sorted per directory ("a" before "a.log").
    assert_eq!(
        listing(&sel),
        [".: ,a,a/b,a/b/c.txt,a.log,a.txt,b.txt,c.md,sub,sub/d.txt,sub/deep,sub/deep/e.txt"]
    );
    let root = &sel.sources[0].entries[0];
    assert_eq!(
        (root.kind.clone(), root.ctx_path.as_str()),
        (EntryKind::Dir, ".")
    );
    let sel = select(&ctx, &["sub/"]).unwrap();
    let e = &sel.sources[0].entries[2];
    assert_eq!(e.ctx_path, "sub/deep");
    assert_eq!(e.abs_path, ctx.root().join("sub/deep"));
    assert_eq!(sel.sources[0].base_name(), "sub");
}

#[test]
fn context_select_dotdot_and_leading_slash_stay_in_root() {
    let dir = sample();
    let ctx = Context::open(dir.path(), None).unwrap();
    let sel = select(&ctx, &["../../a.txt", "/b.txt", "sub/../../../c.md"]).unwrap();
    assert_eq!(listing(&sel), ["a.txt: ", "b.txt: ", "c.md: "]);
    let sel = select(&ctx, &["../.."]).unwrap();
    assert_eq!(sel.sources[0].path, ".");
    for e in sel.entries() {
        assert!(
            e.abs_path.starts_with(ctx.root()),
            "{}",
            e.abs_path.display()
        );
    }
}

#[test]
fn context_select_missing_source_is_an_error_naming_it() {
    let dir = sample();
    let ctx = Context::open(dir.path(), None).unwrap();
    let err = select(&ctx, &["a.txt", "nope/x.txt"]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "file not found in build context or excluded by .dockerignore: stat nope/x.txt: file does not exist"
    );
    // A wildcard under a missing directory is missing too.
    assert!(matches!(
        select(&ctx, &["nodir/*.txt"]),
        Err(ContextError::NotFound { .. })
    ));
    // A file through a file.
    assert!(matches!(
        select(&ctx, &["a.txt/x"]),
        Err(ContextError::NotFound { .. })
    ));
    // `file/` must be a directory (BuildKit's copy fails with ENOTDIR);
    // a wildcard's trailing `/` is cleaned away first.
    assert!(matches!(
        select(&ctx, &["a.txt/"]),
        Err(ContextError::NotADirectory { .. })
    ));
    assert_eq!(listing(&select(&ctx, &["a.tx*/"]).unwrap()), ["a.txt: "]);
}

#[test]
fn context_select_dockerignore_hides_and_reincludes() {
    let dir = sample();
    let r = dir.path();
    write(r, "docs/keep.md", "k");
    write(r, "docs/other.md", "o");
    write(r, "docs/inner/x.md", "x");
    write(r, "sub/y.log", "y");
    for i in 0..200 {
        write(r, &format!("build/f{i}"), "b");
    }
    write(
        r,
        ".dockerignore",
        "# comment\ndocs\n!docs/keep.md\n*.log\nbuild/\n",
    );
    let ctx = Context::open(r, None).unwrap();
    assert_eq!(
        ctx.ignore_file(),
        Some(ctx.root().join(".dockerignore").as_path())
    );
    let sel = select(&ctx, &["."]).unwrap();
    let rels: Vec<String> = sel.sources[0]
        .entries
        .iter()
        .map(|e| e.ctx_path.clone())
        .collect();
    // docs appears only as the parent of the re-included file; `*.log`
    // only matches at the root (Docker, not gitignore); build is skipped.
    assert!(rels.contains(&"docs".to_string()));
    assert!(rels.contains(&"docs/keep.md".to_string()));
    assert!(
        !rels
            .iter()
            .any(|p| p == "docs/other.md" || p.starts_with("docs/inner"))
    );
    assert!(!rels.contains(&"a.log".to_string()));
    assert!(rels.contains(&"sub/y.log".to_string()));
    assert!(!rels.iter().any(|p| p.starts_with("build")));
    // Listed: root, a, a/b, docs (it may hold a re-include), sub,
    // sub/deep. Not listed: build, and docs/inner (no `!` pattern reaches
    // inside it).
    assert_eq!(sel.stats.dirs_read, 6);
    // Excluded paths cannot be named; an excluded directory with a
    // re-included file can, and holds just that file.
    for missing in ["a.log", "docs/other.md", "build/f1", "build"] {
        assert!(
            matches!(select(&ctx, &[missing]), Err(ContextError::NotFound { .. })),
            "{missing}"
        );
    }
    let sel = select(&ctx, &["docs"]).unwrap();
    assert_eq!(listing(&sel), ["docs: ,keep.md"]);
    // A wildcard skips excluded matches silently.
    let sel = select(&ctx, &["*.log", "*.md"]).unwrap();
    assert_eq!(listing(&sel), ["c.md: "]);
}

#[test]
fn context_select_symlinks_are_listed_never_followed_out() {
    let dir = sample();
    let r = dir.path();
    symlink("/etc/passwd", r.join("x")).unwrap();
    symlink("../../", r.join("y")).unwrap();
    symlink("/etc", r.join("sub/etc")).unwrap();
    let ctx = Context::open(r, None).unwrap();
    let sel = select(&ctx, &["."]).unwrap();
    let find = |p: &str| {
        sel.entries()
            .find(|e| e.ctx_path == p)
            .unwrap()
            .kind
            .clone()
    };
    assert_eq!(find("x"), EntryKind::Symlink(PathBuf::from("/etc/passwd")));
    assert_eq!(find("y"), EntryKind::Symlink(PathBuf::from("../../")));
    assert_eq!(find("sub/etc"), EntryKind::Symlink(PathBuf::from("/etc")));
    // Nothing below a link is listed.
    assert!(
        !sel.entries()
            .any(|e| e.ctx_path.starts_with("y/") || e.ctx_path.starts_with("sub/etc/"))
    );
    for e in sel.entries() {
        assert!(e.abs_path.starts_with(ctx.root()));
    }
    // Named as a source, a link is resolved as if the root were `/`:
    // /etc/passwd means <ctx>/etc/passwd, which does not exist.
    assert!(matches!(
        select(&ctx, &["x"]),
        Err(ContextError::NotFound { .. })
    ));
    assert!(matches!(
        select(&ctx, &["sub/etc/passwd"]),
        Err(ContextError::NotFound { .. })
    ));
    write(r, "etc/passwd", "inside");
    let sel = select(&ctx, &["x", "sub/etc/passwd"]).unwrap();
    for s in &sel.sources {
        assert_eq!(s.entries[0].ctx_path, "etc/passwd");
        assert_eq!(s.entries[0].abs_path, ctx.root().join("etc/passwd"));
        assert_eq!(s.entries[0].kind, EntryKind::File);
    }
    assert_eq!(sel.sources[0].base_name(), "x");
    // `../../` clamps to the root.
    let sel = select(&ctx, &["y"]).unwrap();
    assert_eq!(sel.sources[0].entries[0].ctx_path, ".");
    // Not following: the link itself.
    let sel = ctx.select(&["x".to_string()], &[], false).unwrap();
    assert_eq!(
        sel.sources[0].entries[0].kind,
        EntryKind::Symlink(PathBuf::from("/etc/passwd"))
    );
    // A link loop is an error, not a hang.
    symlink("loop2", r.join("loop1")).unwrap();
    symlink("loop1", r.join("loop2")).unwrap();
    assert!(matches!(
        select(&ctx, &["loop1"]),
        Err(ContextError::SymlinkLoop { .. })
    ));
}

#[test]
fn context_select_reads_only_what_the_sources_name() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    write(r, "a.txt", "a");
    for d in 0..20 {
        for f in 0..100 {
            write(r, &format!("huge/d{d}/f{f}"), "x");
        }
    }
    let ctx = Context::open(r, None).unwrap();
    let sel = select(&ctx, &["a.txt"]).unwrap();
    assert_eq!(
        sel.stats.dirs_read, 0,
        "no directory listed for a plain file"
    );
    assert_eq!(sel.stats.lstats, 2, "the root and a.txt");
    let sel = select(&ctx, &["*.txt"]).unwrap();
    assert_eq!(sel.stats.dirs_read, 1, "only the root is listed");
    assert_eq!(listing(&sel), ["a.txt: "]);
    let sel = select(&ctx, &["huge/d3"]).unwrap();
    assert_eq!(sel.stats.dirs_read, 1);
    assert_eq!(sel.sources[0].entries.len(), 101);
}

#[test]
fn context_select_excludes_are_relative_to_each_match() {
    let dir = sample();
    let ctx = Context::open(dir.path(), None).unwrap();
    let ex = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let sel = ctx.select(&ex(&["sub"]), &ex(&["*.txt"]), true).unwrap();
    assert_eq!(listing(&sel), ["sub: ,deep,deep/e.txt"]);
    let sel = ctx.select(&ex(&["sub"]), &ex(&["**/*.txt"]), true).unwrap();
    assert_eq!(listing(&sel), ["sub: ,deep"]);
    let sel = ctx
        .select(&ex(&["."]), &ex(&["a", "!a/b/c.txt"]), true)
        .unwrap();
    let rels: Vec<_> = sel.entries().map(|e| e.ctx_path.clone()).collect();
    assert!(rels.contains(&"a/b/c.txt".to_string()) && rels.contains(&"a/b".to_string()));
    // As in BuildKit (moby/buildkit#5489), a file matched by the source
    // itself is not excluded.
    let sel = ctx.select(&ex(&["*.txt"]), &ex(&["a.txt"]), true).unwrap();
    assert_eq!(listing(&sel), ["a.txt: ", "b.txt: "]);
    assert!(matches!(
        ctx.select(&ex(&["."]), &ex(&["["]), true),
        Err(ContextError::Exclude(_))
    ));
}

#[test]
fn context_select_hardlinks_within_a_match() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    write(r, "d/one", "same");
    fs::hard_link(r.join("d/one"), r.join("d/two")).unwrap();
    let ctx = Context::open(r, None).unwrap();
    let sel = select(&ctx, &["d"]).unwrap();
    let kinds: Vec<_> = sel.entries().map(|e| e.kind.clone()).collect();
    assert_eq!(
        kinds,
        [
            EntryKind::Dir,
            EntryKind::File,
            EntryKind::Hardlink(PathBuf::from("one"))
        ]
    );
    // Each match keeps its own links: alone, `d/two` is a file.
    let sel = select(&ctx, &["d/two"]).unwrap();
    assert_eq!(sel.sources[0].entries[0].kind, EntryKind::File);
}

#[test]
fn context_open_prefers_the_dockerfile_ignore_file() {
    let dir = sample();
    let r = dir.path();
    write(r, ".dockerignore", "a.txt\n");
    write(r, "app.Dockerfile", "FROM scratch\n");
    write(r, "app.Dockerfile.dockerignore", "b.txt\n");
    let ctx = Context::open(r, Some(&r.join("app.Dockerfile"))).unwrap();
    assert!(ctx.is_excluded("b.txt") && !ctx.is_excluded("a.txt"));
    let ctx = Context::open(r, Some(&r.join("Dockerfile"))).unwrap();
    assert!(ctx.is_excluded("a.txt") && !ctx.is_excluded("b.txt"));
    let ctx = Context::open(r, None).unwrap();
    assert!(ctx.is_excluded("a.txt"));
}

#[test]
fn context_open_reports_the_bad_ignore_line() {
    let dir = sample();
    write(dir.path(), ".dockerignore", "ok\n\n# c\nbad[\n");
    let err = Context::open(dir.path(), None).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(".dockerignore: line 4: invalid pattern \"bad[\""),
        "{msg}"
    );
    match err {
        ContextError::Dockerignore { source, .. } => assert_eq!(source.line, 4),
        other => panic!("{other:?}"),
    }
}
