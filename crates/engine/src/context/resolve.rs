//! Finding `COPY` sources inside the context root without leaving it.
//!
//! A source is cleaned as `path.Join("/", src)` (so `..` stops at the root
//! and a leading `/` means the root), split into the part before the first
//! wildcard component and the rest (BuildKit's `splitWildcards`), and
//! resolved component by component with `lstat`: a symlink met on the way is
//! followed as if the root were `/` (containerd's `RootPath`), so an
//! absolute or `../..` target lands inside the context again. Wildcard
//! components are matched with Go's `path.Match` against the names of one
//! directory level at a time, so only the directories on the way are read.

use std::fs::{self, Metadata};
use std::io;
use std::path::Path;

use super::gopath;
use super::walk::WalkStats;
use super::{ContextError, IoAt, Result};

/// Symlinks followed while resolving one path before giving up (Linux's
/// limit is 40; containerd's `RootPath` allows 255).
const MAX_LINKS: usize = 255;

/// A source path split for lookup.
#[derive(Debug)]
pub(crate) struct SourcePath {
    /// Components before the first one with a wildcard.
    pub fixed: Vec<String>,
    /// The wildcard components (empty for a plain path).
    pub wild: Vec<String>,
    /// Written with a trailing `/` or `/.`: must be a directory.
    pub dir_only: bool,
}

/// Cleans a source as BuildKit does and splits it.
pub(crate) fn split_source(source: &str) -> SourcePath {
    let dir_only = source.ends_with('/') || source.ends_with("/.");
    let cleaned = gopath::clean(&format!("/{source}"));
    let mut fixed = Vec::new();
    let mut wild = Vec::new();
    for part in cleaned.split('/').filter(|p| !p.is_empty()) {
        if wild.is_empty() && !gopath::has_wildcards(part) {
            fixed.push(part.to_string());
        } else {
            wild.push(part.to_string());
        }
    }
    SourcePath {
        fixed,
        wild,
        dir_only,
    }
}

/// A path found inside the root.
#[derive(Debug)]
pub(crate) struct Found {
    /// Components relative to the root (empty for the root itself).
    pub parts: Vec<String>,
    /// `lstat` of the path.
    pub meta: Metadata,
}

impl Found {
    pub(crate) fn rel(&self) -> String {
        if self.parts.is_empty() {
            ".".to_string()
        } else {
            self.parts.join("/")
        }
    }
}

pub(crate) fn lstat(path: &Path, stats: &mut WalkStats) -> Result<Option<Metadata>> {
    stats.lstats += 1;
    match fs::symlink_metadata(path) {
        Ok(m) => Ok(Some(m)),
        Err(e) if is_missing(&e) => Ok(None),
        Err(e) => Err(e).at(path),
    }
}

fn is_missing(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::NotFound
        || e.raw_os_error() == Some(rustix::io::Errno::NOTDIR.raw_os_error())
}

