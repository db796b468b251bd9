//! `.dockerignore` with Docker's semantics (moby/patternmatcher and
//! BuildKit's `ignorefile.ReadAll`), not gitignore's.
//!
//! - Reading: a UTF-8 BOM is dropped; lines starting with `#` are comments
//!   (only at the very start: `" #x"` is the pattern `#x`); each line is
//!   trimmed; blank lines are skipped; a leading `!` re-includes; the rest is
//!   cleaned as a path (`./foo` → `foo`, `dir/` → `dir`) and a leading `/`
//!   removed.
//! - Matching: a path is excluded when the last pattern that matches it, or
//!   one of its parent directories, is not a `!` pattern. Patterns are
//!   anchored at the context root (`*.go` matches only at the root); `*` and
//!   `?` stop at `/`; `**` spans directories; `[...]` classes and `\`
//!   escapes as in Go.
//!
//! The walker avoids re-testing parents with [`MatchState`], and skips a
//! whole excluded directory when [`Matcher::may_reinclude_below`] says no
//! `!` pattern can reach inside it.
//!
//! Paths given to the matcher are `/`-separated and relative to the root.

use std::fmt;

use regex::Regex;

use super::gopath;
use super::goregex;

/// A malformed pattern, with its 1-based line in the ignore file (or its
/// 1-based position in a pattern list).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: invalid pattern {pattern:?}: {reason}")]
pub struct IgnoreError {
    pub line: usize,
    pub pattern: String,
    pub reason: String,
}

#[derive(Debug, Clone)]
enum Kind {
    Exact,
    Prefix(String),
    Suffix(String),
    Regex(Regex),
}

/// One pattern, checked and compiled.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// The cleaned pattern, without its `!`.
    text: String,
    exclusion: bool,
    line: usize,
    kind: Kind,
    /// Per `/`-separated component, for [`Matcher::may_reinclude_below`].
    components: Vec<Component>,
}

#[derive(Debug, Clone)]
enum Component {
    /// Holds `**` or a class (which may match `/` in patternmatcher's
    /// regexp): could match any number of path components.
    Any,
    Glob(Pattern1),
}

/// A single-component pattern compiled the same way as a whole pattern.
#[derive(Debug, Clone)]
struct Pattern1(Box<Kind>, String);

impl Pattern {
    /// A pattern as patternmatcher's `New` takes it: trimmed, cleaned, a
    /// leading `!` marking a re-inclusion. `line` is for error messages.
    /// `Ok(None)` for a pattern that is empty after trimming.
    pub fn parse(raw: &str, line: usize) -> Result<Option<Pattern>, IgnoreError> {
        let err = |reason: &str| IgnoreError {
            line,
            pattern: raw.to_string(),
            reason: reason.to_string(),
        };
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Ok(None);
        }
        let cleaned = gopath::clean(trimmed);
        let (exclusion, text) = match cleaned.strip_prefix('!') {
            Some("") => return Err(err("illegal exclusion pattern: \"!\"")),
            Some(rest) => (true, rest.to_string()),
            None => (false, cleaned),
        };
        if gopath::validate(&text).is_err() {
            return Err(err("syntax error in pattern"));
        }
        let kind = compile(&text).map_err(|e| err(&e.to_string()))?;
        let components = text
            .split('/')
            .map(|c| {
                // `\` may escape a `/`: such components are not split safely.
                if c.contains("**") || c.contains('[') || c.contains('\\') {
                    return Component::Any;
                }
                match compile(c) {
                    Ok(k) => Component::Glob(Pattern1(Box::new(k), c.to_string())),
                    Err(_) => Component::Any,
                }
            })
            .collect();
        Ok(Some(Pattern {
            text,
            exclusion,
            line,
            kind,
            components,
        }))
    }

    /// The cleaned pattern, without its `!`.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether this is a `!` (re-inclusion) pattern.
    pub fn is_exclusion(&self) -> bool {
        self.exclusion
    }

    /// The 1-based line it came from.
    pub fn line(&self) -> usize {
        self.line
    }

    /// Whether the pattern matches `path` itself (no parent rule).
    pub fn matches_path(&self, path: &str) -> bool {
        kind_matches(&self.kind, &self.text, path)
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.exclusion {
            f.write_str("!")?;
        }
        f.write_str(&self.text)
    }
}

