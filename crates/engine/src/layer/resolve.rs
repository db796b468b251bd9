//! Paths inside a root directory, resolved so that nothing outside it is
//! ever reached: symlinks are followed as if the root were `/` (an absolute
//! target or a `..` at the root stays at the root), by `openat2` with
//! `RESOLVE_IN_ROOT` where the kernel has it, else by our own walk, one
//! component at a time with `O_NOFOLLOW`, reading each symlink ourselves.
//!
//! Callers then act on the final component relative to the directory fd
//! with `*at` calls that do not follow it.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use super::unpack::Resolver;

/// The most symlinks one resolution follows (Linux's own limit).
const MAX_HOPS: usize = 40;

/// An open root directory.
pub(crate) struct Root {
    fd: OwnedFd,
    resolver: Resolver,
    openat2_works: std::cell::Cell<bool>,
}

fn path_flags() -> OFlags {
    OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC
}

impl Root {
    pub(crate) fn open(path: &Path, resolver: Resolver) -> io::Result<Root> {
        let fd = rustix::fs::open(path, path_flags(), Mode::empty())?;
        Ok(Root {
            fd,
            resolver,
            openat2_works: std::cell::Cell::new(resolver != Resolver::Walk),
        })
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// Opens (`O_PATH`) the directory at `comps` below the root, creating
    /// missing directories (mode 0755) when `create`.
    pub(crate) fn dir(&self, comps: &[&[u8]], create: bool) -> io::Result<OwnedFd> {
        if comps.is_empty() {
            return Ok(rustix::fs::openat(
                &self.fd,
                c".",
                path_flags(),
                Mode::empty(),
            )?);
        }
        let how = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
        if let Some(found) = self.openat2(&comps.join(&b'/'), path_flags(), how, create) {
            return found;
        }
        self.walk(comps, create)
    }

    /// Opens (`O_PATH`) the directory at `comps` below the root without
    /// following any symlink at all (`RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS`
    /// where the kernel has `openat2`, else a walk that opens each
    /// component with `O_NOFOLLOW|O_DIRECTORY`): a symlink anywhere on the
    /// way is `ENOTDIR`/`ELOOP`, never followed, even inside the root.
    /// Missing directories are made (mode 0755) when `create`.
    pub(crate) fn dir_beneath(&self, comps: &[&[u8]], create: bool) -> io::Result<OwnedFd> {
        if comps.is_empty() {
            return Ok(rustix::fs::openat(
                &self.fd,
                c".",
                path_flags(),
                Mode::empty(),
            )?);
        }
        let how = ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS;
        if let Some(found) = self.openat2(&comps.join(&b'/'), path_flags(), how, create) {
            return found;
        }
        let flags = path_flags() | OFlags::NOFOLLOW;
        let mut cur = rustix::fs::openat(&self.fd, c".", path_flags(), Mode::empty())?;
        for comp in comps {
            if matches!(*comp, b"" | b"." | b"..") {
                return Err(Errno::INVAL.into());
            }
            cur = match rustix::fs::openat(&cur, *comp, flags, Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::NOENT) if create => {
                    match rustix::fs::mkdirat(&cur, *comp, Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(e.into()),
                    }
                    rustix::fs::openat(&cur, *comp, flags, Mode::empty())?
                }
                Err(e) => return Err(e.into()),
            };
        }
        Ok(cur)
    }

