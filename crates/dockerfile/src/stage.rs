//! Stages and variable scope, as BuildKit's `dockerfile2llb` sees them.
//!
//! - [`Dockerfile::from_ast`] splits the typed instructions into the global
//!   `ARG`s before the first `FROM` and the stages.
//! - [`GlobalScope`] evaluates those global `ARG`s (build args override
//!   defaults) on top of the predefined platform args; only `FROM` lines see it.
//! - [`StageScope`] carries a stage's variables instruction by instruction:
//!   the base image's env, then each `ENV` and `ARG` in order (the latest
//!   definition wins, so an `ENV` after an `ARG` shadows it), and expands
//!   exactly the instructions BuildKit expands.
//!
//! Both cost linear time in the number of instructions (variables are a
//! [`VarList`]), and a stage's expanded words may add up to at most
//! [`MAX_CONFIG_BYTES`].

use std::cell::Cell;
use std::collections::BTreeMap;

use serde::Serialize;

use crate::ast::{Ast, Span, Warning};
use crate::error::{Error, Result};
use crate::expand::{ExpandError, ShellLex};
use crate::instruction::{self, ArgDecl, Command, From, Instruction, KeyValue};
use crate::limits::{MAX_CONFIG_BYTES, human};
use crate::platform::Platform;
use crate::vars::VarList;

/// A Dockerfile, typed and split into stages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dockerfile {
    pub escape: char,
    pub directives: Vec<(String, String)>,
    /// `ARG`s before the first `FROM`.
    pub global_args: Vec<Instruction>,
    pub stages: Vec<Stage>,
    pub warnings: Vec<Warning>,
    /// Stage index by `AS` name (lower-cased).
    #[serde(skip)]
    names: BTreeMap<String, usize>,
}

/// One `FROM` and the instructions after it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stage {
    pub index: usize,
    pub from: From,
    pub span: Span,
    pub original: String,
    pub instructions: Vec<Instruction>,
}

impl Stage {
    /// `AS name`, lower-cased.
    pub fn name(&self) -> Option<&str> {
        self.from.name.as_deref()
    }

    /// The name used in messages: the `AS` name or `stage-N`.
    pub fn display_name(&self) -> String {
        self.name()
            .map_or_else(|| format!("stage-{}", self.index), str::to_string)
    }
}

impl Dockerfile {
    /// Type every instruction and group them into stages.
    pub fn from_ast(ast: &Ast) -> Result<Dockerfile> {
        let mut global_args = Vec::new();
        let mut stages: Vec<Stage> = Vec::new();
        for node in &ast.children {
            let ins = instruction::from_node(node)?;
            match ins.command {
                Command::From(from) => stages.push(Stage {
                    index: stages.len(),
                    from,
                    span: ins.span,
                    original: ins.original,
                    instructions: Vec::new(),
                }),
                Command::Arg { .. } if stages.is_empty() => global_args.push(ins),
                _ => match stages.last_mut() {
                    Some(stage) => stage.instructions.push(ins),
                    None => {
                        return Err(Error::new(
                            format!(
                                "no build stage in current context: {} must come after a FROM",
                                ins.command.keyword()
                            ),
                            ins.span.start,
                        ));
                    }
                },
            }
        }
        if stages.is_empty() {
            return Err(Error::whole_file("dockerfile contains no stages to build"));
        }
        let mut names: BTreeMap<String, usize> = BTreeMap::new();
        for s in &stages {
            if let Some(name) = s.name()
                && let Some(first) = names.insert(name.to_string(), s.index)
            {
                return Err(Error::new(
                    format!(
                        "duplicate stage name {name:?}: first defined on line {}",
                        stages[first].span.start.line
                    ),
                    s.span.start,
                ));
            }
        }
        Ok(Dockerfile {
            escape: ast.escape,
            directives: ast.directives.clone(),
            global_args,
            stages,
            warnings: ast.warnings.clone(),
            names,
        })
    }

    /// The stage a `FROM` name or `COPY --from` name refers to (names are case-insensitive).
    pub fn stage_by_name(&self, name: &str) -> Option<&Stage> {
        let index = match self.names.get(name) {
            Some(&i) => i,
            None => *self.names.get(&name.to_lowercase())?,
        };
        self.stages.get(index)
    }

    /// A shell-word lexer with this file's escape character.
    pub fn lexer(&self) -> ShellLex {
        ShellLex::new(self.escape)
    }
}

