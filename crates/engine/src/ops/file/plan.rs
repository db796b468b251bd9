//! The resolution step shared by both output modes: flags checked, the
//! destination normalised against `WORKDIR`, sources classified (path,
//! URL, git) and expanded (wildcards, `--parents` pivots), then each one
//! copied, unpacked or downloaded in instruction order into the overlay,
//! which [`super::emit`] hands to the sink.

use std::collections::HashMap;
use std::fs::Metadata;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::chmod::ModeSpec;
use super::emit::Sink;
use super::glob;
use super::http::Download;
use super::pattern::Matcher;
use super::vfs::{Key, LinkId, ResolveError, Vfs};
use super::view::DestView;
use super::{CopyPlan, CopyReport, FileOpError, SourceKind, user};

/// `"copy"` or `"add"`, as error messages name the instruction.
pub(crate) fn word(plan: &CopyPlan) -> &'static str {
    if plan.is_add { "add" } else { "copy" }
}

/// BuildKit's `isHTTPSource` / `dfgitutil.ParseGitRef`, simplified to the
/// forms a Dockerfile can reach.
pub(crate) fn classify(src: &str) -> SourceKind {
    if src.starts_with("./") || src.starts_with("../") {
        return SourceKind::Local;
    }
    let lower = src.to_ascii_lowercase();
    if let Some(pos) = lower.find("://")
        && pos > 0
        && lower[..pos].bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return match &lower[..pos] {
            "git" | "ssh" => SourceKind::Git,
            "http" | "https" => {
                let rest = &src[pos + 3..];
                let end = rest.find(['?', '#']).unwrap_or(rest.len());
                let path = rest[..end].find('/').map_or("", |i| &rest[i..end]);
                if path.ends_with(".git") {
                    SourceKind::Git
                } else if src.starts_with("http://") || src.starts_with("https://") {
                    SourceKind::Http
                } else {
                    // `isHTTPSource` wants the scheme in lower case.
                    SourceKind::Local
                }
            }
            _ => SourceKind::Local,
        };
    }
    // scp-like `user@host:path` (BuildKit's gitSSHRegex).
    if let Some((user, rest)) = src.split_once('@')
        && !user.is_empty()
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && let Some((host, _)) = rest.split_once(':')
        && !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return SourceKind::Git;
    }
    SourceKind::Local
}

/// The checked flags of a plan.
pub(crate) struct Flags {
    pub mode: ModeSpec,
    pub checksum: Option<String>,
    pub link: bool,
}

pub(crate) fn validate(plan: &CopyPlan) -> Result<Flags, FileOpError> {
    let op = word(plan);
    let chmod = plan.chmod.as_deref().unwrap_or("");
    let mode = ModeSpec::parse(chmod).map_err(|source| FileOpError::InvalidChmod {
        op,
        value: chmod.to_string(),
        source,
    })?;
    let kinds: Vec<SourceKind> = plan.sources.iter().map(|s| classify(&s.pattern)).collect();
    for (spec, kind) in plan.sources.iter().zip(&kinds) {
        match (plan.is_add, kind) {
            (false, SourceKind::Http) => {
                return Err(FileOpError::UrlInCopy {
                    src: spec.pattern.clone(),
                });
            }
            (false, SourceKind::Git) => {
                return Err(FileOpError::GitInCopy {
                    src: spec.pattern.clone(),
                });
            }
            (true, SourceKind::Git) => {
                let what = if plan.keep_git_dir.is_some() {
                    "ADD from a git repository (with --keep-git-dir)"
                } else {
                    "ADD from a git repository"
                };
                return Err(FileOpError::Unsupported {
                    op,
                    src: spec.pattern.clone(),
                    what: what.to_string(),
                });
            }
            _ => {}
        }
    }
    let checksum = plan.checksum.clone().filter(|c| !c.is_empty());
    if let Some(value) = &checksum {
        let bad = |reason: &str| FileOpError::Checksum {
            op,
            value: value.clone(),
            reason: reason.to_string(),
        };
        if !plan.is_add {
            return Err(bad("checksum can't be specified for COPY"));
        }
        if plan.sources.len() != 1 {
            return Err(bad("checksum can't be specified for multiple sources"));
        }
        if kinds[0] != SourceKind::Http {
            return Err(bad("checksum requires HTTP(S) or Git sources"));
        }
        match value.split_once(':') {
            Some(("sha256", hex))
                if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {}
            Some(("sha256", _)) | None => return Err(bad("invalid checksum digest format")),
            Some((algo, _)) => {
                return Err(bad(&format!(
                    "unsupported digest algorithm {algo:?} (only sha256)"
                )));
            }
        }
    }
    Ok(Flags {
        link: plan.link && mode == ModeSpec::Keep,
        mode,
        checksum,
    })
}