    /// Opens the file at `path` below the root for reading, symlinks
    /// (the last component's too) resolved as if the root were `/`. Not
    /// blocking on a FIFO; the caller checks what it opened.
    pub(crate) fn open_file(&self, path: &[u8]) -> io::Result<OwnedFd> {
        let flags = OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC;
        let how = ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS;
        if let Some(found) = self.openat2(path, flags, how, false) {
            return found;
        }
        // The walk: the parent as a directory, then the last component,
        // whose symlink target continues from the parent (or the root).
        let mut path = path.to_vec();
        let mut hops = 0;
        loop {
            let (parent, name) = match path.iter().rposition(|&b| b == b'/') {
                Some(i) => (&path[..i], &path[i + 1..]),
                None => (&path[..0], &path[..]),
            };
            if matches!(name, b"" | b"." | b"..") {
                return Err(Errno::ISDIR.into());
            }
            let comps: Vec<&[u8]> = parent.split(|&b| b == b'/').collect();
            let dir = self.walk(&comps, false)?;
            let st = rustix::fs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
            if FileType::from_raw_mode(st.st_mode) != FileType::Symlink {
                return Ok(rustix::fs::openat(
                    &dir,
                    name,
                    flags | OFlags::NOFOLLOW,
                    Mode::empty(),
                )?);
            }
            hops += 1;
            if hops > MAX_HOPS {
                return Err(Errno::LOOP.into());
            }
            let target = rustix::fs::readlinkat(&dir, name, Vec::new())?.into_bytes();
            path = if target.first() == Some(&b'/') {
                target
            } else {
                let mut next = parent.to_vec();
                next.push(b'/');
                next.extend_from_slice(&target);
                next
            };
        }
    }

    /// `openat2(path, oflags, how)` from the root while the kernel has it:
    /// `Some` with its answer, or `None` to fall back to a walk (no
    /// `openat2` here: an old kernel or a seccomp filter; `EAGAIN` after
    /// retries; `ENOENT` when the walk may `create`).
    fn openat2(
        &self,
        path: &[u8],
        oflags: OFlags,
        how: ResolveFlags,
        create: bool,
    ) -> Option<io::Result<OwnedFd>> {
        if !self.openat2_works.get() {
            return None;
        }
        let mut tries = 0;
        loop {
            match rustix::fs::openat2(&self.fd, path, oflags, Mode::empty(), how) {
                Ok(fd) => return Some(Ok(fd)),
                Err(Errno::NOENT) if create => return None,
                // A concurrent rename somewhere on the system.
                Err(Errno::AGAIN) if tries < 8 => tries += 1,
                Err(Errno::AGAIN) if self.resolver == Resolver::Auto => return None,
                Err(Errno::NOSYS | Errno::PERM | Errno::INVAL | Errno::TOOBIG)
                    if self.resolver == Resolver::Auto =>
                {
                    self.openat2_works.set(false);
                    return None;
                }
                Err(e) => return Some(Err(e.into())),
            }
        }
    }

    /// The portable resolution: never opens a symlink, reads it and
    /// continues from the root (absolute target) or the current directory.
    fn walk(&self, comps: &[&[u8]], create: bool) -> io::Result<OwnedFd> {
        let mut stack: Vec<OwnedFd> = vec![rustix::fs::openat(
            &self.fd,
            c".",
            path_flags(),
            Mode::empty(),
        )?];
        let mut queue: VecDeque<Vec<u8>> = comps.iter().map(|c| c.to_vec()).collect();
        let mut hops = 0;
        while let Some(comp) = queue.pop_front() {
            match &comp[..] {
                b"" | b"." => continue,
                b".." => {
                    if stack.len() > 1 {
                        stack.pop();
                    }
                    continue;
                }
                _ => {}
            }
            let Some(cur) = stack.last() else {
                return Err(Errno::NOENT.into());
            };
            let kind = match rustix::fs::statat(cur, &comp[..], AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) => Some(FileType::from_raw_mode(st.st_mode)),
                Err(Errno::NOENT) if create => None,
                Err(e) => return Err(e.into()),
            };
            match kind {
                None => {
                    match rustix::fs::mkdirat(cur, &comp[..], Mode::from_raw_mode(0o755)) {
                        Ok(()) | Err(Errno::EXIST) => {}
                        Err(e) => return Err(e.into()),
                    }
                    let fd = rustix::fs::openat(
                        cur,
                        &comp[..],
                        path_flags() | OFlags::NOFOLLOW,
                        Mode::empty(),
                    )?;
                    stack.push(fd);
                }
                Some(FileType::Symlink) => {
                    hops += 1;
                    if hops > MAX_HOPS {
                        return Err(Errno::LOOP.into());
                    }
                    let target = rustix::fs::readlinkat(cur, &comp[..], Vec::new())?;
                    let target = target.as_bytes();
                    if target.first() == Some(&b'/') {
                        stack.truncate(1);
                    }
                    for part in target.split(|&b| b == b'/').rev() {
                        queue.push_front(part.to_vec());
                    }
                }
                Some(FileType::Directory) => {
                    let fd = rustix::fs::openat(
                        cur,
                        &comp[..],
                        path_flags() | OFlags::NOFOLLOW,
                        Mode::empty(),
                    )?;
                    stack.push(fd);
                }
                Some(_) => return Err(Errno::NOTDIR.into()),
            }
        }
        stack.pop().ok_or_else(|| Errno::NOENT.into())
    }
}