/// Resolves `parts` under `root`, following symlinks inside the root (the
/// last one only with `follow_last`). `hidden(rel)` says whether a symlink
/// is excluded from the context, which makes it unusable. `Ok(None)` when
/// the path does not exist (or goes through a non-directory).
pub(crate) fn resolve(
    root: &Path,
    parts: &[String],
    follow_last: bool,
    source: &str,
    hidden: &dyn Fn(&str) -> bool,
    stats: &mut WalkStats,
) -> Result<Option<Found>> {
    let mut pending: Vec<String> = parts.iter().rev().cloned().collect();
    let mut cur: Vec<String> = Vec::new();
    let mut links = 0;
    let mut meta = match lstat(root, stats)? {
        Some(m) if m.is_dir() => m,
        _ => {
            return Err(ContextError::NotAContext {
                path: root.to_path_buf(),
            });
        }
    };
    while let Some(part) = pending.pop() {
        match part.as_str() {
            "" | "." => continue,
            ".." => {
                cur.pop();
                meta = match lstat(&join(root, &cur), stats)? {
                    Some(m) => m,
                    None => return Ok(None),
                };
                continue;
            }
            _ => {}
        }
        cur.push(part);
        let abs = join(root, &cur);
        let Some(m) = lstat(&abs, stats)? else {
            return Ok(None);
        };
        let last = pending.iter().all(|p| p.is_empty() || p == ".");
        if m.file_type().is_symlink() && (!last || follow_last) {
            if hidden(&cur.join("/")) {
                return Ok(None);
            }
            links += 1;
            if links > MAX_LINKS {
                return Err(ContextError::SymlinkLoop {
                    source_path: source.to_string(),
                });
            }
            let target = fs::read_link(&abs).at(&abs)?;
            let target = target.to_string_lossy();
            cur.pop();
            if target.starts_with('/') {
                cur.clear();
            }
            pending.extend(target.split('/').rev().map(str::to_string));
            meta = match lstat(&join(root, &cur), stats)? {
                Some(m) => m,
                None => return Ok(None),
            };
            continue;
        }
        if !last && !m.is_dir() {
            return Ok(None);
        }
        meta = m;
    }
    Ok(Some(Found { parts: cur, meta }))
}

/// `root` joined with `parts`.
pub(crate) fn join(root: &Path, parts: &[String]) -> std::path::PathBuf {
    let mut p = root.to_path_buf();
    p.extend(parts);
    p
}

/// Expands the wildcard components below `base` (a resolved directory),
/// level by level, in BuildKit's walk order (names sorted per directory).
/// Symlinks are not descended. `prune(rel)` says an intermediate
/// directory cannot hold anything visible.
pub(crate) fn expand(
    root: &Path,
    base: Vec<String>,
    wild: &[String],
    source: &str,
    prune: &dyn Fn(&str) -> bool,
    stats: &mut WalkStats,
) -> Result<Vec<Found>> {
    let mut out = Vec::new();
    expand_level(root, base, wild, source, prune, stats, &mut out)?;
    Ok(out)
}

fn expand_level(
    root: &Path,
    dir: Vec<String>,
    wild: &[String],
    source: &str,
    prune: &dyn Fn(&str) -> bool,
    stats: &mut WalkStats,
    out: &mut Vec<Found>,
) -> Result<()> {
    let Some((pattern, rest)) = wild.split_first() else {
        return Ok(());
    };
    let abs = join(root, &dir);
    stats.dirs_read += 1;
    let mut names = Vec::new();
    for entry in fs::read_dir(&abs).at(&abs)? {
        names.push(entry.at(&abs)?.file_name());
    }
    names.sort();
    for name in names {
        let name = name.to_string_lossy().into_owned();
        let hit = gopath::glob_match(pattern, &name).map_err(|_| ContextError::BadSource {
            source_path: source.to_string(),
            reason: "syntax error in pattern".into(),
        })?;
        if !hit {
            continue;
        }
        let mut parts = dir.clone();
        parts.push(name);
        let Some(meta) = lstat(&join(root, &parts), stats)? else {
            continue;
        };
        if rest.is_empty() {
            out.push(Found { parts, meta });
        } else if meta.is_dir() && !prune(&parts.join("/")) {
            expand_level(root, parts, rest, source, prune, stats, out)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::split_source;

    #[test]
    fn sources_are_clamped_and_split() {
        let s = split_source("../../a/./b/*.txt");
        assert_eq!(s.fixed, ["a", "b"]);
        assert_eq!(s.wild, ["*.txt"]);
        assert!(!s.dir_only);
        let s = split_source("/dir/");
        assert_eq!(s.fixed, ["dir"]);
        assert!(s.dir_only && s.wild.is_empty());
        let s = split_source(".");
        assert!(s.fixed.is_empty() && s.wild.is_empty());
        let s = split_source("a*/b/c");
        assert!(s.fixed.is_empty());
        assert_eq!(s.wild, ["a*", "b", "c"]);
    }
}
