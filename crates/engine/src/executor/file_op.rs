//! The `COPY`/`ADD` step of the solver: where the sources come from (the
//! context, a named context, a stage or an image), what they hash to (the
//! cache key takes their content, never mtimes), and on a miss the layer
//! streamed from them onto the parent's destination view (path indexes, a
//! whole snapshot or an overlay view: nothing unpacked to find it).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use super::BuildError;
use super::build::{Builder, SourceOf};
use super::key::KeyBuilder;
use super::records::LastRun;
use super::snapshot::dest_view;
use super::state::{ImageState, Layer};
use crate::context::{Context, HashCache, Matcher, SelectionHash, hash_selection};
use crate::digest::Digest;
use crate::ops::file::{Chown, CopyPlan, HiddenPaths, InlineSource, SourceSpec, write_layer_on};
use crate::plan::Step;
use crate::plan::op::{FileOp, FromInput};

impl Builder<'_> {
    /// What `sources` (minus `exclude`) under `root` hash to, read as BuildKit
    /// reads them: a stage's or image's filesystem (`fs_source`: no
    /// `.dockerignore`, symlinks kept), a named local context (its own
    /// `.dockerignore`) or the build context (the build's hash cache). A
    /// source that is itself a symlink is followed in a context, as BuildKit.
    pub(super) fn hash_sources(
        &self,
        root: &Path,
        fs_source: bool,
        named: bool,
        sources: &[String],
        exclude: &[String],
    ) -> Result<SelectionHash, BuildError> {
        let other;
        let memory = HashCache::in_memory();
        let (ctx, hashes) = if fs_source {
            other = Context::with_matcher(root, Matcher::default())?;
            (&other, &memory)
        } else if named {
            other = Context::open(root, None)?;
            (&other, &memory)
        } else {
            (&self.context, &self.hashes)
        };
        let sel = ctx.select(sources, exclude, !fs_source)?;
        Ok(hash_selection(&sel, hashes)?)
    }

    /// A source missing from a stage, an image or a named context is
    /// named as such, not as missing from the build context.
    fn name_the_source(&self, e: BuildError, place: Option<&str>) -> BuildError {
        let (
            Some(place),
            BuildError::Context(crate::context::ContextError::NotFound { source_path }),
        ) = (place, &e)
        else {
            return e;
        };
        BuildError::SourceNotFound {
            path: source_path.clone(),
            place: place.to_string(),
        }
    }

    /// The `.dockerignore` of a context: the build's, or a named context's own.
    pub(super) fn ignore_of(&self, root: &Path, named: bool) -> Result<Matcher, BuildError> {
        Ok(if named {
            Context::open(root, None)?.ignore().clone()
        } else {
            self.context.ignore().clone()
        })
    }

    /// The step's key: its op's fields, its parent's key, and what its
    /// sources hash to. A stage's or image's files are hashed once per
    /// (chain, sources): its ChainID is its content, so a cached rebuild
    /// needs no view of it.
    pub(super) fn file_key(
        &self,
        step: &Step,
        op: &FileOp,
        parent: &ImageState,
        inputs: &[Arc<ImageState>],
    ) -> Result<(String, FilePending), BuildError> {
        let (id, started) = self.begin_step(&step.stage, &step.text);
        let source = self.source_of(&op.from, inputs)?;
        let stage_source = matches!(source, SourceOf::State(_));
        let local_sources: Vec<String> =
            op.sources.iter().filter(|s| !is_url(s)).cloned().collect();
        let memo = match &source {
            SourceOf::State(st) if !local_sources.is_empty() => {
                Some(source_memo_key(st, &local_sources, &op.exclude))
            }
            _ => None,
        };
        let remembered = match &memo {
            Some(k) => self
                .store
                .get_cache_record(k)?
                .and_then(|b| serde_json::from_slice::<SourceHash>(&b).ok())
                .or_else(|| {
                    // An imported cache's: the stage need not be fetched.
                    let digest = self.opts.cache_from.iter().find_map(|c| c.source(k))?;
                    Some(SourceHash {
                        digest,
                        inputs: Vec::new(),
                    })
                }),
            None => None,
        };
        let (content, hashed) = if let Some(h) = remembered {
            (h.digest, h.inputs)
        } else if local_sources.is_empty() {
            (crate::digest::Digest::of(b""), Vec::new())
        } else {
            let root = match &source {
                SourceOf::Dir(dir) => dir.clone(),
                SourceOf::State(st) => self.state_root(st)?,
            };
            let h = self
                .hash_sources(
                    &root,
                    stage_source,
                    op.from != FromInput::Context,
                    &local_sources,
                    &op.exclude,
                )
                .map_err(|e| self.name_the_source(e, op.from_place.as_deref()))?;
            let hashed: Vec<_> = h.entries.into_iter().map(|e| (e.path, e.digest)).collect();
            if let Some(k) = &memo {
                let record = SourceHash {
                    digest: h.digest.clone(),
                    inputs: hashed.clone(),
                };
                if let Ok(bytes) = serde_json::to_vec(&record) {
                    self.store.put_cache_record(k, &bytes)?;
                }
            }
            (h.digest, hashed)
        };
        if let Some(k) = &memo {
            self.ledger.source(k, content.clone());
        }
        let key = copy_key(&parent.key, op, &op.workdir, &content);
        let now = LastRun {
            parent: parent.key.to_string(),
            command: file_op_text(op),
            workdir: op.workdir.clone(),
            inputs: hashed,
        };
        Ok((
            key.to_string(),
            FilePending {
                id,
                started,
                key,
                now,
            },
        ))
    }

    pub(super) fn file_load(
        &self,
        step: &Step,
        op: &FileOp,
        p: &FilePending,
        key: &str,
        parent: &ImageState,
    ) -> Result<Option<ImageState>, BuildError> {
        let Some((layer, created)) = self.cached_layer(&step.stage, key)? else {
            return Ok(None);
        };
        self.announce_hit(p.id, key);
        self.file_done(step, op, p, layer, created, parent.clone())
            .map(Some)
    }

    pub(super) fn file_run(
        &self,
        step: &Step,
        op: &FileOp,
        p: FilePending,
        key: &str,
        inputs: Vec<Arc<ImageState>>,
    ) -> Result<ImageState, BuildError> {
        let parent = &inputs[0];
        if !self.ignores_cache(&step.stage) {
            self.explain(p.id, &step.stage, step.line(), &p.now);
        }
        let source = self.source_of(&op.from, &inputs)?;
        let stage_source = matches!(source, SourceOf::State(_));
        let source_root = match &source {
            SourceOf::Dir(dir) => dir.clone(),
            SourceOf::State(st) => self.state_root(st)?,
        };
        let hidden = if stage_source {
            None
        } else {
            Some(HiddenPaths {
                root: source_root.clone(),
                matcher: self.ignore_of(&source_root, op.from != FromInput::Context)?,
            })
        };
        let add = op.add.as_ref();
        let plan = CopyPlan {
            sources: op
                .sources
                .iter()
                .map(|s| {
                    if stage_source {
                        SourceSpec::stage(&source_root, s.clone())
                    } else {
                        SourceSpec::context(&source_root, s.clone()).hiding(hidden.clone())
                    }
                })
                .collect(),
            inline: op
                .inline
                .iter()
                .map(|f| InlineSource {
                    name: f.name.clone(),
                    data: f.data.clone().into_bytes(),
                })
                .collect(),
            dest: op.dest.clone(),
            workdir: op.workdir.clone(),
            chown: op.chown.clone().map(Chown::Spec),
            chmod: op.chmod.clone(),
            parents: op.parents,
            excludes: op.exclude.clone(),
            link: op.link,
            is_add: add.is_some(),
            unpack: add.and_then(|a| a.unpack),
            checksum: add.and_then(|a| a.checksum.clone()),
            keep_git_dir: add.and_then(|a| a.keep_git_dir),
            now: self
                .opts
                .source_date_epoch
                .map(|s| std::time::UNIX_EPOCH + std::time::Duration::from_secs(s.max(0) as u64)),
            scratch_dir: Some(self.store.root().join("tmp")),
            runtime: crate::runtime::Runtime(Some(self.opts.runtime.clone())),
        };
        let view = dest_view(self.store, &self.views, &parent.layers)?;
        let (layer, created) = self.write_layer_with_inputs(key, &p.now.inputs, |w| {
            write_layer_on(&plan, view.as_ref(), w)?;
            Ok(())
        })?;
        self.ledger.ran();
        self.file_done(
            step,
            op,
            &p,
            layer,
            created,
            super::build::parent_of(inputs)?,
        )
    }

    fn file_done(
        &self,
        step: &Step,
        op: &FileOp,
        p: &FilePending,
        layer: Layer,
        created: Option<String>,
        parent: ImageState,
    ) -> Result<ImageState, BuildError> {
        self.remember(&step.stage, step.line(), &p.now)?;
        Ok(self.step_done(
            step,
            &p.key,
            parent,
            (Some(layer), created),
            &op.history,
            (p.id, p.started),
        ))
    }
}