/// The proxy variables BuildKit passes to `RUN` without a declaration.
pub const PROXY_ARGS: [&str; 10] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
];

/// What a build brings from outside the Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildOptions {
    /// `--build-arg K=V`.
    pub build_args: BTreeMap<String, String>,
    pub build_platform: Platform,
    pub target_platform: Platform,
    /// `--target`, if given.
    pub target: Option<String>,
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            build_args: BTreeMap::new(),
            build_platform: Platform::host(),
            target_platform: Platform::host(),
            target: None,
        }
    }
}

/// Variables visible to `FROM` lines: the predefined platform args, then
/// the global `ARG`s in order.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct GlobalScope {
    pub vars: VarList,
}

impl GlobalScope {
    /// Evaluate the global `ARG`s as BuildKit's `buildMetaArgs` does.
    pub fn new(df: &Dockerfile, opts: &BuildOptions) -> Result<GlobalScope> {
        let mut scope = GlobalScope::default();
        for (k, v) in predefined_args(df, opts) {
            scope.set(&k, v);
        }
        let lex = df.lexer();
        for ins in &df.global_args {
            let Command::Arg { args } = &ins.command else {
                continue;
            };
            for ArgDecl { key, default } in args {
                let value = match (opts.build_args.get(key), default) {
                    (Some(v), _) => Some(v.clone()),
                    (None, Some(d)) => Some(
                        lex.process_word(d, &scope.vars)
                            .map_err(|e| Error::new(e.message, ins.span.start))?,
                    ),
                    (None, None) => None,
                };
                if let Some(v) = value {
                    scope.set(key, v);
                }
            }
        }
        Ok(scope)
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.vars.get(key).map(String::as_str)
    }

    fn set(&mut self, key: &str, value: String) {
        self.vars.set(key, value);
    }
}

/// BuildKit's predefined platform args and `TARGETSTAGE`, in the order
/// they enter the global scope, each overridden by a `--build-arg` of its name.
pub fn predefined_args(df: &Dockerfile, opts: &BuildOptions) -> Vec<(String, String)> {
    let (b, t) = (&opts.build_platform, &opts.target_platform);
    let target_stage = opts
        .target
        .clone()
        .or_else(|| df.stages.last().and_then(|s| s.name().map(str::to_string)))
        .unwrap_or_else(|| "default".to_string());
    let predefined = [
        ("BUILDPLATFORM", b.to_string()),
        ("BUILDOS", b.os.clone()),
        ("BUILDOSVERSION", String::new()),
        ("BUILDARCH", b.architecture.clone()),
        ("BUILDVARIANT", b.variant.clone()),
        ("TARGETPLATFORM", t.to_string()),
        ("TARGETOS", t.os.clone()),
        ("TARGETOSVERSION", String::new()),
        ("TARGETARCH", t.architecture.clone()),
        ("TARGETVARIANT", t.variant.clone()),
        ("TARGETSTAGE", target_stage),
    ];
    predefined
        .into_iter()
        .map(|(k, v)| (k.to_string(), opts.build_args.get(k).cloned().unwrap_or(v)))
        .collect()
}

/// A stage's `FROM` with its variables expanded from the global scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResolvedFrom {
    pub base: String,
    pub platform: Option<Platform>,
}

/// Expand a stage's base name and `--platform` with the global scope.
pub fn resolve_from(df: &Dockerfile, stage: &Stage, globals: &GlobalScope) -> Result<ResolvedFrom> {
    let lex = df.lexer();
    let at = |m: String| Error::new(m, stage.span.start);
    let base = lex
        .process_word(&stage.from.base, &globals.vars)
        .map_err(|e| at(e.message))?;
    if base.is_empty() {
        return Err(at(format!(
            "base name ({}) should not be blank",
            stage.from.base
        )));
    }
    let platform = match &stage.from.platform {
        None => None,
        Some(p) => {
            let v = lex.process_word(p, &globals.vars).map_err(|e| {
                at(format!(
                    "failed to process arguments for platform {p}: {}",
                    e.message
                ))
            })?;
            if v.is_empty() {
                return Err(at(format!("empty platform value from expression {p}")));
            }
            Some(Platform::parse(&v).map_err(|e| at(e.to_string()))?)
        }
    };
    Ok(ResolvedFrom { base, platform })
}