/// Removes `name` in `dir` and, if it is a directory, everything below it,
/// never following a symlink. A missing `name` is not an error.
pub(crate) fn remove_all(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<()> {
    let st = match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
        let fd = open_dir(dir, name)?;
        clear_dir(fd.as_fd(), &mut Vec::new(), &|_| false)?;
        rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)?;
    } else {
        rustix::fs::unlinkat(dir, name, AtFlags::empty())?;
    }
    Ok(())
}

/// Clears the way for a new entry `name` in `dir`, never following it:
/// whatever is there is removed (a directory with everything below it),
/// except a directory when `keep_dir`. `true` when such a directory was
/// kept.
pub(crate) fn make_way(dir: BorrowedFd<'_>, name: &[u8], keep_dir: bool) -> io::Result<bool> {
    match rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Err(Errno::NOENT) => Ok(false),
        Err(e) => Err(e.into()),
        Ok(st) if keep_dir && FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
            Ok(true)
        }
        Ok(_) => remove_all(dir, name).map(|()| false),
    }
}

/// Opens the directory `name` in `dir` for reading, refusing a symlink.
pub(crate) fn open_dir(dir: BorrowedFd<'_>, name: &[u8]) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    Ok(rustix::fs::openat(dir, name, flags, Mode::empty())?)
}

/// Removes the children of the directory `dir` (whose path is `prefix`)
/// except those `keep` names; kept directories are cleared the same way.
pub(crate) fn clear_dir(
    dir: BorrowedFd<'_>,
    prefix: &mut Vec<u8>,
    keep: &dyn Fn(&[u8]) -> bool,
) -> io::Result<()> {
    let mut names = Vec::new();
    let mut listing = rustix::fs::Dir::read_from(dir)?;
    while let Some(entry) = listing.read() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name != b"." && name != b".." {
            let mut kind = entry.file_type();
            if kind == FileType::Unknown {
                let st = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
                kind = FileType::from_raw_mode(st.st_mode);
            }
            names.push((name.to_vec(), kind));
        }
    }
    for (name, kind) in names {
        let len = prefix.len();
        if !prefix.is_empty() {
            prefix.push(b'/');
        }
        prefix.extend_from_slice(&name);
        let result = if !keep(prefix) {
            remove_all(dir, &name)
        } else if kind == FileType::Directory {
            open_dir(dir, &name).and_then(|fd| clear_dir(fd.as_fd(), prefix, keep))
        } else {
            Ok(())
        };
        prefix.truncate(len);
        result?;
    }
    Ok(())
}

/// Which inode a descriptor names: `(st_dev, st_ino)`.
pub(crate) fn identity(fd: BorrowedFd<'_>) -> io::Result<(u64, u64)> {
    let st = rustix::fs::fstat(fd)?;
    Ok((st.st_dev, st.st_ino))
}

/// A directory's mode and times, set after its contents (a read-only
/// directory could not be filled, and writing into it moves its mtime).
/// Found again by its components, without following any symlink, and
/// applied only through a descriptor of the very inode that was made: a
/// later entry that replaced the directory, or a parent, with a symlink
/// or anything else leaves nothing to apply.
pub(crate) struct DeferredDir {
    pub(crate) path: Vec<u8>,
    pub(crate) id: (u64, u64),
    pub(crate) mode: u32,
    pub(crate) times: rustix::fs::Timestamps,
}

