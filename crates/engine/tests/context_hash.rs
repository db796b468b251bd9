//! Content hashes of selections (BuildKit's contenthash rules: type, mode,
//! link target, content, never times or owners) and the persistent hash
//! cache, including the `touch -r` case BuildKit misses
//! (moby/buildkit#1368).

use std::fs::{self, File, FileTimes};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::Path;
use std::time::{Duration, SystemTime};

use hoist_engine::context::{
    Context, HashCache, PathChange, Selection, SelectionHash, changed_paths, hash_selection,
};
use hoist_engine::store::Store;
use tempfile::TempDir;

fn write(root: &Path, rel: &str, body: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, body).unwrap();
}

fn set_mtime(path: &Path, t: SystemTime) {
    File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_times(FileTimes::new().set_modified(t).set_accessed(t))
        .unwrap();
}

fn tree() -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    write(r, "app/main.py", "print('hi')\n");
    write(r, "app/lib/util.py", "x = 1\n");
    write(r, "app/README", "readme");
    symlink("lib/util.py", r.join("app/link")).unwrap();
    dir
}

fn select(root: &Path, sources: &[&str]) -> Selection {
    let ctx = Context::open(root, None).unwrap();
    let sources: Vec<String> = sources.iter().map(|s| s.to_string()).collect();
    ctx.select(&sources, &[], true).unwrap()
}

fn hash(root: &Path, sources: &[&str]) -> SelectionHash {
    hash_selection(&select(root, sources), &HashCache::in_memory()).unwrap()
}

#[test]
fn context_hash_ignores_times_and_owners() {
    let a = tree();
    let b = tree();
    let old = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    for f in ["app/main.py", "app/lib/util.py", "app/README"] {
        set_mtime(&b.path().join(f), old);
    }
    if rustix::process::geteuid().is_root() {
        std::os::unix::fs::chown(b.path().join("app/main.py"), Some(1234), Some(5678)).unwrap();
    }
    let ha = hash(a.path(), &["app"]);
    assert_eq!(ha, hash(b.path(), &["app"]));
    // Stable from one run to the next (parallel hashing, fresh caches).
    assert_eq!(ha, hash(a.path(), &["app"]));
    // The same file from another directory gives the same key.
    write(a.path(), "other/main.py", "print('hi')\n");
    assert_eq!(
        hash(a.path(), &["app/main.py"]).digest,
        hash(a.path(), &["other/main.py"]).digest
    );
}

#[test]
fn context_hash_sees_mode_link_target_content_and_names() {
    let dir = tree();
    let r = dir.path();
    let base = hash(r, &["app"]);

    fs::set_permissions(r.join("app/main.py"), fs::Permissions::from_mode(0o755)).unwrap();
    let chmod = hash(r, &["app"]);
    assert_ne!(chmod.digest, base.digest, "mode change");
    fs::set_permissions(r.join("app/main.py"), fs::Permissions::from_mode(0o4755)).unwrap();
    let setuid = hash(r, &["app"]);
    assert_ne!(setuid.digest, chmod.digest, "setuid bit");
    fs::set_permissions(r.join("app/main.py"), fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(hash(r, &["app"]), base, "back to the start");

    fs::remove_file(r.join("app/link")).unwrap();
    symlink("main.py", r.join("app/link")).unwrap();
    let relinked = hash(r, &["app"]);
    assert_ne!(relinked.digest, base.digest, "symlink target change");
    assert_eq!(
        changed_paths(&base.entries, &relinked.entries),
        [PathChange::Modified("app/link".into())]
    );
    fs::remove_file(r.join("app/link")).unwrap();
    symlink("lib/util.py", r.join("app/link")).unwrap();

    write(r, "app/lib/util.py", "x = 2\n");
    let edited = hash(r, &["app"]);
    assert_ne!(edited.digest, base.digest, "content change");
    assert_eq!(
        changed_paths(&base.entries, &edited.entries),
        [PathChange::Modified("app/lib/util.py".into())]
    );
    write(r, "app/lib/util.py", "x = 1\n");

    fs::rename(r.join("app/README"), r.join("app/README.md")).unwrap();
    let renamed = hash(r, &["app"]);
    assert_ne!(renamed.digest, base.digest, "rename");
    assert_eq!(
        changed_paths(&base.entries, &renamed.entries),
        [
            PathChange::Removed("app/README".into()),
            PathChange::Added("app/README.md".into())
        ]
    );
    fs::rename(r.join("app/README.md"), r.join("app/README")).unwrap();
    assert_eq!(hash(r, &["app"]), base);

    // Extended attributes count, where the filesystem has them.
    let set = rustix::fs::setxattr(
        r.join("app/README"),
        "user.hoist",
        b"1",
        rustix::fs::XattrFlags::empty(),
    );
    if set.is_ok() {
        assert_ne!(hash(r, &["app"]).digest, base.digest, "xattr");
    }
}

#[test]
fn context_hash_never_reads_through_links_out_of_the_context() {
    let dir = tree();
    let r = dir.path();
    symlink("/etc/passwd", r.join("app/passwd")).unwrap();
    symlink("../../../..", r.join("app/up")).unwrap();
    let sel = select(r, &["."]);
    let files = sel
        .entries()
        .filter(|e| e.kind == hoist_engine::context::EntryKind::File)
        .count() as u64;
    let cache = HashCache::in_memory();
    hash_selection(&sel, &cache).unwrap();
    // Only the context's own regular files were opened.
    assert_eq!(files, 3);
    assert_eq!(cache.stats().files_read, files);
    assert_eq!(
        cache.stats().bytes_read,
        ("print('hi')\n".len() + "x = 1\n".len() + "readme".len()) as u64
    );
}

#[test]
fn context_hash_cache_rebuild_reads_nothing() {
    let dir = tree();
    let r = dir.path();
    let state = tempfile::tempdir().unwrap();
    let file = state.path().join("hashes");
    for i in 0..100 {
        write(r, &format!("app/many/f{i}"), &format!("file {i}"));
    }
    let mut cache = HashCache::at_file(&file).unwrap();
    cache.set_racy_margin(Duration::ZERO);
    let first = hash_selection(&select(r, &["app"]), &cache).unwrap();
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.files_read), (0, 103));
    cache.save().unwrap();
    assert!(file.exists());

    let cache = HashCache::at_file(&file).unwrap();
    let again = hash_selection(&select(r, &["app"]), &cache).unwrap();
    assert_eq!(again, first);
    let stats = cache.stats();
    assert_eq!(stats.files_read, 0, "nothing re-hashed");
    assert_eq!(stats.bytes_read, 0);
    assert_eq!(stats.misses, 0);
    assert!(stats.hits >= 103);

    // One changed file: one read.
    write(r, "app/many/f7", "changed!");
    let cache = HashCache::at_file(&file).unwrap();
    let changed = hash_selection(&select(r, &["app"]), &cache).unwrap();
    assert_ne!(changed.digest, first.digest);
    assert_eq!(cache.stats().files_read, 1);
    assert_eq!(
        changed_paths(&first.entries, &changed.entries),
        [PathChange::Modified("app/many/f7".into()),]
    );
}

