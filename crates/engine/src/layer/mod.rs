//! Layers: filesystem trees to tar blobs and back.
//!
//! - [`LayerWriter`] streams tar entries into any `Write`, compressing them
//!   (gzip, zstd or none) and computing the uncompressed digest (diff_id),
//!   the compressed digest and the size in the same pass; [`write_tree`]
//!   walks a directory (a plain tree or an overlayfs upper dir) into one.
//! - [`unpack`] applies a layer blob onto a root directory, verifying the
//!   blob digest (and diff_id when given) while it reads, handling
//!   whiteouts, hardlinks, special files, ownership, modes and xattrs.
//!
//! `tar` is used only to encode and decode 512-byte headers; the walker,
//! the PAX records and the unpacker are ours (see the pitfalls in
//! `dependencies.md`).
//!
//! **Invariant:** the unpacker never creates, changes or removes anything
//! outside the target root: every parent path is resolved inside the root
//! (symlinks are followed as if the root were `/`), the final component is
//! never followed, and `..` components are refused.
//!
//! **Invariant:** the same tree and options give byte-identical blobs:
//! entries are sorted, uname/gname are empty, mtimes are clamped to
//! `SOURCE_DATE_EPOCH` when set, and the gzip header carries no time.

mod compression;
mod error;
mod idmap;
mod index;
mod index_build;
mod index_scan;
mod index_stack;
mod reader;
mod recompress;
pub(crate) mod resolve;
mod stream;
mod tree;
mod unpack;
mod unpack_entry;
mod whiteout;
mod writer;

pub use compression::Compression;
pub use error::LayerError;
pub use idmap::{IdMap, IdRange};
pub use index::{EntryKind, IndexError, LayerIndex, index_blob};
pub use index_stack::{IndexStack, IndexStat};
pub use recompress::{Recompressed, recompress};
pub use tree::{append_tree, write_tree};
pub use unpack::{
    IdMapper, Ownership, Privileges, Resolver, UnpackOptions, UnpackReport, UnpackWarning, unpack,
};
pub use whiteout::{OPAQUE_MARKER, WHITEOUT_PREFIX};
pub use writer::{EntryMeta, LayerWriter, Special};

use crate::digest::Digest;

/// Which media type family the written blob is labelled with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MediaTypes {
    /// `application/vnd.oci.image.layer.v1.tar[+gzip|+zstd]`.
    #[default]
    Oci,
    /// `application/vnd.docker.image.rootfs.diff.tar[.gzip|.zstd]`.
    Docker,
}

impl MediaTypes {
    /// Docker's family when `docker`, else OCI's.
    pub fn from_docker(docker: bool) -> MediaTypes {
        if docker {
            MediaTypes::Docker
        } else {
            MediaTypes::Oci
        }
    }

    /// The layer media type for `compression` in this family.
    pub fn layer(self, compression: Compression) -> &'static str {
        match (self, compression) {
            (MediaTypes::Oci, Compression::Gzip) => "application/vnd.oci.image.layer.v1.tar+gzip",
            (MediaTypes::Oci, Compression::Zstd) => "application/vnd.oci.image.layer.v1.tar+zstd",
            (MediaTypes::Oci, Compression::None) => "application/vnd.oci.image.layer.v1.tar",
            (MediaTypes::Docker, Compression::Gzip) => {
                "application/vnd.docker.image.rootfs.diff.tar.gzip"
            }
            (MediaTypes::Docker, Compression::Zstd) => {
                "application/vnd.docker.image.rootfs.diff.tar.zstd"
            }
            (MediaTypes::Docker, Compression::None) => {
                "application/vnd.docker.image.rootfs.diff.tar"
            }
        }
    }
}

/// How [`write_tree`] reads the directory it is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TreeMode {
    /// Every file is written as it is.
    #[default]
    Tree,
    /// An overlayfs upper dir: a 0:0 character device is a deletion
    /// (`.wh.NAME`), an opaque directory gets a `.wh..wh..opq` marker.
    OverlayUpper,
}

/// How a layer is written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LayerOptions {
    pub compression: Compression,
    /// Compression level; `None` is gzip 6 / zstd 3.
    pub level: Option<i32>,
    /// Clamp every mtime to at most this (seconds since the epoch).
    pub source_date_epoch: Option<i64>,
    pub mode: TreeMode,
    /// Host ids in the tree are written as the container ids they map to
    /// (rootless builds); an unmapped id is an error.
    pub id_map: Option<IdMap>,
    pub media_types: MediaTypes,
}

/// A finished layer blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerBlob {
    /// Digest of the blob as written (compressed).
    pub digest: Digest,
    /// Digest of the uncompressed tar.
    pub diff_id: Digest,
    /// Size of the blob as written, in bytes.
    pub size: u64,
    pub media_type: String,
}
