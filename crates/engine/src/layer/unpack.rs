//! [`unpack`]: a layer blob applied onto a root directory.
//!
//! The blob is read once: through a `VerifyingReader` (descriptor digest and
//! size), a decompressor picked by magic bytes, a hasher (diff_id), and our
//! tar reader. Entries are applied as they stream (see `unpack_entry`), so a
//! blob that fails verification at its end has already changed the root:
//! unpack into a fresh snapshot and discard it on error. Containment does
//! not depend on verification: no entry, verified or not, reaches outside
//! the root.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::reader::TarError;
use super::resolve::Root;
use super::unpack_entry::{Applier, to_path};
use super::{Compression, IdMap, LayerError};
use crate::digest::Digest;

/// Maps a container `(uid, gid)` to the host ids to chown to; `None`
/// leaves the entry owned by the unpacking user (with a warning).
pub type IdMapper = Arc<dyn Fn(u32, u32) -> Option<(u32, u32)> + Send + Sync>;

/// Who owns the unpacked files.
#[derive(Clone, Default)]
pub enum Ownership {
    /// [`Ownership::Preserve`] when running as root, else [`Ownership::Skip`].
    #[default]
    Auto,
    /// The ids in the tar, as they are; a failed chown is an error.
    Preserve,
    /// The ids in the tar mapped to host ids (rootless); a failed chown is
    /// a warning.
    Map(IdMapper),
    /// Everything is owned by the unpacking user.
    Skip,
}

impl Ownership {
    /// Maps container ids to host ids through a user-namespace id map.
    pub fn from_id_map(map: IdMap) -> Ownership {
        Ownership::Map(Arc::new(move |uid, gid| {
            Some((map.uid_to_host(uid)?, map.gid_to_host(gid)?))
        }))
    }
}

impl fmt::Debug for Ownership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Ownership::Auto => "Auto",
            Ownership::Preserve => "Preserve",
            Ownership::Map(_) => "Map(..)",
            Ownership::Skip => "Skip",
        })
    }
}

/// Whether device nodes can be made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Privileges {
    /// Root if the effective uid is 0.
    #[default]
    Auto,
    Root,
    /// Character and block devices are skipped with a warning (FIFOs are
    /// still made: that needs no privilege).
    Rootless,
}

/// How parent paths are resolved inside the root.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Resolver {
    /// `openat2(RESOLVE_IN_ROOT)`, falling back to [`Resolver::Walk`] where
    /// the kernel lacks it.
    #[default]
    Auto,
    /// `openat2` only (an error where the kernel lacks it).
    Openat2,
    /// Our own component-by-component walk.
    Walk,
}

/// How a layer is unpacked.
#[derive(Debug, Clone)]
pub struct UnpackOptions {
    /// The descriptor digest: the blob is verified against it.
    pub digest: Digest,
    /// The descriptor size, when known.
    pub size: Option<u64>,
    /// The expected digest of the uncompressed tar, when known.
    pub diff_id: Option<Digest>,
    pub privileges: Privileges,
    pub ownership: Ownership,
    pub resolver: Resolver,
    /// Keep whiteouts in overlayfs's own format instead of applying them:
    /// `.wh.NAME` becomes a 0:0 character device NAME and `.wh..wh..opq`
    /// an `overlay.opaque` xattr, so the tree can serve as one overlay
    /// lower directory above its parent layers.
    pub overlay_format: bool,
}

impl UnpackOptions {
    pub fn new(digest: Digest) -> UnpackOptions {
        UnpackOptions {
            digest,
            size: None,
            diff_id: None,
            privileges: Privileges::Auto,
            ownership: Ownership::Auto,
            resolver: Resolver::Auto,
            overlay_format: false,
        }
    }
}

/// Something that was not applied as the layer asked, without failing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpackWarning {
    pub path: PathBuf,
    pub message: String,
}

/// What an unpack did.
#[derive(Debug, Clone)]
pub struct UnpackReport {
    /// Entries read (including whiteouts).
    pub entries: u64,
    /// The digest of the uncompressed tar.
    pub diff_id: Digest,
    pub compression: Compression,
    pub warnings: Vec<UnpackWarning>,
}

/// Applies the layer `blob` onto `root`.
pub fn unpack<R: Read>(
    blob: R,
    root: &Path,
    opts: &UnpackOptions,
) -> Result<UnpackReport, LayerError> {
    let digest = &opts.digest;
    let root_dir = Root::open(root, opts.resolver).map_err(|source| LayerError::Root {
        path: root.to_path_buf(),
        source,
    })?;
    let (mut tar, compression) = super::stream::open(blob, digest, opts.size)?;
    let privileged = match opts.privileges {
        Privileges::Auto => rustix::process::geteuid().is_root(),
        Privileges::Root => true,
        Privileges::Rootless => false,
    };
    let mut applier = Applier::new(&root_dir, digest, privileged, &opts.ownership);
    applier.overlay_format = opts.overlay_format;
    loop {
        let entry = match tar.next_entry() {
            Ok(Some(entry)) => entry,
            Ok(None) => break,
            Err(e) => {
                return Err(tar_error(
                    digest,
                    tar.offset(),
                    to_path(tar.current_path()),
                    e,
                ));
            }
        };
        applier.apply(entry, &mut tar)?;
    }
    let diff_id = super::stream::finish(tar, digest, opts.diff_id.as_ref())?;
    let (entries, warnings) = applier.finish()?;
    Ok(UnpackReport {
        entries,
        diff_id,
        compression,
        warnings,
    })
}

pub(crate) fn tar_error(digest: &Digest, offset: u64, path: PathBuf, e: TarError) -> LayerError {
    match e {
        TarError::Io(e) => LayerError::from_read(digest, e),
        TarError::Corrupt(reason) => LayerError::Corrupt {
            digest: digest.clone(),
            offset,
            path,
            reason,
        },
    }
}
