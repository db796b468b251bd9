//! From the overlay to the output: a [`Sink`] receives entries in key
//! order, each after its parents. Parents that already exist in the view
//! go out too, with their own mode, owner and xattrs and the op's time as
//! mtime: BuildKit's differ includes every directory whose contents
//! changed, and the kernel stamps those with the time of the change.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use super::FileOpError;
use super::plan::Op;
use super::vfs::{Key, Kind, Meta, Node, Payload};
use crate::layer::{EntryMeta, LayerError, LayerWriter, Special};

/// A failure in a sink, given context by the op.
#[derive(Debug)]
pub(crate) enum SinkError {
    Layer(LayerError),
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

impl SinkError {
    pub(crate) fn into_error(self, op: &'static str, src: &str, dest: &str) -> FileOpError {
        match self {
            SinkError::Layer(source) => FileOpError::Layer {
                op,
                src: src.to_string(),
                dest: dest.to_string(),
                source: Box::new(source),
            },
            SinkError::Io {
                action,
                path,
                source,
            } => FileOpError::Io {
                op,
                src: src.to_string(),
                dest: dest.to_string(),
                action,
                path,
                source,
            },
        }
    }
}

/// Where entries go: a layer, or a root directory.
pub(crate) trait Sink {
    fn dir(&mut self, key: &Key, meta: &Meta) -> Result<(), SinkError>;
    fn file(
        &mut self,
        key: &Key,
        meta: &Meta,
        size: u64,
        data: &mut dyn Read,
    ) -> Result<(), SinkError>;
    fn symlink(&mut self, key: &Key, target: &[u8], meta: &Meta) -> Result<(), SinkError>;
    /// A hard link to `target`, a file this op wrote earlier.
    fn hardlink(&mut self, key: &Key, target: &Key, meta: &Meta) -> Result<(), SinkError>;
    fn special(&mut self, key: &Key, special: Special, meta: &Meta) -> Result<(), SinkError>;
    /// Called once at the end; returns warnings.
    fn finish(&mut self) -> Result<Vec<String>, SinkError>;
}

/// Streams entries into a [`LayerWriter`].
pub(crate) struct LayerSink<'w, W: Write> {
    writer: &'w mut LayerWriter<W>,
}

impl<'w, W: Write> LayerSink<'w, W> {
    pub(crate) fn new(writer: &'w mut LayerWriter<W>) -> Self {
        LayerSink { writer }
    }
}

fn entry_meta(meta: &Meta) -> EntryMeta {
    EntryMeta {
        mode: meta.mode,
        uid: meta.uid,
        gid: meta.gid,
        mtime: meta.mtime,
        xattrs: meta.xattrs.clone(),
    }
}

impl<W: Write> Sink for LayerSink<'_, W> {
    fn dir(&mut self, key: &Key, meta: &Meta) -> Result<(), SinkError> {
        self.writer
            .append_dir(key.as_path(), &entry_meta(meta))
            .map_err(SinkError::Layer)
    }

    fn file(
        &mut self,
        key: &Key,
        meta: &Meta,
        size: u64,
        data: &mut dyn Read,
    ) -> Result<(), SinkError> {
        self.writer
            .append_file(key.as_path(), &entry_meta(meta), size, data)
            .map_err(SinkError::Layer)
    }

    fn symlink(&mut self, key: &Key, target: &[u8], meta: &Meta) -> Result<(), SinkError> {
        let target = std::path::Path::new(std::ffi::OsStr::from_bytes(target));
        self.writer
            .append_symlink(key.as_path(), target, &entry_meta(meta))
            .map_err(SinkError::Layer)
    }

    fn hardlink(&mut self, key: &Key, target: &Key, meta: &Meta) -> Result<(), SinkError> {
        self.writer
            .append_hardlink(key.as_path(), target.as_path(), &entry_meta(meta))
            .map_err(SinkError::Layer)
    }

    fn special(&mut self, key: &Key, special: Special, meta: &Meta) -> Result<(), SinkError> {
        self.writer
            .append_special(key.as_path(), special, &entry_meta(meta))
            .map_err(SinkError::Layer)
    }

    fn finish(&mut self) -> Result<Vec<String>, SinkError> {
        Ok(Vec::new())
    }
}

