//! The repository's copy of the conformance data (`testdata/conformance/`)
//! is the team's shared set: where `../shared/conformance` sits beside the
//! checkout (the developers' machines and CI), every file of it must be in
//! the copy with the same bytes, and the copy must hold nothing else but
//! its own README. On a bare clone there is nothing to compare, and the
//! conformance tests run on the copy alone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn files(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_path_buf();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

#[test]
fn the_copy_is_the_shared_set() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let copy = files(&repo.join("testdata/conformance"));
    assert!(
        copy.len() > 80,
        "testdata/conformance holds the cases ({} files)",
        copy.len()
    );
    let shared = repo.join("../shared/conformance");
    if !shared.is_dir() {
        eprintln!("no ../shared/conformance beside the checkout: the copy is used as it is");
        return;
    }
    let shared = files(&shared);
    let readme = PathBuf::from("README.md");
    let differ: Vec<_> = shared
        .iter()
        .filter(|(p, b)| **p != readme && copy.get(*p) != Some(*b))
        .map(|(p, _)| p.clone())
        .collect();
    let extra: Vec<_> = copy.keys().filter(|p| !shared.contains_key(*p)).collect();
    assert!(
        differ.is_empty() && extra.is_empty(),
        "testdata/conformance differs from ../shared/conformance: changed or missing {differ:?}, \
         extra {extra:?}; run scripts/refresh-conformance"
    );
}
