//! The word processor behind [`ShellLex`](super::ShellLex).
//!
//! One pass over the characters of a word, mirroring the structure of
//! BuildKit's `shellWord`: [`Processor::stop_on`] reads until a stop character
//! (the end, `}` or `/`), handing `$`, quotes and `<<` to their own readers,
//! and building at the same time the single expanded word and the list of
//! words split at unquoted whitespace. `${...}` operands are read by a nested
//! `stop_on`, which is how defaults nest. Nothing here panics on any input:
//! the characters are held as a `Vec<char>`, so there is no byte slicing, and
//! nesting deeper than [`MAX_NESTING`] is an error rather than a stack
//! overflow. Work is bounded too: a result (or operand) longer than
//! [`MAX_WORD_BYTES`] is an error as soon as it grows past it, and patterns
//! share one [`pattern::Budget`] of matching steps per word.

use std::collections::BTreeSet;

use super::pattern::{PatternError, TooLong};
use super::{ExpandError, Lookup, ShellLex, pattern, unicode};
pub use crate::limits::MAX_NESTING;
use crate::limits::MAX_WORD_BYTES;

type Res<T> = Result<T, WordError>;

/// Why a word could not be expanded: the part of BuildKit's message after
/// `failed to process "…": `.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum WordError {
    /// The word ended before the closing character.
    #[error("unexpected end of statement while looking for matching {0}")]
    Unclosed(char),
    /// The word ended inside `'...'`.
    #[error("unexpected end of statement while looking for matching single-quote")]
    UnclosedSingleQuote,
    /// The word ended inside `"..."`.
    #[error("unexpected end of statement while looking for matching double-quote")]
    UnclosedDoubleQuote,
    /// `${` inside `${` more than [`MAX_NESTING`] deep.
    #[error("syntax error: substitutions nested more than {} deep", MAX_NESTING)]
    TooDeep,
    /// `${...` without its `}`.
    #[error("syntax error: missing '}}'")]
    MissingBrace,
    /// `${{`, `${}` or `${:`.
    #[error("syntax error: bad substitution")]
    BadSubstitution,
    /// `${V/p` without the `/` after the pattern.
    #[error("syntax error: missing '/' in ${{}}")]
    MissingSlash,
    /// A modifier BuildKit does not have, as spelled.
    #[error("unsupported modifier ({0}) in substitution")]
    UnsupportedModifier(String),
    /// `${V?word}` of an unset (or with `:?`, empty) `V`.
    #[error("{name}: {message}")]
    Required {
        /// The variable.
        name: String,
        /// The word, or the default text.
        message: String,
    },
    /// A pattern operation failed.
    #[error(transparent)]
    Pattern(#[from] PatternError),
}

/// What one run of the processor produced.
pub(crate) struct Outcome {
    /// The expanded word and its split words, or the error (its message
    /// prefixed with `failed to process "..."`, as BuildKit does).
    pub(crate) result: Result<(String, Vec<String>), ExpandError>,
    /// Names looked up and found.
    pub(crate) used: BTreeSet<String>,
    /// Names looked up and not found.
    pub(crate) unmatched: BTreeSet<String>,
}

/// Expands `word` with `lex`'s options against `env`.
pub(crate) fn run<L: Lookup + ?Sized>(lex: &ShellLex, word: &str, env: &L) -> Outcome {
    let mut chars: Vec<char> = word.chars().collect();
    // Go's text/scanner skips a byte order mark at the very start.
    if chars.first() == Some(&'\u{feff}') {
        chars.remove(0);
    }
    let mut processor = Processor {
        lex,
        env,
        chars,
        pos: 0,
        depth: 0,
        budget: pattern::Budget::default(),
        used: BTreeSet::new(),
        unmatched: BTreeSet::new(),
    };
    let result = processor
        .stop_on(None, lex.raw_escapes)
        .map_err(|e| ExpandError {
            message: format!("failed to process {}: {e}", unicode::go_quote(word)),
        });
    Outcome {
        result,
        used: processor.used,
        unmatched: processor.unmatched,
    }
}