/// `pathRelativeToWorkingDir` then the backend's `cleanPath`: absolute,
/// clean, with a trailing `/` or `/.` kept.
pub(crate) fn normalize_dest(workdir: &str, dest: &str) -> String {
    let dest = if dest.is_empty() || dest == "." {
        "./"
    } else {
        dest
    };
    let joined = if dest.starts_with('/') {
        dest.to_string()
    } else {
        let wd = if workdir.is_empty() { "/" } else { workdir };
        format!("{wd}/{dest}")
    };
    let cleaned =
        String::from_utf8_lossy(&glob::clean(format!("/{joined}").as_bytes())).into_owned();
    if dest.ends_with("/.") {
        if cleaned == "/" {
            "/.".into()
        } else {
            format!("{cleaned}/.")
        }
    } else if dest.ends_with('/') && cleaned != "/" {
        format!("{cleaned}/")
    } else {
        cleaned
    }
}

/// A path source after expansion, resolved (symlinks followed).
pub(crate) struct LocalUnit {
    spec: usize,
    /// The source root, as a view.
    root: PathBuf,
    /// The name the source gets in a directory destination.
    name: Vec<u8>,
    /// Where it is below the root, and what it is.
    key: Key,
    md: Metadata,
    /// `--parents` include pattern.
    includes: Option<Matcher>,
}

/// One source after expansion.
pub(crate) enum Unit {
    Local(Box<LocalUnit>),
    Url { spec: usize },
    Inline { index: usize },
}

/// One op in progress.
pub(crate) struct Op<'p, S: Sink> {
    pub plan: &'p CopyPlan,
    pub word: &'static str,
    /// The destination, normalised (`/a/b`, `/a/b/`, `/a/b/.`).
    pub dest: String,
    pub vfs: Vfs,
    pub sink: S,
    pub chown: Option<(u32, u32)>,
    pub mode: ModeSpec,
    pub now: (i64, u32),
    pub excludes: Option<Matcher>,
    pub downloads: Vec<Download>,
    /// First key written for each multiply-linked source file.
    pub links: HashMap<LinkId, Key>,
    pub next_match: usize,
    pub report: CopyReport,
    /// The source being worked on, for error messages.
    pub src: String,
    /// `--checksum`, checked.
    pub checksum: Option<String>,
    /// `.dockerignore` of the source being copied.
    pub hidden: Option<super::HiddenPaths>,
}