/// What the key phase of a `COPY`/`ADD` found.
pub(super) struct FilePending {
    id: usize,
    started: Instant,
    key: Digest,
    /// What `--explain` compares (the sources' entry hashes in `inputs`).
    now: LastRun,
}

fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// The op as `--explain` compares it with its last run.
fn file_op_text(op: &FileOp) -> String {
    format!(
        "{} {:?} {:?} {} from={:?} chown={:?} chmod={:?} link={} parents={} exclude={:?} add={:?}",
        if op.add.is_some() { "ADD" } else { "COPY" },
        op.sources,
        op.inline,
        op.dest,
        op.from_name,
        op.chown,
        op.chmod,
        op.link,
        op.parents,
        op.exclude,
        op.add
    )
}

/// The cache key of a `COPY` or `ADD`: its parent, each field of the
/// instruction written out by name (never the parser's serialisation, so a
/// field added to the parser changes no key), the working directory the
/// destination is resolved against, and the sources' content.
pub(crate) fn copy_key(parent: &Digest, op: &FileOp, workdir: &str, content: &Digest) -> Digest {
    let flag = |b: bool| if b { "true" } else { "false" };
    let mut key = KeyBuilder::new(if op.add.is_some() { "add" } else { "copy" })
        .digest("parent", parent)
        .strs("sources", &op.sources)
        .str("inline", &op.inline.len().to_string());
    for f in &op.inline {
        key = key
            .str("name", &f.name)
            .str("data", &f.data)
            .str("expand", flag(f.expand))
            .str("chomp", flag(f.chomp));
    }
    key = key
        .str("dest", &op.dest)
        .opt("chown", op.chown.as_deref())
        .opt("chmod", op.chmod.as_deref())
        .str("link", flag(op.link));
    key = match &op.add {
        None => key
            .opt("from", op.from_name.as_deref())
            .str("parents", flag(op.parents))
            .strs("exclude", &op.exclude),
        Some(a) => key
            .opt("keep-git-dir", a.keep_git_dir.map(flag))
            .opt("checksum", a.checksum.as_deref())
            .opt("unpack", a.unpack.map(flag))
            .strs("exclude", &op.exclude),
    };
    key.str("workdir", workdir)
        .digest("content", content)
        .finish()
}

/// A stage source's content digest, remembered by [`source_memo_key`].
#[derive(serde::Serialize, serde::Deserialize)]
struct SourceHash {
    digest: crate::digest::Digest,
    inputs: Vec<(String, crate::digest::Digest)>,
}

/// The record naming what `sources` (minus `exclude`) of the filesystem
/// `st` hash to: keyed by its ChainID, which is its content.
fn source_memo_key(st: &ImageState, sources: &[String], exclude: &[String]) -> String {
    let chain = crate::store::chain_ids(&st.diff_ids())
        .pop()
        .map(|c| c.to_string())
        .unwrap_or_default();
    let key = KeyBuilder::new("copy-source")
        .str("chain", &chain)
        .strs("sources", sources)
        .strs("exclude", exclude)
        .finish();
    format!("copy-source:{key}")
}