/// A word that expands to itself, without running the processor: one
/// with no `$`, quote or escape character, not starting with a byte order
/// mark, and within [`MAX_WORD_BYTES`]. Most words are like that.
pub(crate) fn literal(lex: &ShellLex, word: &str) -> Option<String> {
    let special = |c: char| matches!(c, '$' | '\'' | '"') || c == lex.escape;
    (word.len() <= MAX_WORD_BYTES && !word.starts_with('\u{feff}') && !word.contains(special))
        .then(|| word.to_owned())
}

/// The expanded text of a word being read, plus its whitespace-split words.
#[derive(Default)]
struct Words {
    current: String,
    done: Vec<String>,
    in_word: bool,
}

impl Words {
    /// An unquoted character: whitespace ends the current word.
    fn add_char(&mut self, c: char) {
        if unicode::is_space(c) {
            if self.in_word && !self.current.is_empty() {
                self.done.push(std::mem::take(&mut self.current));
                self.in_word = false;
            }
        } else {
            self.add_raw_char(c);
        }
    }

    /// A quoted or escaped character: always part of the word.
    fn add_raw_char(&mut self, c: char) {
        self.current.push(c);
        self.in_word = true;
    }

    /// The unquoted result of an expansion: split like typed characters.
    fn add_str(&mut self, s: &str) {
        s.chars().for_each(|c| self.add_char(c));
    }

    /// A quoted string: kept whole, even when empty.
    fn add_raw_str(&mut self, s: &str) {
        self.current.push_str(s);
        self.in_word = true;
    }

    fn finish(mut self) -> Vec<String> {
        if !self.current.is_empty() {
            self.done.push(self.current);
        }
        self.done
    }
}

struct Processor<'a, L: ?Sized> {
    lex: &'a ShellLex,
    env: &'a L,
    chars: Vec<char>,
    pos: usize,
    /// Current `${` nesting.
    depth: usize,
    /// What patterns may still cost.
    budget: pattern::Budget,
    used: BTreeSet<String>,
    unmatched: BTreeSet<String>,
}

