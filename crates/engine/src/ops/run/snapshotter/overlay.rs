//! The overlay snapshotter: the sandbox mounts overlayfs (`lowerdir` the
//! stack, `upperdir` the step's upper dir, `workdir` in the scratch dir,
//! `nodev`) as the step's root, and the kernel writes the changes into the
//! upper dir in its own format.
//!
//! What it guarantees: the upper dir is what overlayfs wrote (whiteouts as
//! 0:0 character devices, `trusted.overlay.opaque=y`, or `user.` inside a
//! user namespace), less the copy-ups that changed nothing: a file opened
//! for writing, or a directory a mount point was made under, is copied up
//! whether or not it changed; `commit` removes those (`prune`), as
//! BuildKit's differ leaves them out. overlayfs's own behaviour stays: a
//! write to one name of a lower hard-link pair copies that name up alone.

use std::path::{Path, PathBuf};

use hoist_sandbox::Rootfs;

use super::{Prepared, Snapshotter, SnapshotterKind, prune::prune_copy_ups};
use crate::ops::run::{RunError, io};

/// overlayfs, mounted by the sandbox.
#[derive(Debug, Clone, Copy, Default)]
pub struct OverlaySnapshotter;

impl Snapshotter for OverlaySnapshotter {
    type State = ();

    const KIND: SnapshotterKind = SnapshotterKind::Overlay;

    fn prepare(
        &self,
        lower: &[PathBuf],
        upper: &Path,
        scratch: &Path,
    ) -> Result<Prepared<()>, RunError> {
        let (lower, merged) = super::layout(lower, upper, scratch, true)?;
        Ok(Prepared::new(
            Rootfs {
                lower,
                upper: upper.to_path_buf(),
                work: scratch.join("work"),
                merged,
                copy: false,
            },
            (),
        ))
    }

    fn commit(&self, prepared: Prepared<()>) -> Result<(), RunError> {
        let (r, ()) = prepared.into_parts();
        prune_copy_ups(&r.upper, &r.lower).map_err(io("read the step's changes in", &r.upper))
    }

    /// The mount lived in the sandbox's mount namespace and went with it;
    /// the work dir is the scratch dir's.
    fn cleanup(&self, _prepared: Prepared<()>) -> Result<(), RunError> {
        Ok(())
    }
}