/// moby/buildkit#1368: same size, same mtime, different content. Only the
/// ctime tells, and hoist keys on it.
#[test]
fn context_hash_cache_touch_r_still_invalidates() {
    let dir = tempfile::tempdir().unwrap();
    let r = dir.path();
    write(r, "f", "aaaa");
    let mtime = fs::metadata(r.join("f")).unwrap().modified().unwrap();
    let state = tempfile::tempdir().unwrap();
    let file = state.path().join("hashes");
    let mut cache = HashCache::at_file(&file).unwrap();
    cache.set_racy_margin(Duration::ZERO);
    let before = hash_selection(&select(r, &["f"]), &cache).unwrap();
    cache.save().unwrap();

    std::thread::sleep(Duration::from_millis(20));
    write(r, "f", "bbbb");
    set_mtime(&r.join("f"), mtime); // touch -r: mtime put back
    let meta = fs::metadata(r.join("f")).unwrap();
    assert_eq!((meta.len(), meta.modified().unwrap()), (4, mtime));

    let cache = HashCache::at_file(&file).unwrap();
    let after = hash_selection(&select(r, &["f"]), &cache).unwrap();
    assert_ne!(
        after.digest, before.digest,
        "a stale hash would hide the edit"
    );
    assert_eq!(cache.stats().files_read, 1);
    assert_eq!(cache.stats().hits, 0);
}

/// Files changed just before the cache was opened are hashed but not
/// persisted: a write in the same clock tick as our read would leave all
/// five stat values unchanged.
#[test]
fn context_hash_cache_does_not_persist_racy_files() {
    let dir = tree();
    let r = dir.path();
    let state = tempfile::tempdir().unwrap();
    let file = state.path().join("hashes");
    let cache = HashCache::at_file(&file).unwrap(); // default 1 s margin
    hash_selection(&select(r, &["app"]), &cache).unwrap();
    cache.save().unwrap();
    let cache = HashCache::at_file(&file).unwrap();
    hash_selection(&select(r, &["app"]), &cache).unwrap();
    assert_eq!(cache.stats().files_read, 3, "fresh files are read again");
}

#[test]
fn context_hash_cache_lives_in_the_store() {
    let dir = tree();
    let store_dir = tempfile::tempdir().unwrap();
    let store = Store::open(store_dir.path().join("store")).unwrap();
    let ctx = Context::open(dir.path(), None).unwrap();
    let sel = ctx.select(&["app".to_string()], &[], true).unwrap();
    let mut cache = HashCache::for_context(&store, ctx.root()).unwrap();
    cache.set_racy_margin(Duration::ZERO);
    let first = hash_selection(&sel, &cache).unwrap();
    cache.save().unwrap();
    let cache = HashCache::for_context(&store, ctx.root()).unwrap();
    assert_eq!(hash_selection(&sel, &cache).unwrap(), first);
    assert_eq!(cache.stats().files_read, 0);
    assert!(!cache.is_empty());
    // The record is found whichever spelling of the root is given.
    let spelled = dir.path().join("app/..");
    assert_eq!(
        HashCache::for_context(&store, &spelled).unwrap().len(),
        cache.len()
    );
    // Another context root has its own (empty) cache.
    let other = tree();
    let cache = HashCache::for_context(&store, other.path()).unwrap();
    assert!(cache.is_empty());
    // A corrupt record is ignored, not an error.
    store
        .put_cache_record(&HashCache::store_key(ctx.root()), b"garbage")
        .unwrap();
    let cache = HashCache::for_context(&store, ctx.root()).unwrap();
    assert!(cache.is_empty());
}
