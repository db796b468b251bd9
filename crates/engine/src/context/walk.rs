//! [`Context`]: a context directory with its `.dockerignore`, and
//! [`Context::select`], which turns `COPY`/`ADD` sources into a
//! [`Selection`] with BuildKit's rules:
//!
//! - each source is relative to the root (a leading `/` is ignored, `..`
//!   stops at the root); a trailing `/` requires a directory;
//! - wildcards (`*`, `?`, `[...]`, Go's `path.Match` per component) may
//!   match several paths, or none (not an error: BuildKit's
//!   `AllowEmptyWildcard`, its `testEmptyWildcard`); a plain source that
//!   does not exist is [`ContextError::NotFound`];
//! - a directory match stands for its contents (the match's own entry comes
//!   first, with an empty `rel_path`, so the caller can give the
//!   destination its metadata);
//! - `.dockerignore`d paths are invisible, except that an excluded
//!   directory holding a re-included path (`!dir/keep`) appears with just
//!   that path, as in BuildKit's filtered transfer;
//! - `--exclude` patterns apply to paths relative to each match, never to
//!   the match itself (BuildKit does the same: moby/buildkit#5489);
//! - symlinks inside a match are listed as links and never followed; a
//!   match that is itself a symlink is followed inside the root when
//!   `follow_symlink_at_root` (what `COPY` asks for);
//! - only the named paths are `lstat`ed and only matched directories (and
//!   the directories a wildcard goes through) are listed: [`WalkStats`].

use std::collections::HashMap;
use std::fs::{self, Metadata};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::ignore::{MatchState, Matcher, read_dockerignore};
use super::resolve::{self, Found};
use super::{ContextError, IoAt, Result};

/// What kind of file an [`Entry`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    /// A symlink with its target as stored; never followed.
    Symlink(PathBuf),
    /// A second (or later) path of an inode already listed in the same
    /// [`SelectedSource`]: the `rel_path` of the first one.
    Hardlink(PathBuf),
    Fifo,
    Socket,
    /// A character device and its `rdev`.
    CharDevice(u64),
    /// A block device and its `rdev`.
    BlockDevice(u64),
}

/// One path of a selection, with its `lstat`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Relative to the match (empty for the match itself).
    pub rel_path: PathBuf,
    /// Relative to the context root, `/`-separated (`.` for the root): the
    /// real path, after a followed symlink.
    pub ctx_path: String,
    /// Where to read it.
    pub abs_path: PathBuf,
    pub kind: EntryKind,
    /// Permission bits with setuid, setgid and sticky (`mode & 0o7777`).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub dev: u64,
    pub ino: u64,
    pub nlink: u64,
}

/// One path a source matched, with everything below it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectedSource {
    /// Which of the `sources` given to [`Context::select`] matched.
    pub source_index: usize,
    /// The source as written.
    pub source: String,
    /// The matched path relative to the root (`.` for the root), before a
    /// symlink at the match is followed: its base name is what `COPY`
    /// names a file match at the destination.
    pub path: String,
    /// `entries[0]` is the match itself (`rel_path` empty); for a directory
    /// the rest follow in walk order (pre-order, names sorted per dir).
    pub entries: Vec<Entry>,
}

impl SelectedSource {
    /// Whether the match (after following) is a directory, whose contents
    /// are copied.
    pub fn is_dir(&self) -> bool {
        self.entries
            .first()
            .is_some_and(|e| e.kind == EntryKind::Dir)
    }

    /// The last component of [`SelectedSource::path`] (`.` for the root).
    pub fn base_name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }
}

/// How much of the context a selection touched.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WalkStats {
    /// Directories listed.
    pub dirs_read: u64,
    /// Paths `lstat`ed.
    pub lstats: u64,
}

/// The result of [`Context::select`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    /// Every match of every source, in source order.
    pub sources: Vec<SelectedSource>,
    pub stats: WalkStats,
}

impl Selection {
    /// Every entry of every match.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.sources.iter().flat_map(|s| s.entries.iter())
    }
}