impl<S: Sink> Op<'_, S> {
    /// Hands every planned entry to the sink, in key order.
    pub(crate) fn flush(&mut self) -> Result<(), FileOpError> {
        let keys: Vec<Key> = self
            .vfs
            .overlay
            .iter()
            .filter(|(_, n)| !n.emitted)
            .map(|(k, _)| k.clone())
            .collect();
        for key in keys {
            self.emit(&key)?;
        }
        Ok(())
    }

    /// Makes sure every ancestor of `key` has gone out: planned ones in
    /// order, existing ones from the view.
    pub(crate) fn emit_parents(&mut self, key: &Key) -> Result<(), FileOpError> {
        for parent in key.ancestors() {
            match self.vfs.overlay.get(&parent) {
                Some(n) if n.emitted => continue,
                Some(_) => self.emit(&parent)?,
                None => {
                    let mut meta = self.view_dir_meta(&parent)?;
                    meta.mtime = self.now.0;
                    meta.nsec = self.now.1;
                    self.sink
                        .dir(&parent, &meta)
                        .map_err(|e| e.into_error(self.word, &self.src, &self.dest))?;
                    self.report.entries += 1;
                    self.vfs.overlay.insert(
                        parent,
                        Node {
                            kind: Kind::Dir,
                            meta,
                            emitted: true,
                        },
                    );
                }
            }
        }
        Ok(())
    }

    /// The metadata of an existing directory in the view (mode, owner,
    /// times, xattrs); a root-owned `0755` when there is no view.
    pub(crate) fn view_dir_meta(&self, key: &Key) -> Result<Meta, FileOpError> {
        self.vfs
            .view_meta(key)
            .map_err(|e| self.io("inspecting", &self.vfs.shown_path(key), e))
    }

    /// Writes one planned entry (after its parents).
    pub(crate) fn emit(&mut self, key: &Key) -> Result<(), FileOpError> {
        self.emit_parents(key)?;
        let Some(node) = self.vfs.overlay.get(key) else {
            return Ok(());
        };
        if node.emitted {
            return Ok(());
        }
        let meta = node.meta.clone();
        let kind = node.kind.clone();
        let ctx = |e: SinkError| e.into_error(self.word, &self.src, &self.dest);
        match kind {
            Kind::Dir => self.sink.dir(key, &meta).map_err(ctx)?,
            Kind::Symlink(target) => self.sink.symlink(key, &target, &meta).map_err(ctx)?,
            Kind::Special(s) => self.sink.special(key, s, &meta).map_err(ctx)?,
            Kind::File(Payload::Empty) => self
                .sink
                .file(key, &meta, 0, &mut io::empty())
                .map_err(ctx)?,
            Kind::File(Payload::Inline(i)) => {
                let data = &self.plan.inline[i].data;
                self.sink
                    .file(key, &meta, data.len() as u64, &mut &data[..])
                    .map_err(ctx)?;
                self.report.bytes += data.len() as u64;
            }
            Kind::File(Payload::Download(i)) => {
                let path = self.downloads[i].path().to_path_buf();
                let size = self.downloads[i].size;
                let mut f = File::open(&path).map_err(|e| self.io("opening", &path, e))?;
                self.sink.file(key, &meta, size, &mut f).map_err(ctx)?;
                self.report.bytes += size;
            }
            Kind::File(Payload::Path { path, size, link }) => {
                if let Some(first) = link.and_then(|id| self.links.get(&id)).cloned() {
                    self.sink.hardlink(key, &first, &meta).map_err(ctx)?;
                } else {
                    let mut f = std::fs::OpenOptions::new()
                        .read(true)
                        .custom_flags(super::user::libc_nofollow())
                        .open(&path)
                        .map_err(|e| self.io("opening", &path, e))?;
                    self.sink.file(key, &meta, size, &mut f).map_err(ctx)?;
                    self.report.bytes += size;
                    if let Some(id) = link {
                        self.links.insert(id, key.clone());
                    }
                }
            }
        }
        self.report.entries += 1;
        if let Some(n) = self.vfs.overlay.get_mut(key) {
            n.emitted = true;
        }
        Ok(())
    }
}
