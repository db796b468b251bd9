//! COPY and ADD with BuildKit's semantics (`dockerfile2llb`'s
//! `dispatchCopy`, the file-op backend and fsutil's copier), in two output
//! modes over one resolution step:
//!
//! - [`write_layer`] streams the result straight from the source files into
//!   a [`LayerWriter`], reading the parent snapshot only to resolve the
//!   destination (symlinks, existing directories, `/etc/passwd`);
//! - [`apply_to_dir`] applies the same result onto a root directory.
//!
//! The rules, each mirrored from BuildKit (the tests name the case):
//! a directory source copies its contents; a file goes inside a destination
//! that ends with `/` or is a directory; wildcards match per component (Go's
//! `filepath.Match`) and a wildcard matching nothing copies nothing; missing
//! parents are created (`0755`, or the octal `--chmod`, owned by the
//! `--chown` user); context files become `0:0` unless `--chown`, files from
//! another stage keep their ids; modes, mtimes, xattrs, symlinks, hardlinks
//! and special files are preserved; the destination is resolved inside the
//! image root, following symlinks as if the root were `/`. `ADD` unpacks
//! local tar archives (plain, gzip, bzip2, xz, zstd: detected by content)
//! into the destination directory, which acts as the archive's `/` (as
//! BuildKit's chroot does: `..` stops there), and downloads `http(s)` URLs
//! (mode `0600`, mtime from `Last-Modified`), verifying `--checksum`. For a
//! build-context source, [`SourceSpec::hiding`] makes `.dockerignore`d paths
//! invisible.
//!
//! Deliberate differences from BuildKit (each a silent surprise there):
//! several sources into a non-directory destination is an error where
//! BuildKit keeps the last one; an unknown `--chown` name is an error where
//! BuildKit uses 0; `--exclude` also applies to a file source itself
//! (moby/buildkit#5489, as the reference documents); `--chown` names with
//! `--link` are looked up in the destination image (BuildKit fails); an
//! archive entry named `.wh.*` is refused (a layer cannot carry it), and an
//! archive's hard link to a file the destination already had is written as
//! a copy (a layer cannot link into a lower one).
//!
//! **Invariant:** nothing is created, changed or removed outside the root:
//! every destination path is resolved inside it before anything is written,
//! and [`apply_to_dir`] then walks it with `O_NOFOLLOW` from the root.

mod archive;
mod chmod;
mod copier;
mod dirsink;
mod emit;
mod error;
pub(crate) use crate::gomatch as glob;
mod http;
mod pattern;
mod plan;
mod user;
mod vfs;
mod view;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub use archive::looks_like_archive;
pub use error::FileOpError;
pub use view::DestView;

use crate::layer::LayerWriter;

/// Who owns copied entries when there is no `--chown`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SourceOwner {
    /// `0:0`, as BuildKit's context transfer makes every context file.
    #[default]
    Root,
    /// The ids on disk (`COPY --from` a stage or an image).
    Keep,
}

/// One source as written in the instruction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSpec {
    /// The source root: the context directory or another stage's rootfs.
    pub base_dir: PathBuf,
    /// The source as written, relative to `base_dir` (a leading `/` or
    /// `..` stays inside it); wildcards per component. For `ADD`, an
    /// `http(s)://` URL (then `base_dir` is unused) or a git URL.
    pub pattern: String,
    pub owner: SourceOwner,
    /// Paths of `base_dir` that do not exist for this op (the build
    /// context's `.dockerignore`).
    pub hidden: Option<HiddenPaths>,
}

/// `.dockerignore`: paths below `root` that a `COPY` must not see.
#[derive(Debug, Clone)]
pub struct HiddenPaths {
    pub root: PathBuf,
    pub matcher: crate::context::Matcher,
}

impl PartialEq for HiddenPaths {
    fn eq(&self, other: &HiddenPaths) -> bool {
        self.root == other.root
            && self.matcher.patterns().iter().map(|p| p.text()).eq(other
                .matcher
                .patterns()
                .iter()
                .map(|p| p.text()))
    }
}

impl Eq for HiddenPaths {}

/// Whether `.dockerignore` hides a path, and whether an ignored directory
/// must still be walked because a `!` pattern may re-include below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Hidden {
    Visible,
    /// Does not exist for the op.
    Gone,
    /// Ignored itself, but walked: a `!` pattern may re-include below it.
    Walk,
}

impl HiddenPaths {
    pub(crate) fn check(&self, path: &Path, is_dir: bool) -> Hidden {
        let Ok(rel) = path.strip_prefix(&self.root) else {
            return Hidden::Visible;
        };
        let rel = rel.to_string_lossy();
        if rel.is_empty() || !self.matcher.matches_or_parent_matches(&rel) {
            Hidden::Visible
        } else if is_dir && self.matcher.may_reinclude_below(&rel) {
            Hidden::Walk
        } else {
            Hidden::Gone
        }
    }
}

impl SourceSpec {
    /// A build-context source (files become `0:0` unless `--chown`).
    pub fn context(base_dir: impl Into<PathBuf>, pattern: impl Into<String>) -> SourceSpec {
        SourceSpec {
            base_dir: base_dir.into(),
            pattern: pattern.into(),
            owner: SourceOwner::Root,
            hidden: None,
        }
    }

    /// The same source with `.dockerignore` applied.
    pub fn hiding(mut self, hidden: Option<HiddenPaths>) -> SourceSpec {
        self.hidden = hidden;
        self
    }

