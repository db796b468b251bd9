//! The `COPY`/`ADD` step of the solver: where the sources come from (the
//! context, a named context, a stage or an image), what they hash to (the
//! cache key takes their content, never mtimes), and on a miss the layer
//! streamed from them onto the parent's destination view (path indexes, a
//! whole snapshot or an overlay view: nothing unpacked to find it).

use std::collections::BTreeMap;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use hoist_dockerfile::instruction::{Command, Files, Instruction};

use super::config::commit_history;
use super::key::KeyBuilder;
use super::records::LastRun;
use super::snapshot::dest_view;
use super::solve::{Solver, SourceOf};
use super::state::ImageState;
use super::{BuildError, BuildEvent};
use crate::context::{Context, HashCache, Matcher, SelectionHash, hash_selection};
use crate::digest::Digest;
use crate::ops::file::{Chown, CopyPlan, HiddenPaths, InlineSource, SourceSpec, write_layer_on};

impl Solver<'_> {
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
    fn name_the_source(&self, e: BuildError, from: Option<&str>) -> BuildError {
        let (
            Some(name),
            BuildError::Context(crate::context::ContextError::NotFound { source_path }),
        ) = (from, &e)
        else {
            return e;
        };
        let place = if self.opts.named_contexts.contains_key(name) {
            format!("build context {name}")
        } else if name.parse::<usize>().is_ok() || self.df.stage_by_name(name).is_some() {
            format!("stage {name}")
        } else {
            format!("image {name}")
        };
        BuildError::SourceNotFound {
            path: source_path.clone(),
            place,
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

    pub(super) fn copy(
        &self,
        stage: &str,
        ins: &Instruction,
        mut state: ImageState,
        results: &BTreeMap<usize, ImageState>,
    ) -> Result<ImageState, BuildError> {
        let (files, from, chown, chmod, link, parents, exclude, add) = match &ins.command {
            Command::Copy(c) => (
                &c.files,
                c.from.clone(),
                c.chown.clone(),
                c.chmod.clone(),
                c.link,
                c.parents,
                c.exclude.clone(),
                None,
            ),
            Command::Add(a) => (
                &a.files,
                None,
                a.chown.clone(),
                a.chmod.clone(),
                a.link,
                false,
                a.exclude.clone(),
                Some(a),
            ),
            _ => {
                return Err(BuildError::Internal(
                    "copy() on a non-COPY instruction".into(),
                ));
            }
        };
        let (id, started) = self.begin_step(stage, ins.original.trim());
        // Where the sources come from, and what they hash to. A stage's or
        // image's files are hashed once per (chain, sources): its ChainID is
        // its content, so a cached rebuild needs no view of it.
        let source = self.source_of(from.as_deref(), results)?;
        let stage_source = matches!(source, SourceOf::State(_));
        let url_sources: Vec<&String> = files
            .sources
            .iter()
            .filter(|s| s.starts_with("http://") || s.starts_with("https://"))
            .collect();
        let local_sources: Vec<String> = files
            .sources
            .iter()
            .filter(|s| !url_sources.contains(s))
            .cloned()
            .collect();
        let root_cell = std::cell::OnceCell::new();
        let root = || -> Result<PathBuf, BuildError> {
            if let Some(r) = root_cell.get() {
                return Ok(PathBuf::clone(r));
            }
            let r = match &source {
                SourceOf::Dir(dir) => dir.clone(),
                SourceOf::State(st) => self.state_root(st)?,
            };
            Ok(root_cell.get_or_init(|| r).clone())
        };
        let memo = match &source {
            SourceOf::State(st) if !local_sources.is_empty() => {
                Some(source_memo_key(st, &local_sources, &exclude))
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
        let (content, inputs) = if let Some(h) = remembered {
            (h.digest, h.inputs)
        } else if local_sources.is_empty() {
            (crate::digest::Digest::of(b""), Vec::new())
        } else {
            let h = self
                .hash_sources(
                    &root()?,
                    stage_source,
                    from.is_some(),
                    &local_sources,
                    &exclude,
                )
                .map_err(|e| self.name_the_source(e, from.as_deref()))?;
            let inputs: Vec<_> = h.entries.into_iter().map(|e| (e.path, e.digest)).collect();
            if let Some(k) = &memo {
                let record = SourceHash {
                    digest: h.digest.clone(),
                    inputs: inputs.clone(),
                };
                if let Ok(bytes) = serde_json::to_vec(&record) {
                    self.store.put_cache_record(k, &bytes)?;
                }
            }
            (h.digest, inputs)
        };
        if let Some(k) = &memo {
            self.used_sources
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(k.clone(), content.clone());
        }
        let wd = state
            .config
            .config
            .working_dir
            .clone()
            .unwrap_or_else(|| "/".into());
        let parent_key = state.key.clone();
        let key = copy_key(&state.key, &ins.command, &wd, &content);
        state.key = key.clone();
        let cache_key = key.to_string();
        let slot = self.slot(&cache_key);
        let _running = slot.lock().unwrap_or_else(|p| p.into_inner());
        let created;
        if let Some((layer, when)) = self.cached_layer(stage, &cache_key)? {
            self.announce_hit(id, &cache_key);
            state.layers.push(layer);
            created = when;
        } else {
            if !self.ignores_cache(stage) {
                let now = LastRun {
                    parent: parent_key.to_string(),
                    command: serde_json::to_string(&ins.command).unwrap_or_default(),
                    workdir: wd.clone(),
                    inputs: inputs.clone(),
                };
                self.explain(id, stage, ins, &now);
            }
            let source_root = root()?;
            let hidden = if stage_source {
                None
            } else {
                Some(HiddenPaths {
                    root: source_root.clone(),
                    matcher: self.ignore_of(&source_root, from.is_some())?,
                })
            };
            let plan = CopyPlan {
                sources: files
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
                inline: inline_sources(files),
                dest: files.dest.clone(),
                workdir: wd,
                chown: chown.map(Chown::Spec),
                chmod,
                parents,
                excludes: exclude,
                link,
                is_add: add.is_some(),
                unpack: add.and_then(|a| a.unpack),
                checksum: add.and_then(|a| a.checksum.clone()),
                keep_git_dir: add.and_then(|a| a.keep_git_dir),
                now: self.opts.source_date_epoch.map(|s| {
                    std::time::UNIX_EPOCH + std::time::Duration::from_secs(s.max(0) as u64)
                }),
                scratch_dir: Some(self.store.root().join("tmp")),
                runtime: crate::runtime::Runtime(Some(self.opts.runtime.clone())),
            };
            let view = dest_view(self.store, &self.views, &state.layers)?;
            let (layer, when) = self.write_layer_with_inputs(&cache_key, &inputs, |w| {
                write_layer_on(&plan, view.as_ref(), w)?;
                Ok(())
            })?;
            self.executed.fetch_add(1, Ordering::SeqCst);
            state.layers.push(layer);
            created = when;
        }
        self.visit(stage, &cache_key, state.layers.last(), created.clone());
        self.remember(
            stage,
            ins,
            &LastRun {
                parent: parent_key.to_string(),
                command: serde_json::to_string(&ins.command).unwrap_or_default(),
                workdir: state
                    .config
                    .config
                    .working_dir
                    .clone()
                    .unwrap_or_else(|| "/".into()),
                inputs,
            },
        )?;
        let created_by = copy_history(&ins.command);
        commit_history(
            &mut state.config,
            created_by,
            true,
            self.created.clone().or(created),
        );
        self.progress.event(BuildEvent::Done {
            id,
            seconds: started.elapsed().as_secs_f64(),
        });
        Ok(state)
    }
}

/// The history line BuildKit's `dispatchCopy` writes:
/// `COPY [--parents] [--chown=..] [--chmod=..] SRC... [<<DOC]... DEST # buildkit`.
/// The cache key of a `COPY` or `ADD`: its parent, each field of the
/// instruction written out by name (never the parser's serialisation, so a
/// field added to the parser changes no key), the working directory the
/// destination is resolved against, and the sources' content.
pub(crate) fn copy_key(parent: &Digest, cmd: &Command, workdir: &str, content: &Digest) -> Digest {
    let (op, files, chown, chmod, link) = match cmd {
        Command::Copy(c) => ("copy", &c.files, &c.chown, &c.chmod, c.link),
        Command::Add(a) => ("add", &a.files, &a.chown, &a.chmod, a.link),
        // Not a file op: a key no file op can have.
        other => {
            return KeyBuilder::new(other.keyword())
                .digest("parent", parent)
                .finish();
        }
    };
    let flag = |b: bool| if b { "true" } else { "false" };
    let mut key = KeyBuilder::new(op)
        .digest("parent", parent)
        .strs("sources", &files.sources)
        .str("inline", &files.inline.len().to_string());
    for f in &files.inline {
        key = key
            .str("name", &f.name)
            .str("data", &f.data)
            .str("expand", flag(f.expand))
            .str("chomp", flag(f.chomp));
    }
    key = key
        .str("dest", &files.dest)
        .opt("chown", chown.as_deref())
        .opt("chmod", chmod.as_deref())
        .str("link", flag(link));
    key = match cmd {
        Command::Copy(c) => key
            .opt("from", c.from.as_deref())
            .str("parents", flag(c.parents))
            .strs("exclude", &c.exclude),
        Command::Add(a) => key
            .opt("keep-git-dir", a.keep_git_dir.map(flag))
            .opt("checksum", a.checksum.as_deref())
            .opt("unpack", a.unpack.map(flag))
            .strs("exclude", &a.exclude),
        _ => key,
    };
    key.str("workdir", workdir)
        .digest("content", content)
        .finish()
}

fn copy_history(cmd: &Command) -> String {
    let (word, files, chown, chmod, parents) = match cmd {
        Command::Copy(c) => ("COPY", &c.files, &c.chown, &c.chmod, c.parents),
        Command::Add(a) => ("ADD", &a.files, &a.chown, &a.chmod, false),
        _ => return String::new(),
    };
    let mut s = String::from(word);
    if parents {
        s.push_str(" --parents");
    }
    if let Some(c) = chown {
        s.push_str(&format!(" --chown={c}"));
    }
    if let Some(c) = chmod {
        s.push_str(&format!(" --chmod={c}"));
    }
    for src in &files.sources {
        s.push_str(&format!(" {src}"));
    }
    for doc in &files.inline {
        s.push_str(&format!(" <<{}", doc.name));
    }
    s.push_str(&format!(" {} # buildkit", files.dest));
    s
}

fn inline_sources(files: &Files) -> Vec<InlineSource> {
    files
        .inline
        .iter()
        .map(|f| InlineSource {
            name: f.name.clone(),
            data: f.data.clone().into_bytes(),
        })
        .collect()
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