pub(crate) fn run<S: Sink>(
    plan: &CopyPlan,
    view: Option<&DestView>,
    user_db: Option<&DestView>,
    sink: S,
) -> Result<CopyReport, FileOpError> {
    let flags = validate(plan)?;
    let op = word(plan);
    let chown = match &plan.chown {
        None => None,
        Some(super::Chown::Ids { uid, gid }) => Some((*uid, *gid)),
        Some(super::Chown::Spec(s)) if s.is_empty() => None,
        Some(super::Chown::Spec(s)) => Some(user::resolve_chown(
            op,
            s,
            &Vfs::with_view(user_db.cloned()),
        )?),
    };
    let excludes =
        Matcher::new(&plan.excludes).map_err(|(pattern, _)| FileOpError::InvalidPattern {
            op,
            flag: "--exclude",
            pattern,
        })?;
    let now = plan.now.unwrap_or_else(SystemTime::now);
    let now = match now.duration_since(UNIX_EPOCH) {
        Ok(d) => (
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            d.subsec_nanos(),
        ),
        Err(_) => (0, 0),
    };
    let mut op = Op {
        plan,
        word: op,
        dest: normalize_dest(&plan.workdir, &plan.dest),
        vfs: Vfs::with_view(if flags.link { None } else { view.cloned() }),
        sink,
        chown,
        mode: flags.mode,
        now,
        excludes,
        downloads: Vec::new(),
        links: HashMap::new(),
        next_match: 0,
        report: CopyReport::default(),
        hidden: None,
        src: String::new(),
        checksum: flags.checksum,
    };
    op.execute()?;
    op.flush()?;
    let warnings = op
        .sink
        .finish()
        .map_err(|e| e.into_error(op.word, "", &op.dest))?;
    let mut report = op.report;
    report.warnings.extend(warnings);
    Ok(report)
}