/// A build context: a root directory and its `.dockerignore` rules.
#[derive(Debug, Clone)]
pub struct Context {
    root: PathBuf,
    ignore: Matcher,
    ignore_file: Option<PathBuf>,
}

impl Context {
    /// Opens the context at `root`. The ignore file is
    /// `<dockerfile>.dockerignore` beside the Dockerfile when `dockerfile`
    /// is given and that file exists, else `root/.dockerignore` (BuildKit's
    /// `dockerui` order); neither is fine.
    pub fn open(root: &Path, dockerfile: Option<&Path>) -> Result<Context> {
        let root = fs::canonicalize(root).at(root)?;
        if !root.is_dir() {
            return Err(ContextError::NotAContext { path: root });
        }
        // (directory it is read in, name): beside the Dockerfile, then
        // the context's own; each resolved inside its directory.
        let mut candidates = Vec::new();
        if let Some(df) = dockerfile {
            let (dir, name) = super::contained::split_file(df);
            let mut name = name.into_os_string();
            name.push(".dockerignore");
            candidates.push((dir, PathBuf::from(name)));
        }
        candidates.push((root.clone(), PathBuf::from(".dockerignore")));
        for (dir, name) in candidates {
            let path = dir.join(&name);
            match super::contained::read_in_dir(&dir, &name) {
                Ok(bytes) => {
                    let text = String::from_utf8_lossy(&bytes);
                    let patterns =
                        read_dockerignore(&text).map_err(|source| ContextError::Dockerignore {
                            path: path.clone(),
                            source,
                        })?;
                    return Ok(Context {
                        root,
                        ignore: Matcher::new(patterns),
                        ignore_file: Some(path),
                    });
                }
                Err(ContextError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Context {
            root,
            ignore: Matcher::default(),
            ignore_file: None,
        })
    }

    /// A context at `root` with the given rules (no ignore file is read).
    pub fn with_matcher(root: &Path, ignore: Matcher) -> Result<Context> {
        let root = fs::canonicalize(root).at(root)?;
        if !root.is_dir() {
            return Err(ContextError::NotAContext { path: root });
        }
        Ok(Context {
            root,
            ignore,
            ignore_file: None,
        })
    }

    /// A context sent as a tar stream (`hoist build -`): unpacked safely
    /// into `scratch` (created if missing; must be empty), then opened.
    /// `dockerfile` is the Dockerfile's path inside the tar, if any, for
    /// its `<Dockerfile>.dockerignore`. gzip and zstd streams are
    /// recognised by their magic bytes.
    pub fn from_tar<R: Read>(
        reader: R,
        scratch: &Path,
        dockerfile: Option<&Path>,
    ) -> Result<Context> {
        super::untar::extract(reader, scratch)?;
        let df = dockerfile.map(|d| {
            let rel = super::gopath::clean(&format!("/{}", d.to_string_lossy()));
            scratch.join(rel.trim_start_matches('/'))
        });
        Context::open(scratch, df.as_deref())
    }

    /// The canonical root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The `.dockerignore` rules.
    pub fn ignore(&self) -> &Matcher {
        &self.ignore
    }

    /// The ignore file read, if any.
    pub fn ignore_file(&self) -> Option<&Path> {
        self.ignore_file.as_deref()
    }

    /// Whether `.dockerignore` excludes `rel` (relative to the root).
    pub fn is_excluded(&self, rel: &str) -> bool {
        self.ignore.matches_or_parent_matches(rel)
    }

    /// Resolves `COPY`/`ADD` sources (see the module docs). `excludes` are
    /// `--exclude` patterns.
    pub fn select(
        &self,
        sources: &[String],
        excludes: &[String],
        follow_symlink_at_root: bool,
    ) -> Result<Selection> {
        let excludes = Matcher::from_strings(excludes).map_err(ContextError::Exclude)?;
        let mut sel = Selection::default();
        for (index, source) in sources.iter().enumerate() {
            let split = resolve::split_source(source);
            let hidden = |rel: &str| self.ignore.matches_or_parent_matches(rel);
            let mut matches = Vec::new();
            if split.wild.is_empty() {
                let follow = follow_symlink_at_root || split.dir_only;
                let found = resolve::resolve(
                    &self.root,
                    &split.fixed,
                    follow,
                    source,
                    &hidden,
                    &mut sel.stats,
                )?;
                let found = found.ok_or_else(|| not_found(source))?;
                // Named as written (BuildKit uses the unfollowed base name).
                let path = if split.fixed.is_empty() {
                    ".".to_string()
                } else {
                    split.fixed.join("/")
                };
                matches.push((path, found));
            } else {
                let Some(base) = resolve::resolve(
                    &self.root,
                    &split.fixed,
                    true,
                    source,
                    &hidden,
                    &mut sel.stats,
                )?
                else {
                    return Err(not_found(source));
                };
                if base.meta.is_dir() {
                    let prune = |rel: &str| hidden(rel) && !self.ignore.may_reinclude_below(rel);
                    matches = resolve::expand(
                        &self.root,
                        base.parts,
                        &split.wild,
                        source,
                        &prune,
                        &mut sel.stats,
                    )?
                    .into_iter()
                    .map(|m| (m.rel(), m))
                    .collect();
                }
            }
            let wildcard = !split.wild.is_empty();
            for (path, m) in matches {
                let picked =
                    self.pick(m, source, follow_symlink_at_root, &excludes, &mut sel.stats)?;
                match picked {
                    Some(entries) => {
                        // `file/` fails in BuildKit's copy (ENOTDIR); a
                        // wildcard's trailing `/` is cleaned away first.
                        if split.dir_only && !wildcard && entries[0].kind != EntryKind::Dir {
                            return Err(ContextError::NotADirectory {
                                source_path: source.clone(),
                            });
                        }
                        sel.sources.push(SelectedSource {
                            source_index: index,
                            source: source.clone(),
                            path,
                            entries,
                        });
                    }
                    None if wildcard => {}
                    None => return Err(not_found(source)),
                }
            }
        }
        Ok(sel)
    }

    /// The entries of one match, or `None` when `.dockerignore` hides it.
    fn pick(
        &self,
        m: Found,
        source: &str,
        follow: bool,
        excludes: &Matcher,
        stats: &mut WalkStats,
    ) -> Result<Option<Vec<Entry>>> {
        let hidden = |rel: &str| self.ignore.matches_or_parent_matches(rel);
        let rel = m.rel();
        let target = if follow && m.meta.file_type().is_symlink() {
            if hidden(&rel) {
                return Ok(None);
            }
            let found = resolve::resolve(&self.root, &m.parts, true, source, &hidden, stats)?;
            found.ok_or_else(|| not_found(source))?
        } else {
            m
        };
        let ctx_path = target.rel();
        let abs = resolve::join(&self.root, &target.parts);
        let root_entry = entry(PathBuf::new(), ctx_path.clone(), abs.clone(), &target.meta)?;
        let excluded = hidden(&ctx_path);
        if root_entry.kind != EntryKind::Dir {
            return Ok((!excluded).then(|| vec![root_entry]));
        }
        if excluded && !self.ignore.may_reinclude_below(&ctx_path) {
            return Ok(None);
        }
        let mut state = MatchState::default();
        if ctx_path != "." {
            let mut prefix = String::new();
            for part in &target.parts {
                if !prefix.is_empty() {
                    prefix.push('/');
                }
                prefix.push_str(part);
                state = self.ignore.matches_with_parent(&prefix, &state).1;
            }
        }
        let mut walker = Walker {
            ignore: &self.ignore,
            excludes,
            out: vec![root_entry],
            inodes: HashMap::new(),
            stats,
        };
        let any = walker.dir(
            &abs,
            &ctx_path,
            Path::new(""),
            &state,
            &MatchState::default(),
        )?;
        if excluded && !any {
            return Ok(None);
        }
        Ok(Some(walker.out))
    }
}

fn not_found(source: &str) -> ContextError {
    ContextError::NotFound {
        source_path: source.to_string(),
    }
}

struct Walker<'a> {
    ignore: &'a Matcher,
    excludes: &'a Matcher,
    out: Vec<Entry>,
    inodes: HashMap<(u64, u64), PathBuf>,
    stats: &'a mut WalkStats,
}

impl Walker<'_> {
    /// Lists `abs` (context path `ctx`, match-relative `rel`) into `out`;
    /// whether anything was kept.
    fn dir(
        &mut self,
        abs: &Path,
        ctx: &str,
        rel: &Path,
        ign: &MatchState,
        exc: &MatchState,
    ) -> Result<bool> {
        self.stats.dirs_read += 1;
        let mut children = Vec::new();
        for item in fs::read_dir(abs).at(abs)? {
            let item = item.at(abs)?;
            let is_dir = item.file_type().at(item.path())?.is_dir();
            children.push((item.file_name(), is_dir, item));
        }
        children.sort_by(|a, b| a.0.cmp(&b.0));
        let mut any = false;
        for (name, is_dir, item) in children {
            let lossy = name.to_string_lossy();
            let child_ctx = if ctx == "." {
                lossy.to_string()
            } else {
                format!("{ctx}/{lossy}")
            };
            let child_rel = rel.join(&name);
            let rel_str = child_rel.to_string_lossy();
            let (ign_hit, ign_state) = self.ignore.matches_with_parent(&child_ctx, ign);
            let (exc_hit, exc_state) = if self.excludes.is_empty() {
                (false, MatchState::default())
            } else {
                self.excludes.matches_with_parent(&rel_str, exc)
            };
            let excluded = ign_hit || exc_hit;
            if excluded
                && (!is_dir
                    || (ign_hit && !self.ignore.may_reinclude_below(&child_ctx))
                    || (exc_hit && !self.excludes.may_reinclude_below(&rel_str)))
            {
                continue;
            }
            let child_abs = abs.join(&name);
            // fstatat on the open directory: no path walk per entry.
            self.stats.lstats += 1;
            let meta = match item.metadata() {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e).at(child_abs),
            };
            let mut e = entry(
                child_rel.clone(),
                child_ctx.clone(),
                child_abs.clone(),
                &meta,
            )?;
            if e.kind == EntryKind::File && e.nlink > 1 {
                match self.inodes.get(&(e.dev, e.ino)) {
                    Some(first) => e.kind = EntryKind::Hardlink(first.clone()),
                    None => {
                        self.inodes.insert((e.dev, e.ino), child_rel.clone());
                    }
                }
            }
            let is_dir = e.kind == EntryKind::Dir;
            let mark = self.out.len();
            self.out.push(e);
            let kept = if is_dir {
                let inner = self.dir(&child_abs, &child_ctx, &child_rel, &ign_state, &exc_state)?;
                inner || !excluded
            } else {
                true
            };
            if kept {
                any = true;
            } else {
                self.out.truncate(mark);
            }
        }
        Ok(any)
    }
}