fn kind_matches(kind: &Kind, text: &str, path: &str) -> bool {
    match kind {
        Kind::Exact => path == text,
        Kind::Prefix(prefix) => path.starts_with(prefix.as_str()),
        Kind::Suffix(suffix) => {
            path.ends_with(suffix.as_str())
                || suffix.strip_prefix('/').is_some_and(|rest| path == rest)
        }
        Kind::Regex(re) => re.is_match(path),
    }
}

/// patternmatcher's `compile`: the match type and, for regexps, the Go
/// regexp it builds, translated for the `regex` crate.
/// Why a pattern's regexp could not be built.
#[derive(Debug, thiserror::Error)]
enum CompileError {
    /// Go syntax the translation refuses.
    #[error(transparent)]
    Translate(#[from] goregex::RegexError),
    /// The translation the `regex` crate refuses.
    #[error(transparent)]
    Regex(#[from] regex::Error),
}

fn compile(pattern: &str) -> Result<Kind, CompileError> {
    #[derive(PartialEq)]
    enum T {
        Exact,
        Prefix,
        Suffix,
        Regex,
    }
    let mut re = String::from("^");
    let mut t = T::Exact;
    let mut chars = pattern.chars().peekable();
    let mut i = 0;
    while let Some(ch) = chars.next() {
        match ch {
            '*' if chars.peek() == Some(&'*') => {
                chars.next();
                if chars.peek() == Some(&'/') {
                    chars.next();
                }
                if chars.peek().is_none() {
                    if t == T::Exact {
                        t = T::Prefix;
                    } else {
                        re.push_str(".*");
                        t = T::Regex;
                    }
                } else {
                    re.push_str("(.*/)?");
                    t = T::Regex;
                }
                if i == 0 {
                    t = T::Suffix;
                }
            }
            '*' => {
                re.push_str("[^/]*");
                t = T::Regex;
            }
            '?' => {
                re.push_str("[^/]");
                t = T::Regex;
            }
            '.' | '+' | '(' | ')' | '|' | '{' | '}' | '$' => {
                re.push('\\');
                re.push(ch);
            }
            '\\' => match chars.next() {
                Some(next) => {
                    re.push('\\');
                    re.push(next);
                    t = T::Regex;
                }
                None => re.push('\\'),
            },
            '[' | ']' => {
                re.push(ch);
                t = T::Regex;
            }
            _ => re.push(ch),
        }
        i += 1;
    }
    Ok(match t {
        T::Exact => Kind::Exact,
        // Strip the trailing `**` (or leading `**`).
        T::Prefix => Kind::Prefix(pattern[..pattern.len() - 2].to_string()),
        T::Suffix => Kind::Suffix(pattern[2..].to_string()),
        T::Regex => {
            re.push('$');
            let rust = goregex::translate(&re)?;
            Kind::Regex(Regex::new(&rust)?)
        }
    })
}

/// Reads a `.dockerignore` as BuildKit does, checking every pattern; an
/// invalid one is an error naming its 1-based line.
pub fn read_dockerignore(text: &str) -> Result<Vec<Pattern>, IgnoreError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut out = Vec::new();
    // Go's bufio.Scanner: lines split on `\n`, one trailing `\r` dropped.
    for (index, line) in text.split('\n').enumerate() {
        let line_no = index + 1;
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.starts_with('#') {
            continue;
        }
        let mut pattern = line.trim();
        if pattern.is_empty() {
            continue;
        }
        let invert = pattern.starts_with('!');
        if invert {
            pattern = pattern[1..].trim();
        }
        let mut cleaned = String::new();
        if !pattern.is_empty() {
            cleaned = gopath::clean(pattern);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
        }
        let full = if invert {
            format!("!{cleaned}")
        } else {
            cleaned
        };
        if let Some(p) = Pattern::parse(&full, line_no)? {
            out.push(p);
        }
    }
    Ok(out)
}

/// What a directory passes down to its children: for each pattern, whether
/// it matched the directory or one of its parents.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatchState {
    ancestors: Vec<bool>,
}

/// An ordered set of patterns with Docker's later-wins, parent-excludes
/// rules.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    patterns: Vec<Pattern>,
    exclusions: bool,
}

