//! [`write_tree`]: a directory (a plain tree or an overlayfs upper dir)
//! walked into a [`LayerWriter`].
//!
//! Each directory's names are sorted bytewise and walked depth first, so a
//! directory comes before its contents and the order is the same on every
//! run (Go's `filepath.Walk` order, which BuildKit's differ uses). The first
//! path met for an inode with several links is written as the file, the
//! others as hard links to it. Sockets cannot be put in a tar and are
//! skipped, as Docker and BuildKit do.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::fs::{File, Metadata};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use super::whiteout::{OverlayXattr, overlay_xattr};
use super::writer::{EntryMeta, LayerWriter, Special};
use super::{IdMap, LayerBlob, LayerError, LayerOptions, TreeMode};

/// Walks `root` into a layer blob written to `out`.
pub fn write_tree<W: Write>(
    root: &Path,
    opts: &LayerOptions,
    out: W,
) -> Result<LayerBlob, LayerError> {
    let mut writer = LayerWriter::new(out, opts)?;
    append_tree(&mut writer, root, opts)?;
    writer.finish()
}

/// Walks `root` into an existing writer (entries are named relative to `root`).
pub fn append_tree<W: Write>(
    writer: &mut LayerWriter<W>,
    root: &Path,
    opts: &LayerOptions,
) -> Result<(), LayerError> {
    let mut walker = Walker {
        writer,
        overlay: opts.mode == TreeMode::OverlayUpper,
        id_map: opts.id_map.as_ref(),
        links: HashMap::new(),
        names: vec![0; XATTR_LIST_MAX],
        value: vec![0; XATTR_LIST_MAX],
    };
    walker.dir(root, &mut PathBuf::new())
}

const XATTR_LIST_MAX: usize = 65_536;

/// What overlayfs's xattrs make of an upper-dir entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    None,
    /// A directory hiding its lower contents.
    Opaque,
    /// An "xattr whiteout" (Linux 6.7+): an empty file with `overlay.whiteout`.
    Whiteout,
}

struct Walker<'a, W: Write> {
    writer: &'a mut LayerWriter<W>,
    overlay: bool,
    id_map: Option<&'a IdMap>,
    /// (dev, ino) of multiply-linked files → the entry name written first.
    links: HashMap<(u64, u64), PathBuf>,
    names: Vec<u8>,
    value: Vec<u8>,
}

fn source(path: &Path, e: impl Into<std::io::Error>) -> LayerError {
    LayerError::Source {
        path: path.to_path_buf(),
        source: e.into(),
    }
}

impl<W: Write> Walker<'_, W> {
    fn dir(&mut self, abs: &Path, rel: &mut PathBuf) -> Result<(), LayerError> {
        let mut names: Vec<OsString> = Vec::new();
        for entry in std::fs::read_dir(abs).map_err(|e| source(abs, e))? {
            names.push(entry.map_err(|e| source(abs, e))?.file_name());
        }
        names.sort_unstable_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        let mut child = abs.to_path_buf();
        for name in names {
            child.push(&name);
            rel.push(&name);
            let result = self.entry(&child, rel);
            child.pop();
            rel.pop();
            result?;
        }
        Ok(())
    }

    fn entry(&mut self, abs: &Path, rel: &mut PathBuf) -> Result<(), LayerError> {
        let md = std::fs::symlink_metadata(abs).map_err(|e| source(abs, e))?;
        let ft = md.file_type();
        if self.overlay && ft.is_char_device() && md.rdev() == 0 {
            return self.writer.append_whiteout(rel);
        }
        if ft.is_socket() {
            return Ok(());
        }
        let (meta, marker) = self.meta(abs, rel, &md)?;
        if marker == Marker::Whiteout {
            return self.writer.append_whiteout(rel);
        }
        if !ft.is_dir() && md.nlink() > 1 {
            let key = (md.dev(), md.ino());
            if let Some(first) = self.links.get(&key) {
                return self.writer.append_hardlink(rel, first, &meta);
            }
            self.links.insert(key, rel.clone());
        }
        if ft.is_dir() {
            self.writer.append_dir(rel, &meta)?;
            if marker == Marker::Opaque {
                self.writer.append_opaque(rel)?;
            }
            self.dir(abs, rel)
        } else if ft.is_file() {
            let file = File::open(abs).map_err(|e| source(abs, e))?;
            self.writer.append_file(rel, &meta, md.len(), file)
        } else if ft.is_symlink() {
            let target = std::fs::read_link(abs).map_err(|e| source(abs, e))?;
            self.writer.append_symlink(rel, &target, &meta)
        } else {
            let (major, minor) = (rustix::fs::major(md.rdev()), rustix::fs::minor(md.rdev()));
            let special = if ft.is_char_device() {
                Special::Char { major, minor }
            } else if ft.is_block_device() {
                Special::Block { major, minor }
            } else {
                Special::Fifo
            };
            self.writer.append_special(rel, special, &meta)
        }
    }

    /// The entry's header metadata, and what overlayfs marks it as.
    fn meta(
        &mut self,
        abs: &Path,
        rel: &Path,
        md: &Metadata,
    ) -> Result<(EntryMeta, Marker), LayerError> {
        let (mut uid, mut gid) = (md.uid(), md.gid());
        if let Some(map) = self.id_map {
            let unmapped = |kind, id| LayerError::UnmappedId {
                path: rel.to_path_buf(),
                kind,
                id,
            };
            uid = map
                .uid_to_container(uid)
                .ok_or_else(|| unmapped("uid", uid))?;
            gid = map
                .gid_to_container(gid)
                .ok_or_else(|| unmapped("gid", gid))?;
        }
        let mut meta = EntryMeta {
            mode: md.mode() & 0o7777,
            uid,
            gid,
            mtime: md.mtime(),
            xattrs: BTreeMap::new(),
        };
        let mut marker = Marker::None;
        let list = match rustix::fs::llistxattr(abs, &mut self.names[..]) {
            Ok(n) => n,
            Err(rustix::io::Errno::NOTSUP) => 0,
            Err(e) => return Err(source(abs, e)),
        };
        for name in self.names[..list]
            .split(|&b| b == 0)
            .filter(|n| !n.is_empty())
        {
            let n = match rustix::fs::lgetxattr(abs, name, &mut self.value[..]) {
                Ok(n) => n,
                // Removed since it was listed, or not readable by us
                // (`trusted.*` when not root): not in the layer.
                Err(rustix::io::Errno::NODATA | rustix::io::Errno::PERM) => continue,
                Err(e) => return Err(source(abs, e)),
            };
            let value = &self.value[..n];
            match overlay_xattr(name, value) {
                OverlayXattr::NotOverlay => {
                    meta.xattrs.insert(name.to_vec(), value.to_vec());
                }
                OverlayXattr::Opaque if self.overlay && md.is_dir() => marker = Marker::Opaque,
                OverlayXattr::Whiteout if self.overlay && md.is_file() => marker = Marker::Whiteout,
                OverlayXattr::Unsupported(what) if self.overlay => {
                    return Err(LayerError::Unsupported {
                        path: rel.to_path_buf(),
                        what: what.to_string(),
                    });
                }
                OverlayXattr::Unsupported(_)
                | OverlayXattr::Ignored
                | OverlayXattr::Opaque
                | OverlayXattr::Whiteout => {}
            }
        }
        Ok((meta, marker))
    }
}