impl DeferredDir {
    /// Applies the mode and times; `Ok(false)` when the directory is no
    /// longer there as it was made. `in_root`: parents resolve through
    /// symlinks as if the root were `/` (a layer's `lib -> usr/lib`);
    /// otherwise a symlink on the way means it is gone.
    pub(crate) fn apply(&self, root: &Root, in_root: bool) -> io::Result<bool> {
        let comps: Vec<&[u8]> = self
            .path
            .split(|&b| b == b'/')
            .filter(|c| !c.is_empty())
            .collect();
        let Some((name, parent)) = comps.split_last() else {
            return Ok(false);
        };
        let parent = if in_root {
            root.dir(parent, false)
        } else {
            root.dir_beneath(parent, false)
        };
        let fd = match parent.and_then(|p| open_dir(p.as_fd(), name)) {
            Ok(fd) => fd,
            Err(e)
                if [Errno::NOENT, Errno::NOTDIR, Errno::LOOP, Errno::XDEV]
                    .iter()
                    .any(|x| e.raw_os_error() == Some(x.raw_os_error())) =>
            {
                return Ok(false);
            }
            Err(e) => return Err(e),
        };
        if identity(fd.as_fd())? != self.id {
            return Ok(false);
        }
        rustix::fs::fchmod(&fd, Mode::from_raw_mode(self.mode))?;
        rustix::fs::futimens(&fd, &self.times)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::os::unix::fs::symlink;

    use super::*;

    fn read(root: &Root, path: &str) -> io::Result<String> {
        let fd = root.open_file(path.as_bytes())?;
        let mut text = String::new();
        std::fs::File::from(fd).read_to_string(&mut text)?;
        Ok(text)
    }

    /// `open_file` resolves as `openat2(RESOLVE_IN_ROOT)` does, by either
    /// resolver: links inside followed, absolute ones and `..` kept in the
    /// root, the file outside never reached.
    #[test]
    fn open_file_resolves_in_root_with_openat2_and_the_walk() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("secret");
        std::fs::write(&outside, "outside").unwrap();
        let root_path = dir.path().join("root");
        std::fs::create_dir_all(root_path.join("sub/deeper")).unwrap();
        std::fs::write(root_path.join("sub/file"), "inside").unwrap();
        std::fs::write(root_path.join("secret"), "root's own").unwrap();
        symlink("sub/file", root_path.join("rel")).unwrap();
        symlink("/sub/file", root_path.join("abs")).unwrap();
        symlink("../../../secret", root_path.join("sub/deeper/up")).unwrap();
        symlink(&outside, root_path.join("out")).unwrap();
        symlink("../file", root_path.join("sub/deeper/chain")).unwrap();
        symlink("sub/deeper/chain", root_path.join("chained")).unwrap();
        symlink("loop", root_path.join("loop")).unwrap();
        symlink("../nowhere", root_path.join("dangling")).unwrap();
        for resolver in [Resolver::Auto, Resolver::Walk] {
            let root = Root::open(&root_path, resolver).unwrap();
            assert_eq!(read(&root, "sub/file").unwrap(), "inside", "{resolver:?}");
            assert_eq!(read(&root, "rel").unwrap(), "inside", "{resolver:?}");
            assert_eq!(read(&root, "abs").unwrap(), "inside", "{resolver:?}");
            assert_eq!(read(&root, "chained").unwrap(), "inside", "{resolver:?}");
            assert_eq!(
                read(&root, "sub/deeper/up").unwrap(),
                "root's own",
                "{resolver:?}: `..` stops at the root"
            );
            let out = read(&root, "out").unwrap_err();
            assert_eq!(out.kind(), io::ErrorKind::NotFound, "{resolver:?}: {out}");
            let looped = read(&root, "loop").unwrap_err();
            assert_eq!(
                looped.raw_os_error(),
                Some(Errno::LOOP.raw_os_error()),
                "{resolver:?}"
            );
            let dangling = read(&root, "dangling").unwrap_err();
            assert_eq!(dangling.kind(), io::ErrorKind::NotFound, "{resolver:?}");
        }
    }
}
