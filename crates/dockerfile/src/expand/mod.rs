//! BuildKit's shell-word expansion.
//!
//! The behaviour of BuildKit's `frontend/dockerfile/shell` lexer, which
//! expands the arguments of most Dockerfile instructions: variables (`$V`,
//! `${V}` and the forms below), single and double quotes, the escape character
//! (`\` or the `` ` `` chosen by the `escape` directive), and splitting into
//! words at unquoted whitespace.
//!
//! | form | value |
//! | --- | --- |
//! | `${V:-w}` / `${V-w}` | `w` if `V` is unset or empty / unset, else `$V` |
//! | `${V:+w}` / `${V+w}` | `w` if `V` is set and non-empty / set, else empty |
//! | `${V:?w}` / `${V?w}` | error `V: w` if `V` is unset or empty / unset |
//! | `${V#p}` / `${V##p}` | `$V` without its shortest / longest prefix matching `p` |
//! | `${V%p}` / `${V%%p}` | `$V` without its shortest / longest suffix matching `p` |
//! | `${V/p/r}` / `${V//p/r}` | first / every longest match of `p` replaced by `r` |
//!
//! `w`, `p` and `r` are words in their own right, expanded before use, so
//! defaults nest: `${A:-${B:-x}}`. Patterns `p` know `*` and `?` (neither
//! matches a newline) and `\*`, `\?`, `\\`; brackets are literal, as in
//! BuildKit. `$1`, `$10`, and the special parameters `$@ $* $# $? $- $$ $!
//! $0` are read as names like any other and so are normally unset. Anything
//! else after `$` leaves the `$` as written (`$.` is `$.`); a bad `${...}` is
//! an error.
//!
//! Quirks kept from BuildKit, since images must come out the same: the `#`,
//! `%` and `/` operands keep their escape characters (so `${V/a/\b}` puts in
//! `\b`); `${V//p/r}` reads `r` as a Go regexp template (`$0` is the match);
//! a `#` or `%` heading a `#`/`%` operand after expansion doubles the operator;
//! errors read `failed to process "WORD": reason`.

mod lexer;
mod pattern;
mod unicode;

pub(crate) use unicode::is_format_char;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};

pub use lexer::MAX_NESTING;

/// Variable lookup for expansion.
pub trait Lookup {
    /// The value of `name`, or `None` when it is unset.
    fn lookup(&self, name: &str) -> Option<&str>;
}

impl Lookup for BTreeMap<String, String> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

impl<S: std::hash::BuildHasher> Lookup for HashMap<String, String, S> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

/// The last entry with a matching name wins, as with a list of `ENV`s.
impl Lookup for [(String, String)] {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

impl Lookup for Vec<(String, String)> {
    fn lookup(&self, name: &str) -> Option<&str> {
        self.as_slice().lookup(name)
    }
}

impl<T: Lookup + ?Sized> Lookup for &T {
    fn lookup(&self, name: &str) -> Option<&str> {
        (**self).lookup(name)
    }
}

/// A shell-word expander with BuildKit's options (its `shell.Lex`).
#[derive(Debug, Clone)]
pub struct ShellLex {
    escape: char,
    raw_quotes: bool,
    raw_escapes: bool,
    skip_unset_env: bool,
    skip_process_quotes: bool,
}

/// The result of [`ShellLex::process_word_with_matches`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Expansion {
    /// The expanded word.
    pub result: String,
    /// Names that were looked up and found (including any inside operands
    /// that ended up unused, like the `B` of `${A:-$B}` when `A` is set).
    pub used: BTreeSet<String>,
    /// Names that were looked up and not found.
    pub unmatched: BTreeSet<String>,
}

/// An expansion error, worded like BuildKit's, e.g.
/// `failed to process "\"a": unexpected end of statement while looking for
/// matching double-quote`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ExpandError {
    /// The whole message.
    pub message: String,
}

impl ShellLex {
    /// An expander whose escape character is `escape` (`\` or `` ` ``).
    pub fn new(escape: char) -> Self {
        Self {
            escape,
            raw_quotes: false,
            raw_escapes: false,
            skip_unset_env: false,
            skip_process_quotes: false,
        }
    }

    /// Keep quote characters in the output (BuildKit `RawQuotes`).
    pub fn raw_quotes(mut self, yes: bool) -> Self {
        self.raw_quotes = yes;
        self
    }

    /// Keep escape characters in the output (BuildKit `RawEscapes`).
    pub fn raw_escapes(mut self, yes: bool) -> Self {
        self.raw_escapes = yes;
        self
    }

    /// Leave references to unset variables as written, `$V`, `${V}`,
    /// `${V:-x}` and so on (BuildKit `SkipUnsetEnv`). Their operands are still
    /// expanded.
    pub fn skip_unset_env(mut self, yes: bool) -> Self {
        self.skip_unset_env = yes;
        self
    }

    /// Treat `'` and `"` as ordinary characters (BuildKit
    /// `SkipProcessQuotes`, used for the bodies of expanded heredocs).
    pub fn skip_process_quotes(mut self, yes: bool) -> Self {
        self.skip_process_quotes = yes;
        self
    }

    /// The escape character.
    pub fn escape(&self) -> char {
        self.escape
    }

    /// Expand to one word (BuildKit `ProcessWord`): whitespace is kept.
    pub fn process_word(
        &self,
        word: &str,
        env: &(impl Lookup + ?Sized),
    ) -> Result<String, ExpandError> {
        self.process_word_with_matches(word, env).map(|e| e.result)
    }

    /// Expand and split into words at unquoted whitespace, whitespace from
    /// unquoted expansions included (BuildKit `ProcessWords`). Empty words are
    /// dropped, quoted empty strings too: `a "" b` gives `a`, `b`.
    pub fn process_words(
        &self,
        word: &str,
        env: &(impl Lookup + ?Sized),
    ) -> Result<Vec<String>, ExpandError> {
        let outcome = lexer::run(self, word, env);
        outcome.result.map(|(_, words)| words)
    }

    /// Like [`process_word`](Self::process_word), also returning the names of
    /// variables that were found (`used`) and referenced but unset
    /// (`unmatched`), as BuildKit's `ProcessWordWithMatches`.
    pub fn process_word_with_matches(
        &self,
        word: &str,
        env: &(impl Lookup + ?Sized),
    ) -> Result<Expansion, ExpandError> {
        if let Some(result) = lexer::literal(self, word) {
            return Ok(Expansion {
                result,
                ..Expansion::default()
            });
        }
        let outcome = lexer::run(self, word, env);
        match outcome.result {
            Ok((result, _)) => Ok(Expansion {
                result,
                used: outcome.used,
                unmatched: outcome.unmatched,
            }),
            Err(e) => Err(e),
        }
    }
}

impl Default for ShellLex {
    /// `\` as the escape character, no options.
    fn default() -> Self {
        Self::new('\\')
    }
}
