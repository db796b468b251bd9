//! Snapshotters: how a `RUN` step gets its root filesystem from the lower
//! stack (the state so far, top first) and how its changes become an upper
//! dir in overlayfs's format, the one the layer writer reads
//! (`TreeMode::OverlayUpper`): new and changed entries, a 0:0 character
//! device for each deleted name, `overlay.opaque=y` on a directory that
//! hides everything below it.
//!
//! ```text
//! prepare(lower, upper, scratch) ──▶ Prepared { rootfs } ──sandbox──▶ step
//!     step exit 0 ──▶ commit(prepared): upper = the step's changes
//!     anything else ──▶ cleanup(prepared)
//! ```
//!
//! Two implementations behind one trait, as containerd's snapshotters are
//! (learned from its `snapshots.Snapshotter` and shared `testsuite`):
//!
//! - [`OverlaySnapshotter`]: the sandbox mounts overlayfs over the lower
//!   dirs with `upper` as its upper dir; the kernel writes the changes.
//!   `commit` removes copy-ups that changed nothing (`prune`).
//! - [`CopySnapshotter`]: for hosts where overlayfs cannot be mounted. A
//!   plain copy of what the lower stack shows is the root; `commit` diffs
//!   it against the lower stack into `upper`.
//!
//! One test suite (`crates/engine/tests/snapshotter_suite.rs`) runs the
//! same steps against both and requires the same upper dir from each.
//!
//! [`Snapshotters`] is the build's choice between them: the copying one
//! when `HOIST_SNAPSHOTTER=copy`, or once a step (or the isolation probe)
//! found the overlay unavailable — then with one warning line, and for
//! every later step of that build.

mod copying;
mod overlay;
mod prune;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use hoist_sandbox::Rootfs;

pub use copying::{CopySnapshotter, Merged};
pub use overlay::OverlaySnapshotter;
pub use prune::prune_copy_ups;

use super::{RunError, RunOutcome, RunRequest, io};

/// The environment variable that forces the copying snapshotter (`copy`).
pub const SNAPSHOTTER_ENV: &str = "HOIST_SNAPSHOTTER";

/// Which snapshotter a step uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotterKind {
    /// overlayfs over the lower dirs; its upper dir is the diff.
    Overlay,
    /// A plain copy of the lower dirs, diffed after the step (slower).
    Copy,
}

/// A step's root, made by [`Snapshotter::prepare`], and what the
/// snapshotter needs back to commit or clean it up.
#[derive(Debug)]
pub struct Prepared<S> {
    /// What the sandbox makes the root from: an overlay to mount, or
    /// (`copy`) a plain directory used as it is.
    pub rootfs: Rootfs,
    state: S,
}

impl<S> Prepared<S> {
    fn new(rootfs: Rootfs, state: S) -> Self {
        Self { rootfs, state }
    }

    fn into_parts(self) -> (Rootfs, S) {
        (self.rootfs, self.state)
    }
}

/// How a step's root is made and its changes found.
pub trait Snapshotter {
    /// What `prepare` hands to `commit` besides the root.
    type State;

    const KIND: SnapshotterKind;

    /// Make the root of a step over `lower` (top first; empty: scratch)
    /// whose changes go to `upper` (an empty directory, given the top
    /// lower's owner and mode), with its own files in `scratch` (an empty
    /// directory that outlives the step).
    fn prepare(
        &self,
        lower: &[PathBuf],
        upper: &Path,
        scratch: &Path,
    ) -> Result<Prepared<Self::State>, RunError>;

    /// After a step that succeeded (and whose root is no longer mounted):
    /// leave in `upper` exactly what it changed, in overlayfs's format.
    fn commit(&self, prepared: Prepared<Self::State>) -> Result<(), RunError>;

    /// After a step that failed or never ran: remove what `prepare` made
    /// (`upper` is the caller's).
    fn cleanup(&self, prepared: Prepared<Self::State>) -> Result<(), RunError>;
}