fn nanos(secs: i64, nsec: i64) -> i64 {
    secs.saturating_mul(1_000_000_000).saturating_add(nsec)
}

/// An [`Entry`] from an `lstat`.
pub(crate) fn entry(
    rel: PathBuf,
    ctx_path: String,
    abs: PathBuf,
    meta: &Metadata,
) -> Result<Entry> {
    let ft = meta.file_type();
    let kind = if ft.is_dir() {
        EntryKind::Dir
    } else if ft.is_symlink() {
        EntryKind::Symlink(fs::read_link(&abs).at(&abs)?)
    } else if ft.is_file() {
        EntryKind::File
    } else if ft.is_fifo() {
        EntryKind::Fifo
    } else if ft.is_socket() {
        EntryKind::Socket
    } else if ft.is_char_device() {
        EntryKind::CharDevice(meta.rdev())
    } else {
        EntryKind::BlockDevice(meta.rdev())
    };
    Ok(Entry {
        rel_path: rel,
        ctx_path,
        abs_path: abs,
        kind,
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
        size: meta.size(),
        mtime_ns: nanos(meta.mtime(), meta.mtime_nsec()),
        ctime_ns: nanos(meta.ctime(), meta.ctime_nsec()),
        dev: meta.dev(),
        ino: meta.ino(),
        nlink: meta.nlink(),
    })
}