impl Matcher {
    pub fn new(patterns: Vec<Pattern>) -> Matcher {
        let exclusions = patterns.iter().any(|p| p.exclusion);
        Matcher {
            patterns,
            exclusions,
        }
    }

    /// patternmatcher's `New` over a list of pattern strings (`COPY
    /// --exclude` values); errors give the 1-based position.
    pub fn from_strings<S: AsRef<str>>(patterns: &[S]) -> Result<Matcher, IgnoreError> {
        let mut out = Vec::new();
        for (i, p) in patterns.iter().enumerate() {
            if let Some(p) = Pattern::parse(p.as_ref(), i + 1)? {
                out.push(p);
            }
        }
        Ok(Matcher::new(out))
    }

    pub fn patterns(&self) -> &[Pattern] {
        &self.patterns
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether any `!` pattern exists.
    pub fn has_exclusions(&self) -> bool {
        self.exclusions
    }

    /// Whether `path` itself is excluded, looking at no parent directory
    /// (patternmatcher's `MatchesUsingParentResult` with an unmatched
    /// parent). Use [`Matcher::matches_or_parent_matches`] for Docker's rule.
    pub fn matches(&self, path: &str) -> bool {
        self.decide(|p| p.matches_path(path))
    }

    /// Docker's rule (`MatchesOrParentMatches`, what `docker build` uses):
    /// whether `path` is excluded because it or a parent directory matches.
    /// The path is cleaned first; `.` (the root) is never excluded.
    pub fn matches_or_parent_matches(&self, path: &str) -> bool {
        let cleaned;
        let path = if gopath::is_clean(path) {
            path
        } else {
            cleaned = gopath::clean(path);
            &cleaned
        };
        if path == "." || self.patterns.is_empty() {
            return false;
        }
        let parents: Vec<&str> = match path.rfind('/') {
            Some(end) if end > 0 => path[..end]
                .match_indices('/')
                .map(|(i, _)| &path[..i])
                .chain(std::iter::once(&path[..end]))
                .collect(),
            _ => Vec::new(),
        };
        self.decide(|p| p.matches_path(path) || parents.iter().any(|d| p.matches_path(d)))
    }

    /// The same answer as [`Matcher::matches_or_parent_matches`] for a
    /// clean `path` whose parent directory's state is `parent` (the
    /// default state for a top-level path); also returns the state to pass
    /// to `path`'s children.
    pub fn matches_with_parent(&self, path: &str, parent: &MatchState) -> (bool, MatchState) {
        if self.patterns.is_empty() {
            return (false, MatchState::default());
        }
        let own: Vec<bool> = self
            .patterns
            .iter()
            .enumerate()
            .map(|(i, p)| parent.ancestors.get(i).copied().unwrap_or(false) || p.matches_path(path))
            .collect();
        let excluded = self.decide_indexed(|i| own[i]);
        (excluded, MatchState { ancestors: own })
    }

    /// Later patterns win; an inclusion is only tried while not excluded
    /// and a `!` pattern only while excluded (patternmatcher's loop).
    fn decide(&self, mut hit: impl FnMut(&Pattern) -> bool) -> bool {
        let mut matched = false;
        for p in &self.patterns {
            if p.exclusion != matched {
                continue;
            }
            if hit(p) {
                matched = !p.exclusion;
            }
        }
        matched
    }

    fn decide_indexed(&self, hit: impl Fn(usize) -> bool) -> bool {
        let mut matched = false;
        for (i, p) in self.patterns.iter().enumerate() {
            if p.exclusion == matched && hit(i) {
                matched = !p.exclusion;
            }
        }
        matched
    }

    /// Whether some `!` pattern could re-include `dir` or anything below
    /// it, so an excluded directory must still be walked. `false` means
    /// the whole directory can be skipped. Errs on the side of `true`.
    pub fn may_reinclude_below(&self, dir: &str) -> bool {
        if !self.exclusions {
            return false;
        }
        let parts: Vec<&str> = dir.split('/').collect();
        self.patterns.iter().filter(|p| p.exclusion).any(|p| {
            for (comp, part) in p.components.iter().zip(&parts) {
                match comp {
                    Component::Any => return true,
                    Component::Glob(Pattern1(kind, text)) => {
                        if !kind_matches(kind, text, part) {
                            return false;
                        }
                    }
                }
            }
            // Every component compared matched: the pattern names `dir`,
            // a parent of it, or something below it.
            true
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(patterns: &[&str]) -> Matcher {
        Matcher::from_strings(patterns).unwrap()
    }

    #[test]
    fn reading_rules() {
        let text =
            "\u{feff}# comment\n\n  /abs/path  \n ./dot//x/ \n #kept\n!/neg\n! spaced \nwin\r\n";
        let got: Vec<String> = read_dockerignore(text)
            .unwrap()
            .iter()
            .map(|p| format!("{}@{}", p, p.line()))
            .collect();
        assert_eq!(
            got,
            [
                "abs/path@3",
                "dot/x@4",
                "#kept@5",
                "!neg@6",
                "!spaced@7",
                "win@8"
            ]
        );
    }

    #[test]
    fn errors_name_their_line() {
        let err = read_dockerignore("ok\n# c\n\nfoo[\n").unwrap_err();
        assert_eq!(err.line, 4);
        assert_eq!(err.pattern, "foo[");
        assert!(
            err.to_string().starts_with("line 4: invalid pattern"),
            "{err}"
        );
        let err = read_dockerignore("a\n!\n").unwrap_err();
        assert_eq!(
            (err.line, err.reason.as_str()),
            (2, "illegal exclusion pattern: \"!\"")
        );
        let err = read_dockerignore("a\n  ! \n").unwrap_err();
        assert_eq!(err.line, 2);
        assert_eq!(read_dockerignore("x\n[a-\n").unwrap_err().line, 2);
        assert_eq!(read_dockerignore("\\\n").unwrap_err().line, 1);
    }

    #[test]
    fn docker_not_gitignore() {
        assert!(!m(&["*.go"]).matches_or_parent_matches("sub/a.go"));
        assert!(m(&["*.go"]).matches_or_parent_matches("a.go"));
        assert!(m(&["dir/"]).matches_or_parent_matches("dir"));
        assert!(m(&["./foo"]).matches_or_parent_matches("foo/bar"));
        assert!(m(&["**/*.go"]).matches_or_parent_matches("sub/a.go"));
    }

    #[test]
    fn incremental_state_agrees_with_full_rule() {
        let sets: &[&[&str]] = &[
            &["d/f", "!d"],
            &["docs", "!docs/README.md"],
            &["**", "!keep/**", "keep/tmp"],
            &["a*", "!ab/c", "ab/c/d*"],
            &["*/x", "!y/*", "**/z"],
        ];
        let paths = [
            "d",
            "d/f",
            "d/f/g",
            "docs",
            "docs/README.md",
            "docs/x",
            "keep",
            "keep/a",
            "keep/tmp",
            "keep/tmp/b",
            "ab",
            "ab/c",
            "ab/c/d1",
            "ab/c/e",
            "y",
            "y/x",
            "y/x/z",
            "q/x",
            "q/z",
        ];
        for set in sets {
            let matcher = m(set);
            for path in paths {
                let mut state = MatchState::default();
                let mut prefix = String::new();
                let mut got = false;
                for part in path.split('/') {
                    if !prefix.is_empty() {
                        prefix.push('/');
                    }
                    prefix.push_str(part);
                    (got, state) = matcher.matches_with_parent(&prefix, &state);
                }
                assert_eq!(
                    got,
                    matcher.matches_or_parent_matches(path),
                    "{set:?} {path}"
                );
            }
        }
    }

    #[test]
    fn reinclusion_pruning() {
        let matcher = m(&["docs", "!docs/README.md", "build"]);
        assert!(matcher.may_reinclude_below("docs"));
        assert!(!matcher.may_reinclude_below("build"));
        assert!(!m(&["build"]).may_reinclude_below("build"));
        let matcher = m(&["*", "!src/*/keep"]);
        assert!(matcher.may_reinclude_below("src"));
        assert!(matcher.may_reinclude_below("src/a"));
        assert!(!matcher.may_reinclude_below("lib"));
        assert!(!matcher.may_reinclude_below("src/a/other"));
        assert!(m(&["*", "!**/keep"]).may_reinclude_below("anything/deep"));
        // A `!` pattern naming a parent re-includes everything below.
        assert!(m(&["a/b", "!a"]).may_reinclude_below("a/b"));
    }
}
