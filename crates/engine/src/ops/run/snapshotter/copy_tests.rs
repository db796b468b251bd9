//! The copying snapshotter's merge and diff without a sandbox (as root:
//! whiteouts are device nodes, opaque markers `trusted.` xattrs).

use super::*;

fn put(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, text).unwrap();
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn is_whiteout_at(p: &Path) -> bool {
    fs::symlink_metadata(p).is_ok_and(|m| is_whiteout(&m))
}

/// Lower `d/{x,y}`, `e/only`, `k/{a,b}`, `f`; the merged copy after
/// `rm -rf d && mkdir d && echo > d/x`, `rm e/only`, `rm k/a`.
fn changed_copy(t: &Path) -> (Vec<PathBuf>, PathBuf, Merged) {
    let base = t.join("base");
    for rel in ["d/x", "d/y", "e/only", "k/a", "k/b", "f"] {
        put(&base, rel, rel);
    }
    let merged = t.join("merged");
    fs::create_dir(&merged).unwrap();
    let state = merge(std::slice::from_ref(&base), &merged).unwrap();
    // Past the copy's clock tick, as a step always is.
    std::thread::sleep(Duration::from_millis(30));
    fs::remove_dir_all(merged.join("d")).unwrap();
    put(&merged, "d/x", "new");
    fs::remove_file(merged.join("e/only")).unwrap();
    fs::remove_file(merged.join("k/a")).unwrap();
    (vec![base], merged, state)
}

#[test]
fn copy_merge_reads_whiteouts_and_opaque_dirs_as_overlayfs() {
    let t = tempfile::tempdir().unwrap();
    let (base, top) = (t.path().join("base"), t.path().join("top"));
    for rel in ["a/keep", "a/gone", "o/old", "f", "l/in"] {
        put(&base, rel, "base");
    }
    put(&top, "o/new", "top");
    put(&top, "a/added", "top");
    put(&top, "n", "top");
    for rel in ["a/gone", "f"] {
        let p = top.join(rel);
        rustix::fs::mknodat(CWD, &p, FileType::CharacterDevice, Mode::empty(), 0).unwrap();
    }
    rustix::fs::lsetxattr(
        top.join("o"),
        "trusted.overlay.opaque",
        b"y",
        XattrFlags::empty(),
    )
    .unwrap();
    std::os::unix::fs::symlink("/", top.join("l")).unwrap();
    let merged = t.path().join("merged");
    fs::create_dir(&merged).unwrap();
    merge(&[top, base], &merged).unwrap();
    assert_eq!(names(&merged), ["a", "l", "n", "o"]);
    assert_eq!(names(&merged.join("a")), ["added", "keep"]);
    assert_eq!(names(&merged.join("o")), ["new"]);
    assert_eq!(fs::read_link(merged.join("l")).unwrap(), Path::new("/"));
    assert!(
        !is_opaque(&merged.join("o")),
        "overlay's own xattrs stay behind"
    );
}

#[test]
fn copy_diff_knows_a_remade_dir_by_its_birth_time() {
    let t = tempfile::tempdir().unwrap();
    let (lowers, merged, state) = changed_copy(t.path());
    assert!(state.done.is_some(), "this filesystem keeps birth times");
    let upper = t.path().join("upper");
    fs::create_dir(&upper).unwrap();
    diff(&merged, &lowers, &upper, &state).unwrap();
    assert!(is_opaque(&upper.join("d")));
    assert_eq!(names(&upper.join("d")), ["x"]);
    assert!(is_whiteout_at(&upper.join("e/only")) && !is_opaque(&upper.join("e")));
    assert!(is_whiteout_at(&upper.join("k/a")) && !is_opaque(&upper.join("k")));
    assert_eq!(names(&upper), ["d", "e", "k"]);
    assert!(!merged.exists());
}

#[test]
fn copy_diff_without_birth_times_goes_by_what_shows_through() {
    let t = tempfile::tempdir().unwrap();
    let (lowers, merged, mut state) = changed_copy(t.path());
    state.done = None;
    let upper = t.path().join("upper");
    fs::create_dir(&upper).unwrap();
    diff(&merged, &lowers, &upper, &state).unwrap();
    assert!(is_opaque(&upper.join("d")));
    assert_eq!(names(&upper.join("d")), ["x"]);
    // Emptied: opaque too (the same tree once applied).
    assert!(is_opaque(&upper.join("e")) && names(&upper.join("e")).is_empty());
    assert!(is_whiteout_at(&upper.join("k/a")) && !is_opaque(&upper.join("k")));
}

/// A directory wrongly taken for a new one (a clock stepped back)
/// still loses nothing: all of it goes up under the opaque marker.
#[test]
fn copy_diff_of_an_opaque_dir_keeps_its_unchanged_files() {
    let t = tempfile::tempdir().unwrap();
    let (lowers, merged, mut state) = changed_copy(t.path());
    state.done = Some(SystemTime::UNIX_EPOCH);
    let upper = t.path().join("upper");
    fs::create_dir(&upper).unwrap();
    diff(&merged, &lowers, &upper, &state).unwrap();
    assert!(is_opaque(&upper.join("k")));
    assert_eq!(names(&upper.join("k")), ["b"]);
    assert_eq!(fs::read_to_string(upper.join("k/b")).unwrap(), "k/b");
    // The root is never opaque: `f` stays below.
    assert_eq!(names(&upper), ["d", "e", "k"]);
}