    /// A source in another stage's or image's root (ids kept).
    pub fn stage(base_dir: impl Into<PathBuf>, pattern: impl Into<String>) -> SourceSpec {
        SourceSpec {
            base_dir: base_dir.into(),
            pattern: pattern.into(),
            owner: SourceOwner::Keep,
            hidden: None,
        }
    }
}

/// A heredoc source: `COPY <<NAME dest` makes a file `NAME` (mode `0644`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineSource {
    pub name: String,
    pub data: Vec<u8>,
}

/// `--chown`, resolved by the caller or left to this module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chown {
    Ids {
        uid: u32,
        gid: u32,
    },
    /// As written (`user`, `user:group`, `uid:gid`): names are looked up in
    /// the destination image's `/etc/passwd` and `/etc/group`.
    Spec(String),
}

/// What one `COPY` or `ADD` does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyPlan {
    /// Path sources, in instruction order.
    pub sources: Vec<SourceSpec>,
    /// Heredoc sources (after the path sources, as BuildKit orders them).
    pub inline: Vec<InlineSource>,
    /// The destination as expanded; relative to `workdir` unless absolute.
    pub dest: String,
    /// The stage's `WORKDIR` (absolute; empty means `/`).
    pub workdir: String,
    pub chown: Option<Chown>,
    /// `--chmod`: octal up to `07777`, or symbolic (`u+x,go-w`).
    pub chmod: Option<String>,
    /// `--parents`: keep each source's path below its `/./` pivot (or its
    /// whole path).
    pub parents: bool,
    /// `--exclude` patterns (`.dockerignore` syntax), relative to each source.
    pub excludes: Vec<String>,
    /// `--link`: the result does not depend on the destination's contents
    /// (ignored with `--chmod`, as BuildKit does).
    pub link: bool,
    /// `ADD` rather than `COPY`.
    pub is_add: bool,
    /// `--unpack`: `None` unpacks local archives for `ADD` (never URLs).
    pub unpack: Option<bool>,
    /// `--checksum=sha256:…` for an `ADD` of one URL.
    pub checksum: Option<String>,
    /// `--keep-git-dir` (git sources are not supported yet).
    pub keep_git_dir: Option<bool>,
    /// The time stamped on directories and heredoc files this op creates
    /// (BuildKit: the time of the copy); `None` is now.
    pub now: Option<SystemTime>,
    /// Where downloads wait while the op runs; `None` is the temp dir.
    pub scratch_dir: Option<PathBuf>,
    /// The runtime URLs are downloaded on (the build's).
    pub runtime: crate::runtime::Runtime,
}

/// What an op did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyReport {
    /// Entries written (parent directories included).
    pub entries: u64,
    /// File bytes written (before compression).
    pub bytes: u64,
    /// Things not done as asked that did not fail the op (an xattr that
    /// could not be set, a device node that needs root...).
    pub warnings: Vec<String>,
}

/// What kind of source a `SourceSpec::pattern` is, as BuildKit decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// A path in `base_dir`.
    Local,
    /// An `http://` or `https://` URL (not ending in `.git`).
    Http,
    /// A git repository (`git://`, `ssh://`, `user@host:path`, an http(s)
    /// URL whose path ends in `.git`).
    Git,
}

/// Classifies a source string the way `dockerfile2llb` does.
pub fn classify_source(src: &str) -> SourceKind {
    plan::classify(src)
}

/// Writes the layer of `plan` into `writer`. `dest_root_view` is the parent
/// snapshot (read only; `None` for `FROM scratch`): it is where the
/// destination is resolved and `--chown` names are looked up. Entries go
/// out sorted, parents first, with the parent directories BuildKit's
/// differ would include.
pub fn write_layer<W: Write>(
    plan: &CopyPlan,
    dest_root_view: Option<&Path>,
    writer: &mut LayerWriter<W>,
) -> Result<CopyReport, FileOpError> {
    write_layer_on(plan, dest_root_view.map(DestView::dir).as_ref(), writer)
}

/// [`write_layer`] over any view of the destination image: a directory,
/// or its layers' path indexes (nothing unpacked).
pub fn write_layer_on<W: Write>(
    plan: &CopyPlan,
    dest: Option<&DestView>,
    writer: &mut LayerWriter<W>,
) -> Result<CopyReport, FileOpError> {
    let sink = emit::LayerSink::new(writer);
    plan::run(plan, dest, dest, sink)
}

/// Applies `plan` onto the root directory `root` (a materialised snapshot),
/// giving what unpacking [`write_layer`]'s output onto it gives. Ownership
/// is set when running as root (else left to the current user, with a
/// warning per failure).
pub fn apply_to_dir(plan: &CopyPlan, root: &Path) -> Result<CopyReport, FileOpError> {
    let sink = dirsink::DirSink::open(root).map_err(|source| FileOpError::Io {
        op: plan::word(plan),
        src: String::new(),
        dest: plan.dest.clone(),
        action: "opening the root",
        path: root.to_path_buf(),
        source,
    })?;
    let view = DestView::dir(root);
    plan::run(plan, Some(&view), Some(&view), sink)
}

impl CopyPlan {
    /// Checks the flags without touching any file (chmod syntax, checksum
    /// and URL rules): what the front end rejects before running.
    pub fn validate(&self) -> Result<(), FileOpError> {
        plan::validate(self).map(|_| ())
    }
}