impl<L: Lookup + ?Sized> Processor<'_, L> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    /// Reads up to and including `stop` (or to the end when `stop` is
    /// `None`), returning the expanded text and its split words. With
    /// `raw_escapes` the escape characters are kept in the output.
    fn stop_on(&mut self, stop: Option<char>, raw_escapes: bool) -> Res<(String, Vec<String>)> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(c) = self.peek() {
            check_len(&result)?;
            if stop == Some(c) {
                self.next();
                return Ok((result, words.finish()));
            }
            match c {
                '$' => {
                    let value = self.dollar()?;
                    result.push_str(&value);
                    words.add_str(&value);
                }
                '<' => {
                    let text = self.possible_heredoc();
                    result.push_str(&text);
                    words.add_raw_str(&text);
                }
                '\'' if !self.lex.skip_process_quotes => {
                    let text = self.single_quote()?;
                    result.push_str(&text);
                    words.add_raw_str(&text);
                }
                '"' if !self.lex.skip_process_quotes => {
                    let text = self.double_quote(raw_escapes)?;
                    result.push_str(&text);
                    words.add_raw_str(&text);
                }
                _ => {
                    self.next();
                    if c == self.lex.escape {
                        if raw_escapes {
                            words.add_raw_char(c);
                            result.push(c);
                        }
                        // An escape at the very end is dropped.
                        let Some(escaped) = self.next() else { break };
                        words.add_raw_char(escaped);
                        result.push(escaped);
                    } else {
                        words.add_char(c);
                        result.push(c);
                    }
                }
            }
        }
        check_len(&result)?;
        match stop {
            Some(stop) => Err(WordError::Unclosed(stop)),
            None => Ok((result, words.finish())),
        }
    }

    /// `'...'`: everything literal up to the next `'`; no escapes.
    fn single_quote(&mut self) -> Res<String> {
        let mut result = String::new();
        let open = self.next();
        if self.lex.raw_quotes {
            result.extend(open);
        }
        loop {
            check_len(&result)?;
            match self.next() {
                None => {
                    return Err(WordError::UnclosedSingleQuote);
                }
                Some('\'') => {
                    if self.lex.raw_quotes {
                        result.push('\'');
                    }
                    return Ok(result);
                }
                Some(c) => result.push(c),
            }
        }
    }

    /// `"..."`: `$` expands; the escape character escapes only `"`, `$` and
    /// itself, and is kept before anything else.
    fn double_quote(&mut self, raw_escapes: bool) -> Res<String> {
        let mut result = String::new();
        let open = self.next();
        if self.lex.raw_quotes {
            result.extend(open);
        }
        loop {
            check_len(&result)?;
            match self.peek() {
                None => {
                    return Err(WordError::UnclosedDoubleQuote);
                }
                Some('"') => {
                    self.next();
                    if self.lex.raw_quotes {
                        result.push('"');
                    }
                    return Ok(result);
                }
                Some('$') => {
                    let value = self.dollar()?;
                    result.push_str(&value);
                }
                Some(c) => {
                    self.next();
                    let mut out = c;
                    if c == self.lex.escape {
                        if raw_escapes {
                            result.push(c);
                        }
                        match self.peek() {
                            // Dropped here; the loop then reports the open quote.
                            None => continue,
                            Some(next) if next == '"' || next == '$' || next == self.lex.escape => {
                                self.next();
                                out = next;
                            }
                            // BuildKit writes the escape again here, so with
                            // raw escapes it appears twice.
                            Some(_) => {}
                        }
                    }
                    result.push(out);
                }
            }
        }
    }

    /// `<<` followed by blanks stays together as one raw piece, so that a
    /// heredoc marker like `<< EOF` is a single word.
    fn possible_heredoc(&mut self) -> String {
        self.next();
        if self.peek() != Some('<') {
            return "<".to_owned();
        }
        self.next();
        let mut text = "<<".to_owned();
        while let Some(c @ (' ' | '\t' | '\r')) = self.peek() {
            text.push(c);
            self.next();
        }
        text
    }

    /// A variable name after `$` or `${`: a run of letters, digits and `_`;
    /// or a run of digits (positional parameters); or one special parameter.
    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if name.is_empty() && unicode::is_digit(c) {
                while let Some(d) = self.peek().filter(|&d| unicode::is_digit(d)) {
                    self.next();
                    name.push(d);
                }
                return name;
            }
            if name.is_empty() && is_special_param(c) {
                self.next();
                return c.to_string();
            }
            if !unicode::is_letter(c) && !unicode::is_digit(c) && c != '_' {
                break;
            }
            self.next();
            name.push(c);
        }
        name
    }

    /// Looks `name` up, recording whether it was found.
    fn get_env(&mut self, name: &str) -> Option<String> {
        match self.env.lookup(name) {
            Some(value) => {
                self.used.insert(name.to_owned());
                Some(value.to_owned())
            }
            None => {
                self.unmatched.insert(name.to_owned());
                None
            }
        }
    }

    /// `$name` or `${...}`, at a `$`.
    fn dollar(&mut self) -> Res<String> {
        self.next();
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_owned());
            }
            return Ok(match self.get_env(&name) {
                Some(value) => value,
                None if self.lex.skip_unset_env => format!("${name}"),
                None => String::new(),
            });
        }
        self.next();
        if self.depth >= MAX_NESTING {
            return Err(WordError::TooDeep);
        }
        self.depth += 1;
        let result = self.braced();
        self.depth -= 1;
        result
    }

    /// The rest of `${...}`, after the `{`.
    fn braced(&mut self) -> Res<String> {
        match self.peek() {
            None => return Err(WordError::MissingBrace),
            Some('{' | '}' | ':') => return Err(WordError::BadSubstitution),
            Some(_) => {}
        }
        let name = self.name();
        let Some(c) = self.next() else {
            return Err(WordError::MissingBrace);
        };
        match c {
            '}' => Ok(match self.get_env(&name) {
                Some(value) => value,
                None if self.lex.skip_unset_env => format!("${{{name}}}"),
                None => String::new(),
            }),
            '/' => self.replacement(&name),
            ':' | '+' | '-' | '?' | '#' | '%' => {
                let (op, null_is_unset) = if c == ':' {
                    match self.next() {
                        Some(op) => (op, true),
                        None => return Err(WordError::MissingBrace),
                    }
                } else {
                    (c, false)
                };
                let spelled = if null_is_unset {
                    format!(":{op}")
                } else {
                    op.to_string()
                };
                self.modifier(&name, op, null_is_unset, &spelled)
            }
            _ => Err(WordError::UnsupportedModifier(c.to_string())),
        }
    }

    /// `${name<op>word}` with `op` one of `-`, `+`, `?`, `#`, `%` (or, after a
    /// colon, anything, which is an error once the word has been read).
    fn modifier(
        &mut self,
        name: &str,
        op: char,
        null_is_unset: bool,
        spelled: &str,
    ) -> Res<String> {
        let is_trim = op == '#' || op == '%';
        if null_is_unset && is_trim {
            return Err(WordError::UnsupportedModifier(spelled.to_owned()));
        }
        // Patterns keep their escapes, for the pattern parser to read.
        let word = match self.stop_on(Some('}'), is_trim) {
            Ok((word, _)) => word,
            Err(_) if self.peek().is_none() => return Err(WordError::MissingBrace),
            Err(e) => return Err(e),
        };
        let value = self.get_env(name);
        if value.is_none() && self.lex.skip_unset_env {
            return Ok(format!("${{{name}{spelled}{word}}}"));
        }
        let empty = |v: &Option<String>| v.as_deref().is_none_or(|v| null_is_unset && v.is_empty());
        match op {
            '-' => Ok(if empty(&value) {
                word
            } else {
                value.unwrap_or_default()
            }),
            '+' => Ok(if empty(&value) { String::new() } else { word }),
            '?' => match value {
                None => Err(required(name, &word, "is not allowed to be unset")),
                Some(v) if null_is_unset && v.is_empty() => {
                    Err(required(name, &word, "is not allowed to be empty"))
                }
                Some(v) => Ok(v),
            },
            '#' | '%' => {
                let value = value.unwrap_or_default();
                // A doubled operator (`##`, `%%`) asks for the longest match.
                let (pattern, longest) = match word.strip_prefix(op) {
                    Some(rest) => (rest, true),
                    None => (word.as_str(), false),
                };
                if op == '#' {
                    Ok(pattern::trim_prefix(
                        &value,
                        pattern,
                        longest,
                        &mut self.budget,
                    )?)
                } else {
                    Ok(pattern::trim_suffix(
                        &value,
                        pattern,
                        longest,
                        &mut self.budget,
                    )?)
                }
            }
            _ => Err(WordError::UnsupportedModifier(spelled.to_owned())),
        }
    }

    /// `${name/pattern/replacement}` and `${name//pattern/replacement}`,
    /// after the first `/`.
    fn replacement(&mut self, name: &str) -> Res<String> {
        let all = self.peek() == Some('/');
        if all {
            self.next();
        }
        let pattern = match self.stop_on(Some('/'), true) {
            Ok((pattern, _)) => pattern,
            Err(_) if self.peek().is_none() => {
                return Err(WordError::MissingSlash);
            }
            Err(e) => return Err(e),
        };
        let replacement = match self.stop_on(Some('}'), true) {
            Ok((replacement, _)) => replacement,
            Err(_) if self.peek().is_none() => return Err(WordError::MissingBrace),
            Err(e) => return Err(e),
        };
        let value = self.get_env(name);
        if value.is_none() && self.lex.skip_unset_env {
            // BuildKit writes a single `/` here even for `//`; keep what was written.
            let slashes = if all { "//" } else { "/" };
            return Ok(format!("${{{name}{slashes}{pattern}/{replacement}}}"));
        }
        Ok(pattern::replace(
            value.as_deref().unwrap_or_default(),
            &pattern,
            &replacement,
            all,
            &mut self.budget,
        )?)
    }
}

/// Fails once a word being expanded is longer than [`MAX_WORD_BYTES`].
/// Checked before each piece is added, so it never grows by more than one
/// variable's value past the limit.
fn check_len(result: &str) -> Res<()> {
    if result.len() > MAX_WORD_BYTES {
        return Err(PatternError::from(TooLong(MAX_WORD_BYTES)).into());
    }
    Ok(())
}

/// POSIX special parameters, which BuildKit reads as one-character names.
fn is_special_param(c: char) -> bool {
    matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0')
}

/// The `${name?word}` error: `word` if given, else the default text.
fn required(name: &str, word: &str, default: &str) -> WordError {
    let message = if word.is_empty() { default } else { word };
    WordError::Required {
        name: name.to_owned(),
        message: message.to_owned(),
    }
}