impl<S: Sink> Op<'_, S> {
    fn execute(&mut self) -> Result<(), FileOpError> {
        let mut units = Vec::new();
        for (i, spec) in self.plan.sources.iter().enumerate() {
            match classify(&spec.pattern) {
                SourceKind::Local => self.expand(i, &mut units)?,
                _ => units.push(Unit::Url { spec: i }),
            }
        }
        units.extend((0..self.plan.inline.len()).map(|index| Unit::Inline { index }));
        self.check_several(&units)?;
        for unit in units {
            self.run_unit(unit)?;
        }
        Ok(())
    }

    /// Whether a local ADD source would be unpacked.
    fn unpacks(&self, md: &Metadata, path: &Path) -> Result<bool, FileOpError> {
        if !self.plan.is_add || !self.plan.unpack.unwrap_or(true) || !md.is_file() {
            return Ok(false);
        }
        super::archive::detect(path)
            .map(|c| c.is_some())
            .map_err(|e| self.io("reading", path, e))
    }

    /// Several sources need a directory destination. BuildKit itself lets
    /// later sources silently replace earlier ones at a file destination;
    /// that case is refused here with the classic builder's message.
    fn check_several(&self, units: &[Unit]) -> Result<(), FileOpError> {
        if units.len() < 2 || self.dest.ends_with('/') || self.dest.ends_with("/.") {
            return Ok(());
        }
        if let Ok(key) = self.vfs.resolve(&Key::root(), self.dest.as_bytes(), true)
            && self.vfs.lookup(&key).ok() == Some(super::vfs::Found::Dir)
        {
            return Ok(());
        }
        for unit in units {
            let file = match unit {
                Unit::Local(u) => {
                    !u.md.is_dir() && !self.unpacks(&u.md, &u.root.join(u.key.as_path()))?
                }
                Unit::Url { .. } => self.plan.unpack != Some(true),
                Unit::Inline { .. } => true,
            };
            if file {
                return Err(FileOpError::SeveralSources {
                    op: self.word,
                    upper: if self.plan.is_add { "ADD" } else { "COPY" },
                    dest: self.dest.clone(),
                });
            }
        }
        Ok(())
    }

    /// Expands one path source into units (none for an empty wildcard).
    fn expand(&mut self, i: usize, units: &mut Vec<Unit>) -> Result<(), FileOpError> {
        let spec = &self.plan.sources[i];
        self.src.clone_from(&spec.pattern);
        let raw = spec.pattern.as_str();
        let (src, includes, required) = if self.plan.parents {
            let (parent, pattern) = raw.split_once("/./").unwrap_or(("/", raw));
            let cleaned = glob::clean(format!("/{pattern}").as_bytes());
            let pattern = String::from_utf8_lossy(&cleaned[1..]).into_owned();
            let matcher =
                Matcher::new(std::slice::from_ref(&pattern)).map_err(|(pattern, _)| {
                    FileOpError::InvalidPattern {
                        op: self.word,
                        flag: "--parents",
                        pattern,
                    }
                })?;
            let required = (!glob::has_wildcards(parent.as_bytes())
                && !glob::has_wildcards(pattern.as_bytes()))
            .then(|| {
                let joined = glob::clean(format!("/{parent}/{pattern}").as_bytes());
                String::from_utf8_lossy(&joined).into_owned()
            });
            (parent, matcher, required)
        } else {
            (raw, None, None)
        };
        let root = spec.base_dir.clone();
        let svfs = Vfs::new(Some(&root));
        if let Some(required) = required {
            let key = self.source_key(&svfs, required.as_bytes(), &root)?;
            if self.source_stat(&svfs, &key, &root)?.is_none() {
                return Err(self.not_found(&required, &root));
            }
        }
        let cleaned = glob::clean(format!("/{src}").as_bytes());
        let comps: Vec<&[u8]> = cleaned
            .split(|&b| b == b'/')
            .filter(|c| !c.is_empty())
            .collect();
        let wildcard = comps.iter().any(|c| glob::has_wildcards(c));
        let paths = match comps.iter().position(|c| glob::has_wildcards(c)) {
            None => vec![cleaned.clone()],
            Some(w) => {
                let base = comps[..w].join(&b'/');
                let dir = self.source_key(&svfs, &base, &root)?;
                if self.source_stat(&svfs, &dir, &root)?.is_none() {
                    return Err(self.not_found(&String::from_utf8_lossy(&cleaned), &root));
                }
                let mut found = Vec::new();
                self.walk_wildcards(&svfs, &dir, &comps[w..], &mut found)?;
                found.into_iter().map(|k| k.as_bytes().to_vec()).collect()
            }
        };
        for path in paths {
            let key = self.source_key(&svfs, &path, &root)?;
            let Some(md) = self.source_stat(&svfs, &key, &root)? else {
                return Err(self.not_found(&String::from_utf8_lossy(&path), &root));
            };
            if let Some(h) = &spec.hidden
                && h.check(&root.join(key.as_path()), md.is_dir()) == super::Hidden::Gone
            {
                // An ignored file a wildcard found does not exist; one named
                // outright is "not found", as BuildKit says.
                if wildcard {
                    continue;
                }
                return Err(self.not_found(&String::from_utf8_lossy(&path), &root));
            }
            let name = path
                .rsplit(|&b| b == b'/')
                .find(|c| !c.is_empty())
                .unwrap_or(b"/")
                .to_vec();
            units.push(Unit::Local(Box::new(LocalUnit {
                spec: i,
                root: root.clone(),
                name,
                key,
                md,
                includes: includes.clone(),
            })));
        }
        Ok(())
    }

    /// fsutil's `resolveWildcards`: Go's `filepath.Walk` below `dir` with
    /// each remaining component matched by `filepath.Match`; symlinked
    /// directories are not entered; results in walk (sorted) order.
    fn walk_wildcards(
        &self,
        svfs: &Vfs,
        dir: &Key,
        pats: &[&[u8]],
        out: &mut Vec<Key>,
    ) -> Result<(), FileOpError> {
        let Some(path) = svfs.view_path(dir) else {
            return Ok(());
        };
        let md = std::fs::symlink_metadata(&path).map_err(|e| self.io("reading", &path, e))?;
        if !md.is_dir() {
            return Ok(());
        }
        let mut names: Vec<Vec<u8>> = std::fs::read_dir(&path)
            .map_err(|e| self.io("listing", &path, e))?
            .map(|e| e.map(|e| e.file_name().into_encoded_bytes()))
            .collect::<Result<_, _>>()
            .map_err(|e| self.io("listing", &path, e))?;
        names.sort();
        for name in names {
            if glob::match_component(pats[0], &name) != Ok(true) {
                continue;
            }
            let key = dir.join(&name);
            if pats.len() == 1 {
                out.push(key);
            } else {
                self.walk_wildcards(svfs, &key, &pats[1..], out)?;
            }
        }
        Ok(())
    }

    fn source_key(&self, svfs: &Vfs, path: &[u8], root: &Path) -> Result<Key, FileOpError> {
        svfs.resolve(&Key::root(), path, true)
            .map_err(|e| self.resolve_error(e, root))
    }

    fn source_stat(
        &self,
        svfs: &Vfs,
        key: &Key,
        root: &Path,
    ) -> Result<Option<Metadata>, FileOpError> {
        svfs.view_stat(key)
            .map_err(|e| self.io("inspecting", &root.join(key.as_path()), e))
    }

    fn not_found(&self, path: &str, base: &Path) -> FileOpError {
        FileOpError::NotFound {
            op: self.word,
            src: self.src.clone(),
            dest: self.dest.clone(),
            path: if path.starts_with('/') {
                path.to_string()
            } else {
                format!("/{path}")
            },
            base: base.to_path_buf(),
        }
    }

    /// An I/O error on `path` while working on the current source.
    pub(crate) fn io(
        &self,
        action: &'static str,
        path: &Path,
        source: std::io::Error,
    ) -> FileOpError {
        FileOpError::Io {
            op: self.word,
            src: self.src.clone(),
            dest: self.dest.clone(),
            action,
            path: path.to_path_buf(),
            source,
        }
    }

    /// A resolution failure below `base` (a source root or the image root).
    pub(crate) fn resolve_error(&self, e: ResolveError, base: &Path) -> FileOpError {
        let (op, src, dest) = (self.word, self.src.clone(), self.dest.clone());
        match e {
            ResolveError::NotDir(k) => FileOpError::NotADirectory {
                op,
                src,
                dest,
                path: k.to_string(),
            },
            ResolveError::Loop(k) => FileOpError::TooManyLinks {
                op,
                src,
                dest,
                path: k.to_string(),
            },
            ResolveError::Io(k, source) => FileOpError::Io {
                op,
                src,
                dest,
                action: "inspecting",
                path: base.join(k.as_path()),
                source,
            },
        }
    }

    fn run_unit(&mut self, unit: Unit) -> Result<(), FileOpError> {
        self.next_match += 1;
        match unit {
            Unit::Local(u) => {
                let LocalUnit {
                    spec,
                    root,
                    name,
                    key,
                    md,
                    includes,
                } = *u;
                let s = &self.plan.sources[spec];
                self.src.clone_from(&s.pattern);
                self.hidden.clone_from(&s.hidden);
                let owner = s.owner;
                let path = root.join(key.as_path());
                if self.unpacks(&md, &path)? {
                    return self.extract(&path);
                }
                self.copy_path(&name, &path, &md, owner, includes.as_ref())
            }
            Unit::Url { spec } => {
                let url = self.plan.sources[spec].pattern.clone();
                self.src.clone_from(&url);
                let download = super::http::fetch(
                    self.word,
                    &url,
                    self.checksum.as_deref(),
                    self.plan.scratch_dir.as_deref(),
                    self.plan.runtime.0.as_ref(),
                )?;
                let archive = self.plan.unpack == Some(true)
                    && super::archive::detect(download.path())
                        .map_err(|e| self.io("reading", download.path(), e))?
                        .is_some();
                self.downloads.push(download);
                let index = self.downloads.len() - 1;
                if archive {
                    let path = self.downloads[index].path().to_path_buf();
                    return self.extract(&path);
                }
                self.copy_download(index)
            }
            Unit::Inline { index } => {
                let inline = &self.plan.inline[index];
                self.src = format!("<<{}", inline.name);
                self.copy_inline(index)
            }
        }
    }
}
