//! fsutil's copier, planned into the overlay: where a source lands
//! (`Copy` and `prepareTargetDir`), which parents are created (`MkdirAll`),
//! and how a directory's contents are merged (`copy`, `copyDirectory`,
//! include/exclude patterns with delayed parent creation), with the
//! metadata `copyFileInfo` gives each entry.

use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::emit::Sink;
use super::pattern::{Matcher, ParentInfo};
use super::plan::Op;
use super::vfs::{Found, Key, Kind, Meta, Node, Payload, StatKind, read_xattrs, stat_kind};
use super::{FileOpError, SourceOwner};

/// A directory met while walking a source, created late when only some of
/// its contents are included (fsutil's `parentDirs`).
struct Pending {
    src: std::path::PathBuf,
    target: Key,
    copied: bool,
}

/// What a top-level source is once read.
enum Top {
    Dir,
    Entry(Kind, Meta),
    /// Nothing to copy (a socket from another stage).
    Skip,
}

impl<S: Sink> Op<'_, S> {
    /// The `--chown` ids, or the source's own (kept or reset to 0:0).
    fn owner(&self, md: &Metadata, owner: SourceOwner) -> (u32, u32) {
        match (self.chown, owner) {
            (Some(ids), _) => ids,
            (None, SourceOwner::Keep) => (md.uid(), md.gid()),
            (None, SourceOwner::Root) => (0, 0),
        }
    }

    /// `copyFileInfo`: owner, `--chmod` (never on symlinks), times, xattrs.
    fn copied_meta(&mut self, md: &Metadata, path: &Path, owner: SourceOwner) -> Meta {
        let mut meta = Meta::from_stat(md);
        (meta.uid, meta.gid) = self.owner(md, owner);
        if !md.file_type().is_symlink() {
            meta.mode = self.mode.apply(md.mode());
        }
        match read_xattrs(path) {
            Ok(x) => meta.xattrs = x,
            Err(e) => self
                .report
                .warnings
                .push(format!("xattrs of {} not copied: {e}", path.display())),
        }
        meta
    }

    /// The metadata of a directory `MkdirAll` creates.
    fn created_dir_meta(&self) -> Meta {
        let (uid, gid) = self.chown.unwrap_or((0, 0));
        Meta {
            mode: self.mode.created_dir_mode(),
            uid,
            gid,
            mtime: self.now.0,
            nsec: self.now.1,
            xattrs: Default::default(),
        }
    }

    pub(crate) fn resolve_dest(&self, path: &[u8], follow_last: bool) -> Result<Key, FileOpError> {
        self.vfs
            .resolve(&Key::root(), path, follow_last)
            .map_err(|e| self.resolve_error(e, Path::new("/")))
    }

    fn lookup(&self, key: &Key) -> Result<Found, FileOpError> {
        self.vfs
            .lookup(key)
            .map_err(|e| self.io("inspecting", &self.vfs.shown_path(key), e))
    }

    /// fsutil's `MkdirAll` on a resolved key: missing directories are
    /// planned with the created-dir mode, owner and time.
    pub(crate) fn mkdir_all(&mut self, key: &Key, meta: &Meta) -> Result<(), FileOpError> {
        let mut all = key.ancestors();
        if !key.is_root() {
            all.push(key.clone());
        }
        for k in all {
            match self.lookup(&k)? {
                Found::Dir => {}
                Found::Missing => {
                    self.vfs.overlay.insert(
                        k,
                        Node {
                            kind: Kind::Dir,
                            meta: meta.clone(),
                            emitted: false,
                        },
                    );
                }
                _ => {
                    return Err(FileOpError::NotADirectory {
                        op: self.word,
                        src: self.src.clone(),
                        dest: self.dest.clone(),
                        path: k.to_string(),
                    });
                }
            }
        }
        Ok(())
    }

    fn conflict(&self, key: &Key, reason: &'static str) -> FileOpError {
        FileOpError::Conflict {
            op: self.word,
            src: self.src.clone(),
            dest: self.dest.clone(),
            path: key.to_string(),
            reason,
        }
    }

    /// A non-directory at `key` (`ensureEmptyFileTarget`: a directory in the
    /// way is an error, anything else is replaced).
    fn place_entry(&mut self, key: &Key, kind: Kind, meta: Meta) -> Result<(), FileOpError> {
        if self.lookup(key)? == Found::Dir {
            return Err(self.conflict(key, "cannot replace to directory with file"));
        }
        self.vfs.overlay.insert(
            key.clone(),
            Node {
                kind,
                meta,
                emitted: false,
            },
        );
        Ok(())
    }

    /// A directory at `key` with `meta` (`copyDirectoryOnly` + `copyFileInfo`).
    fn place_dir(&mut self, key: &Key, meta: Meta) -> Result<(), FileOpError> {
        if key.is_root() {
            // The root is never an entry: its metadata stays the image's.
            return Ok(());
        }
        match self.lookup(key)? {
            Found::Dir | Found::Missing => {
                self.vfs.overlay.insert(
                    key.clone(),
                    Node {
                        kind: Kind::Dir,
                        meta,
                        emitted: false,
                    },
                );
                Ok(())
            }
            _ => Err(self.conflict(key, "cannot copy to non-directory")),
        }
    }

    /// The directory `Copy` makes sure of, and the cleaned destination.
    fn dest_paths(&self) -> (Vec<u8>, Vec<u8>) {
        let dest = self.dest.as_bytes();
        let (dir, last) = match dest.iter().rposition(|&b| b == b'/') {
            Some(i) => (&dest[..=i], &dest[i + 1..]),
            None => (&b""[..], dest),
        };
        let ensure = if last.is_empty() || last == b"." {
            dest
        } else {
            dir
        };
        (ensure.to_vec(), super::glob::clean(dest))
    }

    /// fsutil's `Copy` + `prepareTargetDir` for one source: returns the key
    /// the source itself lands on.
    fn target(&mut self, name: &[u8], is_dir: bool) -> Result<Key, FileOpError> {
        let created = self.created_dir_meta();
        let (ensure, dst) = self.dest_paths();
        let ensure = self.resolve_dest(&ensure, true)?;
        self.mkdir_all(&ensure, &created)?;
        let dst = self.resolve_dest(&dst, true)?;
        let existing = self.lookup(&dst)?;
        let dest = if !is_dir && existing == Found::Dir {
            dst.join(name)
        } else {
            dst
        };
        let parent = if is_dir && existing == Found::Missing {
            dest.clone()
        } else {
            dest.parent()
        };
        self.mkdir_all(&parent, &created)?;
        Ok(dest)
    }

    /// Copies one path source (already resolved, symlinks followed).
    pub(crate) fn copy_path(
        &mut self,
        name: &[u8],
        path: &Path,
        md: &Metadata,
        owner: SourceOwner,
        includes: Option<&Matcher>,
    ) -> Result<(), FileOpError> {
        let top = match stat_kind(md) {
            StatKind::Dir => Top::Dir,
            StatKind::Socket if owner == SourceOwner::Keep => Top::Skip,
            StatKind::Socket => Top::Entry(
                Kind::File(Payload::Empty),
                self.copied_meta(md, path, owner),
            ),
            StatKind::Special(s) => Top::Entry(Kind::Special(s), self.copied_meta(md, path, owner)),
            StatKind::Symlink => {
                let target =
                    std::fs::read_link(path).map_err(|e| self.io("reading link", path, e))?;
                let meta = self.copied_meta(md, path, owner);
                Top::Entry(Kind::Symlink(target.as_os_str().as_bytes().to_vec()), meta)
            }
            StatKind::File => {
                let link = (md.nlink() > 1).then_some((self.next_match, md.dev(), md.ino()));
                let payload = Payload::Path {
                    path: path.to_path_buf(),
                    size: md.size(),
                    link,
                };
                Top::Entry(Kind::File(payload), self.copied_meta(md, path, owner))
            }
        };
        match top {
            Top::Skip => Ok(()),
            Top::Entry(kind, meta) => {
                if self.excluded_file(name) {
                    return Ok(());
                }
                let key = self.target(name, false)?;
                self.place_entry(&key, kind, meta)
            }
            Top::Dir => {
                let key = self.target(name, true)?;
                if self.lookup(&key)? != Found::Dir {
                    return Err(self.conflict(&key, "cannot copy to non-directory"));
                }
                // The top directory keeps its mode and owner (existing or
                // just created) and takes the source's times.
                let mut meta = match self.vfs.overlay.get(&key) {
                    Some(n) => n.meta.clone(),
                    None => self.view_dir_meta(&key)?,
                };
                meta.mtime = md.mtime();
                meta.nsec = u32::try_from(md.mtime_nsec()).unwrap_or(0);
                self.place_dir(&key, meta)?;
                let mut parents = vec![Pending {
                    src: path.to_path_buf(),
                    target: key.clone(),
                    copied: true,
                }];
                self.copy_children(path, b"", &key, owner, includes, None, None, &mut parents)
            }
        }
    }

    /// `--exclude` on a file source itself, by the name it gets (the
    /// reference's `COPY --exclude=*.txt hom* /mydir/`; BuildKit skips this
    /// check, moby/buildkit#5489).
    fn excluded_file(&self, name: &[u8]) -> bool {
        self.excludes
            .as_ref()
            .is_some_and(|m| m.matches(name, None).0)
    }

    /// `copyDirectory`'s loop over a source directory's children.
    #[allow(clippy::too_many_arguments)]
    fn copy_children(
        &mut self,
        dir: &Path,
        rel: &[u8],
        target: &Key,
        owner: SourceOwner,
        includes: Option<&Matcher>,
        inc_parent: Option<&ParentInfo>,
        exc_parent: Option<&ParentInfo>,
        parents: &mut Vec<Pending>,
    ) -> Result<(), FileOpError> {
        let mut names: Vec<Vec<u8>> = std::fs::read_dir(dir)
            .map_err(|e| self.io("listing", dir, e))?
            .map(|e| e.map(|e| e.file_name().into_encoded_bytes()))
            .collect::<Result<_, _>>()
            .map_err(|e| self.io("listing", dir, e))?;
        names.sort();
        for name in names {
            let mut child_rel = rel.to_vec();
            if !child_rel.is_empty() {
                child_rel.push(b'/');
            }
            child_rel.extend_from_slice(&name);
            let (inc, inc_info) = match includes {
                Some(m) => {
                    let (hit, info) = m.matches(&child_rel, inc_parent);
                    (hit, Some(info))
                }
                None => (true, None),
            };
            let (excluded, exc_info) = match &self.excludes {
                Some(m) => {
                    let (hit, info) = m.matches(&child_rel, exc_parent);
                    (hit, Some(info))
                }
                None => (false, None),
            };
            let include = inc && !excluded;
            let exclusions = self.excludes.as_ref().is_some_and(Matcher::has_exclusions);
            if !include && includes.is_none() && !exclusions {
                continue;
            }
            let path = dir.join(std::ffi::OsStr::from_bytes(&name));
            let md =
                std::fs::symlink_metadata(&path).map_err(|e| self.io("inspecting", &path, e))?;
            let kind = stat_kind(&md);
            let is_dir = matches!(kind, StatKind::Dir);
            // `.dockerignore`: hidden entries do not exist; a hidden
            // directory is still walked when a `!` pattern may re-include
            // something below it.
            let include = match self.hidden.as_ref().map(|h| h.check(&path, is_dir)) {
                Some(super::Hidden::Gone) => continue,
                Some(super::Hidden::Walk) => false,
                _ => include,
            };
            if !include && !is_dir {
                continue;
            }
            let child = target.join(&name);
            if include {
                self.create_parents(parents)?;
            }
            if is_dir {
                if include {
                    let meta = self.copied_meta(&md, &path, owner);
                    self.place_dir(&child, meta)?;
                }
                parents.push(Pending {
                    src: path.clone(),
                    target: child.clone(),
                    copied: include,
                });
                if !excluded || exclusions {
                    self.copy_children(
                        &path,
                        &child_rel,
                        &child,
                        owner,
                        includes,
                        inc_info.as_ref(),
                        exc_info.as_ref(),
                        parents,
                    )?;
                }
                parents.pop();
                continue;
            }
            let entry = match kind {
                StatKind::Socket if owner == SourceOwner::Keep => continue,
                StatKind::Socket => Kind::File(Payload::Empty),
                StatKind::Special(s) => Kind::Special(s),
                StatKind::Symlink => {
                    let t =
                        std::fs::read_link(&path).map_err(|e| self.io("reading link", &path, e))?;
                    Kind::Symlink(t.as_os_str().as_bytes().to_vec())
                }
                _ => Kind::File(Payload::Path {
                    path: path.clone(),
                    size: md.size(),
                    link: (md.nlink() > 1).then_some((self.next_match, md.dev(), md.ino())),
                }),
            };
            let meta = self.copied_meta(&md, &path, owner);
            self.place_entry(&child, entry, meta)?;
        }
        Ok(())
    }

    /// fsutil's `createParentDirs`: delayed directories appear once
    /// something inside them is included.
    fn create_parents(&mut self, parents: &mut [Pending]) -> Result<(), FileOpError> {
        for p in parents.iter_mut().filter(|p| !p.copied) {
            let md = std::fs::metadata(&p.src).map_err(|e| self.io("inspecting", &p.src, e))?;
            match self.lookup(&p.target)? {
                Found::Missing => {
                    let meta = self.copied_meta(&md, &p.src, SourceOwner::Keep);
                    let meta = Meta {
                        uid: self.chown.map_or(meta.uid, |c| c.0),
                        gid: self.chown.map_or(meta.gid, |c| c.1),
                        ..meta
                    };
                    self.place_dir(&p.target, meta)?;
                }
                Found::Dir => {
                    // An existing directory only gets the source's mode.
                    let mut meta = match self.vfs.overlay.get(&p.target) {
                        Some(n) => n.meta.clone(),
                        None => self.view_dir_meta(&p.target)?,
                    };
                    meta.mode = md.mode() & 0o7777;
                    self.place_dir(&p.target, meta)?;
                }
                _ => return Err(self.conflict(&p.target, "cannot copy to non-directory")),
            }
            p.copied = true;
        }
        Ok(())
    }

    /// A downloaded file, copied like a file source.
    pub(crate) fn copy_download(&mut self, index: usize) -> Result<(), FileOpError> {
        let d = &self.downloads[index];
        let name = d.name.clone().into_bytes();
        let (uid, gid) = self.chown.unwrap_or((0, 0));
        let meta = Meta {
            mode: self.mode.apply(0o100_600),
            uid,
            gid,
            mtime: d.mtime,
            nsec: 0,
            xattrs: Default::default(),
        };
        if self.excluded_file(&name) {
            return Ok(());
        }
        let key = self.target(&name, false)?;
        self.place_entry(&key, Kind::File(Payload::Download(index)), meta)
    }

    /// A heredoc: a `0644` root-owned file made at the op's time.
    pub(crate) fn copy_inline(&mut self, index: usize) -> Result<(), FileOpError> {
        let raw = self.plan.inline[index].name.as_bytes();
        let name = raw
            .rsplit(|&b| b == b'/')
            .find(|c| !c.is_empty())
            .unwrap_or(raw)
            .to_vec();
        let (uid, gid) = self.chown.unwrap_or((0, 0));
        let meta = Meta {
            mode: self.mode.apply(0o100_644),
            uid,
            gid,
            mtime: self.now.0,
            nsec: self.now.1,
            xattrs: Default::default(),
        };
        let key = self.target(&name, false)?;
        self.place_entry(&key, Kind::File(Payload::Inline(index)), meta)
    }
}