/// A stage's variables, instruction by instruction.
#[derive(Debug, Clone)]
pub struct StageScope<'a> {
    lex: ShellLex,
    globals: &'a GlobalScope,
    build_args: &'a BTreeMap<String, String>,
    /// Everything `$VAR` sees: the image env, `ENV`s and `ARG`s, latest wins.
    vars: VarList,
    /// The image config's env: the base image's plus each `ENV`.
    config_env: VarList,
    /// `ARG`s declared in this stage with their values (the build args a `RUN` sees).
    args: VarList,
    /// Every `ARG` declared in this stage, in order, valued or not (what
    /// BuildKit lists in a `RUN`'s history line).
    declared: VarList<Option<String>>,
    /// Bytes of the base env and of every word expanded so far (at most
    /// [`MAX_CONFIG_BYTES`]).
    expanded_bytes: usize,
}

impl<'a> StageScope<'a> {
    /// Start a stage on top of its base image's `Env` (`K=V` pairs).
    pub fn new(
        df: &Dockerfile,
        globals: &'a GlobalScope,
        opts: &'a BuildOptions,
        base_env: &[(String, String)],
    ) -> StageScope<'a> {
        StageScope {
            lex: df.lexer(),
            globals,
            build_args: &opts.build_args,
            vars: base_env.iter().cloned().collect(),
            config_env: base_env.iter().cloned().collect(),
            args: VarList::default(),
            declared: VarList::default(),
            expanded_bytes: base_env.iter().map(|(k, v)| k.len() + v.len() + 1).sum(),
        }
    }

    /// Expand one word with the variables in scope now.
    pub fn expand_word(&self, word: &str) -> std::result::Result<String, ExpandError> {
        self.lex.process_word(word, &self.vars)
    }

    /// An instruction's text as a progress view names its step, as
    /// BuildKit names a `RUN` vertex: variables in scope expanded, quotes
    /// and unset variables left as written, the keyword upper-cased; the
    /// text unexpanded where it cannot be expanded.
    ///
    /// A name that could expand past [`MAX_WORD_BYTES`] (each `$` taken as
    /// the longest value in scope) stays unexpanded: a hostile Dockerfile's
    /// `RUN $A$A$A…` costs no more than its text.
    pub fn display_text(&self, text: &str) -> String {
        let longest = self.vars.as_slice().iter().map(|(_, v)| v.len()).max();
        let worst = text
            .matches('$')
            .count()
            .saturating_mul(longest.unwrap_or(0))
            .saturating_add(text.len());
        let expanded = if worst > crate::limits::MAX_WORD_BYTES {
            text.to_string()
        } else {
            let lex = self.lex.clone().raw_quotes(true).skip_unset_env(true);
            lex.process_word(text, &self.vars)
                .unwrap_or_else(|_| text.to_string())
        };
        match expanded.split_once(' ') {
            Some((word, rest)) => format!("{} {rest}", word.to_uppercase()),
            None => expanded.to_uppercase(),
        }
    }

    /// The variables a `$VAR` sees now.
    pub fn vars(&self) -> &[(String, String)] {
        self.vars.as_slice()
    }

    /// The image config env so far.
    pub fn config_env(&self) -> &[(String, String)] {
        self.config_env.as_slice()
    }

    /// The `ARG`s in scope with values: what a `RUN` gets as build args.
    pub fn args(&self) -> &[(String, String)] {
        self.args.as_slice()
    }

    /// Every `ARG` declared in the stage so far, with its value if it has
    /// one (a redeclared key keeps its first place).
    pub fn declared_args(&self) -> &[(String, Option<String>)] {
        self.declared.as_slice()
    }

    /// Expand `ins` as BuildKit does before dispatching it, and take its
    /// `ENV`/`ARG` definitions into scope. Returns the expanded instruction.
    ///
    /// Fails, at the instruction, when a word expands to more than
    /// [`MAX_WORD_BYTES`](crate::limits::MAX_WORD_BYTES) or the stage's
    /// expanded words add up to more than [`MAX_CONFIG_BYTES`].
    pub fn apply(&mut self, ins: &Instruction) -> Result<Instruction> {
        let at = |m: String| Error::new(m, ins.span.start);
        let mut out = ins.clone();
        let lex = &self.lex;
        let vars = &self.vars;
        let produced = Cell::new(0usize);
        let count = |w: String| {
            produced.set(produced.get().saturating_add(w.len()));
            w
        };
        let word = |w: &str| {
            lex.process_word(w, vars)
                .map(count)
                .map_err(|e| at(e.message))
        };
        let opt =
            |w: &Option<String>| -> Result<Option<String>> { w.as_deref().map(&word).transpose() };
        let kvs = |kvs: &[KeyValue]| -> Result<Vec<KeyValue>> {
            kvs.iter()
                .map(|kv| {
                    Ok(KeyValue {
                        key: word(&kv.key)?,
                        value: word(&kv.value)?,
                        legacy: kv.legacy,
                    })
                })
                .collect()
        };
        let raw = self.lex.clone().skip_process_quotes(true);
        let inline = |files: &mut [instruction::InlineFile]| -> Result<()> {
            for f in files.iter_mut().filter(|f| f.expand) {
                f.data = raw
                    .process_word(&f.data, vars)
                    .map(count)
                    .map_err(|e| at(e.message))?;
            }
            Ok(())
        };
        match &mut out.command {
            Command::Env { env } => {
                *env = kvs(env)?;
                self.spend(produced.get(), ins)?;
                for kv in env.iter() {
                    self.vars.set(&kv.key, kv.value.clone());
                    self.config_env.set(&kv.key, kv.value.clone());
                }
                return Ok(out);
            }
            Command::Label { labels } => *labels = kvs(labels)?,
            Command::Copy(c) => {
                c.chown = opt(&c.chown)?;
                c.chmod = opt(&c.chmod)?;
                c.files.sources = c
                    .files
                    .sources
                    .iter()
                    .map(|s| word(s))
                    .collect::<Result<_>>()?;
                c.files.dest = word(&c.files.dest)?;
                inline(&mut c.files.inline)?;
            }
            Command::Add(a) => {
                a.chown = opt(&a.chown)?;
                a.chmod = opt(&a.chmod)?;
                a.checksum = opt(&a.checksum)?;
                a.files.sources = a
                    .files
                    .sources
                    .iter()
                    .map(|s| word(s))
                    .collect::<Result<_>>()?;
                a.files.dest = word(&a.files.dest)?;
                inline(&mut a.files.inline)?;
            }
            Command::Workdir { path } => *path = word(path)?,
            Command::User { user } => *user = word(user)?,
            Command::Stopsignal { signal } => *signal = word(signal)?,
            Command::Volume { volumes } => {
                *volumes = volumes.iter().map(|v| word(v)).collect::<Result<_>>()?
            }
            Command::Expose { ports } => {
                let mut all = Vec::new();
                for p in ports.iter() {
                    let words = lex.process_words(p, vars).map_err(|e| at(e.message))?;
                    words
                        .iter()
                        .for_each(|w| produced.set(produced.get() + w.len()));
                    all.extend(words);
                }
                *ports = all;
            }
            Command::Arg { args } => {
                for decl in args.iter_mut() {
                    let value = self.arg_value(decl).map_err(|e| at(e.message))?;
                    let size = decl.key.len() + value.as_ref().map_or(0, String::len);
                    self.spend(size, ins)?;
                    decl.default = value.clone();
                    self.declared.set(&decl.key, value.clone());
                    if let Some(v) = value {
                        self.vars.set(&decl.key, v.clone());
                        self.args.set(&decl.key, v);
                    }
                }
                return Ok(out);
            }
            _ => {}
        }
        self.spend(produced.get(), ins)?;
        Ok(out)
    }

    /// Counts `bytes` more expanded text in the stage, failing at `ins`
    /// past [`MAX_CONFIG_BYTES`].
    fn spend(&mut self, bytes: usize, ins: &Instruction) -> Result<()> {
        self.expanded_bytes = self.expanded_bytes.saturating_add(bytes);
        if self.expanded_bytes > MAX_CONFIG_BYTES {
            return Err(Error::new(
                format!(
                    "{}: the stage's expanded instructions add up to more than {} (the limit on a stage's config)",
                    ins.command.keyword(),
                    human(MAX_CONFIG_BYTES)
                ),
                ins.span.start,
            ));
        }
        Ok(())
    }

    /// BuildKit's `dispatchArg`: a build arg wins; then the default
    /// (expanded in the stage); then the global `ARG` of the same name.
    fn arg_value(&self, decl: &ArgDecl) -> std::result::Result<Option<String>, ExpandError> {
        if let Some(v) = self.build_args.get(&decl.key) {
            return Ok(Some(v.clone()));
        }
        match &decl.default {
            Some(d) => self.expand_word(d).map(Some),
            None => Ok(self.globals.get(&decl.key).map(str::to_string)),
        }
    }
}