/// The lower stack as the root is made from it (an empty dir in `scratch`
/// for scratch), and the merge point `scratch/merged`, made; `upper` gets
/// the top lower's owner and mode (an overlay's root shows the upper
/// dir's). With `work`, `scratch/work` is made for overlayfs.
fn layout(
    lower: &[PathBuf],
    upper: &Path,
    scratch: &Path,
    work: bool,
) -> Result<(Vec<PathBuf>, PathBuf), RunError> {
    let merged = scratch.join("merged");
    let mut dirs = vec![merged.clone()];
    if work {
        dirs.push(scratch.join("work"));
    }
    let mut lower = lower.to_vec();
    if lower.is_empty() {
        lower.push(scratch.join("empty"));
        dirs.push(lower[0].clone());
    }
    for d in &dirs {
        std::fs::create_dir(d).map_err(io("mkdir", d))?;
    }
    let top = std::fs::metadata(&lower[0]).map_err(io("stat", &lower[0]))?;
    std::fs::set_permissions(upper, std::fs::Permissions::from_mode(top.mode() & 0o7777))
        .map_err(io("chmod", upper))?;
    rustix::fs::chown(
        upper,
        Some(rustix::fs::Uid::from_raw(top.uid())),
        Some(rustix::fs::Gid::from_raw(top.gid())),
    )
    .map_err(|e| io("chown", upper)(e.into()))?;
    Ok((lower, merged))
}

/// The build's choice of snapshotter: overlay until the host refuses it
/// (remembered here, for the rest of the build), or copying when
/// `HOIST_SNAPSHOTTER=copy`.
#[derive(Debug, Default)]
pub struct Snapshotters {
    overlay_missing: AtomicBool,
}

impl Snapshotters {
    pub fn new() -> Self {
        Self::default()
    }

    /// The isolation probe found the overlay refused: every step copies
    /// (the isolation line said so; no warning of its own).
    pub fn overlay_refused(&self) {
        self.overlay_missing.store(true, Ordering::SeqCst);
    }

    /// What the next step will use.
    pub fn kind(&self) -> SnapshotterKind {
        let forced = std::env::var_os(SNAPSHOTTER_ENV).is_some_and(|v| v == "copy");
        if forced || self.overlay_missing.load(Ordering::SeqCst) {
            SnapshotterKind::Copy
        } else {
            SnapshotterKind::Overlay
        }
    }

    /// Run `req` over an overlay, or a copy when forced or when the host
    /// has no overlay (then with one warning line through `on_line`, and
    /// the step run again over a copy).
    pub fn run(
        &self,
        req: &RunRequest,
        on_line: &mut dyn FnMut(&str),
    ) -> Result<RunOutcome, RunError> {
        if self.kind() == SnapshotterKind::Copy {
            return super::run_with(req, SnapshotterKind::Copy, on_line);
        }
        match super::run_with(req, SnapshotterKind::Overlay, on_line) {
            Err(RunError::Sandbox(e)) if e.starts_with(hoist_sandbox::OVERLAY_UNAVAILABLE) => {
                if !self.overlay_missing.swap(true, Ordering::SeqCst) {
                    let why = e[hoist_sandbox::OVERLAY_UNAVAILABLE.len()..]
                        .trim_start_matches([':', ' ']);
                    on_line(&format!(
                        "hoist: overlayfs is not available here ({why}); using the copying snapshotter (slower)"
                    ));
                }
                // The overlay was never mounted: the upper dir is untouched.
                super::run_with(req, SnapshotterKind::Copy, on_line)
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The choice is the build's: one build's refused overlay is not
    /// another's (the process-wide flag this replaced was).
    #[test]
    fn a_refused_overlay_is_remembered_by_its_build_only() {
        let forced = std::env::var_os(SNAPSHOTTER_ENV).is_some_and(|v| v == "copy");
        let fresh = if forced {
            SnapshotterKind::Copy
        } else {
            SnapshotterKind::Overlay
        };
        let (one, other) = (Snapshotters::new(), Snapshotters::new());
        assert_eq!(one.kind(), fresh);
        one.overlay_refused();
        assert_eq!(one.kind(), SnapshotterKind::Copy);
        assert_eq!(other.kind(), fresh);
    }
}
