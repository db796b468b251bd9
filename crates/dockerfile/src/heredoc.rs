//! Heredoc markers (`<<EOF`, `<<-EOF`, `<<"EOF"`) and bodies.
//!
//! As in BuildKit, the instruction line is split into shell words (quotes
//! and escapes kept raw, `$VAR` left alone); every word of the form
//! `[fd]<<[-]WORD` names a heredoc whose body is read from the following
//! lines up to a line that is exactly `WORD` (after removing leading tabs
//! for `<<-`). A quoted `WORD` (`'EOF'`, `"EOF"`, `E"O"F`) marks a body that
//! is not expanded. Only `RUN`, `COPY` and `ADD` in shell form (also under
//! `ONBUILD`) take heredocs.

use crate::ast::{Heredoc, Node, go_quote};

/// The escape character of the heredoc word lexer: always `\`, whatever
/// the file's `# escape=` says (as in BuildKit).
const ESC: char = '\\';

/// How deeply `${...}` forms may nest in a marker line before the lexer
/// gives up (BuildKit has no limit; this keeps the stack bounded).
const MAX_NESTING: usize = 64;

/// A heredoc marker word that is malformed (BuildKit's words).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeredocError {
    /// The word after `<<` could not be split as a shell word.
    #[error("failed to process {quoted}: {cause}")]
    Word {
        /// The word, Go-quoted.
        quoted: String,
        /// Why it could not be split.
        cause: WordError,
    },
    /// Reading the word with and without its quotes disagreed.
    #[error("internal lexing of heredoc produced inconsistent results: {0}")]
    Inconsistent(String),
}

/// Why the heredoc word lexer could not split a word.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WordError {
    /// `${` inside `${` more than 64 deep.
    #[error("variable substitutions nested too deeply")]
    TooDeep,
    /// The word ended before the closing character.
    #[error("unexpected end of statement while looking for matching {0}")]
    Unclosed(char),
    /// The word ended inside `'...'`.
    #[error("unexpected end of statement while looking for matching single-quote")]
    UnclosedSingleQuote,
    /// The word ended inside `"..."`.
    #[error("unexpected end of statement while looking for matching double-quote")]
    UnclosedDoubleQuote,
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
}

/// Instructions that may carry heredocs.
pub const HEREDOC_INSTRUCTIONS: [&str; 3] = ["add", "copy", "run"];

/// A heredoc marker found on an instruction line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    /// The heredoc with an empty body.
    pub heredoc: Heredoc,
    /// Byte offset of the marker word in the line.
    pub offset: usize,
}

/// Whether `node` (or, for `ONBUILD`, its trigger) may carry heredocs;
/// returns the node that would hold them.
pub fn heredoc_target(node: &mut Node) -> Option<&mut Node> {
    let target = if node.keyword == "onbuild" && node.sub.is_some() {
        node.sub.as_deref_mut()?
    } else {
        node
    };
    (HEREDOC_INSTRUCTIONS.contains(&target.keyword.as_str()) && !target.json).then_some(target)
}

/// Every heredoc marker on `line`, in order. A line the shell lexer cannot
/// split (an unterminated quote, say) has none, as in BuildKit.
pub fn heredocs_from_line(line: &str) -> Result<Vec<Marker>, HeredocError> {
    let words = Lexer::new(line, true, true).words().unwrap_or_default();
    let mut out = Vec::new();
    for (offset, word) in words {
        if let Some(heredoc) = parse_heredoc(&word)? {
            out.push(Marker { heredoc, offset });
        }
    }
    Ok(out)
}

/// BuildKit's `ParseHeredoc`: `src` must match `^(\d*)<<(-?)\s*([^<]*)$`
/// with a single shell word after the `<<`. `Ok(None)` when it is not a
/// heredoc marker; an error when the word is malformed (`<<'EOF`).
pub fn parse_heredoc(src: &str) -> Result<Option<Heredoc>, HeredocError> {
    let rest = src.trim_start_matches(|c: char| c.is_ascii_digit());
    let Some(rest) = rest.strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, rest) = match rest.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let rest = rest.trim_start_matches(['\t', '\n', '\x0c', '\r', ' ']);
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let fail = |cause| HeredocError::Word {
        quoted: go_quote(rest),
        cause,
    };
    let words = Lexer::new(rest, false, false).words().map_err(fail)?;
    let [(_, word)] = words.as_slice() else {
        return Ok(None);
    };
    let raw = Lexer::new(rest, true, false).words().map_err(fail)?;
    let [(_, raw)] = raw.as_slice() else {
        return Err(HeredocError::Inconsistent(rest.to_owned()));
    };
    let quotes = |s: &str| s.chars().filter(|&c| c == '\'' || c == '"').count();
    Ok(Some(Heredoc {
        name: word.clone(),
        content: String::new(),
        expand: quotes(word) == quotes(raw),
        chomp,
    }))
}

/// Whether the raw `line` (line ending included) ends the heredoc `doc`.
pub fn is_terminator(line: &str, doc: &Heredoc) -> bool {
    let mut candidate = line.trim_end_matches(['\r', '\n']);
    if doc.chomp {
        candidate = candidate.trim_start_matches('\t');
    }
    candidate == doc.name
}

/// Removes the leading tabs of every line (`<<-`).
pub fn chomp_content(content: &str) -> String {
    content
        .split_inclusive('\n')
        .map(|l| l.trim_start_matches('\t'))
        .collect()
}

/// The words of a shell line as BuildKit's `shell.Lex.ProcessWords` sees
/// them with no variables set and unset ones left as written
/// (`SkipUnsetEnv`). Only the splitting matters here: `$` forms are kept
/// as text, so no expansion happens.
struct Lexer<'a> {
    chars: std::iter::Peekable<std::str::CharIndices<'a>>,
    raw_quotes: bool,
    raw_escapes: bool,
    depth: usize,
}

/// Words under construction, with the byte offset where each starts.
#[derive(Default)]
struct Words {
    words: Vec<(usize, String)>,
    buf: String,
    start: usize,
    in_word: bool,
}

impl Words {
    fn add_char(&mut self, c: char, at: usize) {
        if c.is_whitespace() {
            if self.in_word && !self.buf.is_empty() {
                self.words.push((self.start, std::mem::take(&mut self.buf)));
                self.in_word = false;
            }
        } else {
            self.add_raw(c.encode_utf8(&mut [0; 4]), at);
        }
    }

    fn add_raw(&mut self, s: &str, at: usize) {
        if self.buf.is_empty() {
            self.start = at;
        }
        self.buf.push_str(s);
        self.in_word = true;
    }

    fn add_string(&mut self, s: &str, at: usize) {
        for c in s.chars() {
            self.add_char(c, at);
        }
    }

    fn finish(mut self) -> Vec<(usize, String)> {
        if !self.buf.is_empty() {
            self.words.push((self.start, self.buf));
        }
        self.words
    }
}

impl<'a> Lexer<'a> {
    fn new(src: &'a str, raw_quotes: bool, raw_escapes: bool) -> Self {
        Lexer {
            chars: src.char_indices().peekable(),
            raw_quotes,
            raw_escapes,
            depth: 0,
        }
    }

    fn peek(&mut self) -> Option<char> {
        self.chars.peek().map(|&(_, c)| c)
    }

    fn next(&mut self) -> Option<char> {
        self.chars.next().map(|(_, c)| c)
    }

    fn words(mut self) -> Result<Vec<(usize, String)>, WordError> {
        let escapes = self.raw_escapes;
        self.stop_on(None, escapes).map(|(_, w)| w)
    }

    /// `processStopOn`: read up to `stop` (or the end when `None`).
    fn stop_on(
        &mut self,
        stop: Option<char>,
        raw_escapes: bool,
    ) -> Result<(String, Vec<(usize, String)>), WordError> {
        if self.depth >= MAX_NESTING {
            return Err(WordError::TooDeep);
        }
        self.depth += 1;
        let saved = std::mem::replace(&mut self.raw_escapes, raw_escapes);
        let out = self.stop_on_inner(stop);
        self.raw_escapes = saved;
        self.depth -= 1;
        out
    }

    fn stop_on_inner(
        &mut self,
        stop: Option<char>,
    ) -> Result<(String, Vec<(usize, String)>), WordError> {
        let mut result = String::new();
        let mut words = Words::default();
        while let Some(&(at, ch)) = self.chars.peek() {
            if Some(ch) == stop {
                self.next();
                return Ok((result, words.finish()));
            }
            match ch {
                '$' => {
                    let tmp = self.dollar()?;
                    result.push_str(&tmp);
                    words.add_string(&tmp, at);
                }
                '<' => {
                    let tmp = self.possible_heredoc();
                    result.push_str(&tmp);
                    words.add_raw(&tmp, at);
                }
                '\'' | '"' => {
                    let tmp = if ch == '\'' {
                        self.single_quote()?
                    } else {
                        self.double_quote()?
                    };
                    result.push_str(&tmp);
                    words.add_raw(&tmp, at);
                }
                _ => {
                    self.next();
                    if ch == ESC {
                        if self.raw_escapes {
                            words.add_raw("\\", at);
                            result.push(ch);
                        }
                        let Some(&(at2, c2)) = self.chars.peek() else {
                            break;
                        };
                        self.next();
                        words.add_raw(c2.encode_utf8(&mut [0; 4]), at2);
                        result.push(c2);
                    } else {
                        words.add_char(ch, at);
                        result.push(ch);
                    }
                }
            }
        }
        if let Some(stop) = stop {
            return Err(WordError::Unclosed(stop));
        }
        Ok((result, words.finish()))
    }

    fn single_quote(&mut self) -> Result<String, WordError> {
        let mut out = String::new();
        self.next();
        if self.raw_quotes {
            out.push('\'');
        }
        loop {
            match self.next() {
                None => {
                    return Err(WordError::UnclosedSingleQuote);
                }
                Some('\'') => {
                    if self.raw_quotes {
                        out.push('\'');
                    }
                    return Ok(out);
                }
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quote(&mut self) -> Result<String, WordError> {
        let mut out = String::new();
        self.next();
        if self.raw_quotes {
            out.push('"');
        }
        loop {
            match self.peek() {
                None => {
                    return Err(WordError::UnclosedDoubleQuote);
                }
                Some('"') => {
                    self.next();
                    if self.raw_quotes {
                        out.push('"');
                    }
                    return Ok(out);
                }
                Some('$') => out.push_str(&self.dollar()?),
                Some(_) => {
                    let mut ch = self.next().unwrap_or(ESC);
                    if ch == ESC {
                        if self.raw_escapes {
                            out.push(ch);
                        }
                        match self.peek() {
                            None => continue,
                            Some('"' | '$' | ESC) => ch = self.next().unwrap_or(ESC),
                            Some(_) => {}
                        }
                    }
                    out.push(ch);
                }
            }
        }
    }

    /// `processDollar` with no variables set: the text as written, or an
    /// error for a malformed `${...}`.
    fn dollar(&mut self) -> Result<String, WordError> {
        self.next();
        if self.peek() != Some('{') {
            let name = self.name();
            return Ok(format!("${name}"));
        }
        self.next();
        match self.peek() {
            None => return Err(WordError::MissingBrace),
            Some('{' | '}' | ':') => return Err(WordError::BadSubstitution),
            Some(_) => {}
        }
        let name = self.name();
        let ch = self.next();
        let show = |c: Option<char>| c.unwrap_or('\u{fffd}');
        match ch {
            Some('}') => Ok(format!("${{{name}}}")),
            Some(':' | '+' | '-' | '?' | '#' | '%') => {
                let mut modifier = String::from(show(ch));
                let mut op = ch;
                if ch == Some(':') {
                    op = self.next();
                    modifier.push(show(op));
                    if matches!(op, Some('#' | '%')) {
                        return Err(WordError::UnsupportedModifier(modifier));
                    }
                }
                let raw = matches!(op, Some('#' | '%'));
                let word = self.until('}', raw, WordError::MissingBrace)?;
                Ok(format!("${{{name}{modifier}{word}}}"))
            }
            Some('/') => {
                if self.peek() == Some('/') {
                    self.next();
                }
                let pattern = self.until('/', true, WordError::MissingSlash)?;
                let replacement = self.until('}', true, WordError::MissingBrace)?;
                Ok(format!("${{{name}/{pattern}/{replacement}}}"))
            }
            _ => Err(WordError::UnsupportedModifier(show(ch).to_string())),
        }
    }

    /// A nested `processStopOn`, with BuildKit's message when the input ends.
    fn until(
        &mut self,
        stop: char,
        raw_escapes: bool,
        at_end: WordError,
    ) -> Result<String, WordError> {
        match self.stop_on(Some(stop), raw_escapes) {
            Ok((s, _)) => Ok(s),
            Err(_) if self.peek().is_none() => Err(at_end),
            Err(e) => Err(e),
        }
    }

    /// `processName`: a run of digits, one special parameter, or a name.
    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if name.is_empty() && c.is_numeric() {
                while let Some(d) = self.peek().filter(|d| d.is_numeric()) {
                    name.push(d);
                    self.next();
                }
                return name;
            }
            if name.is_empty() && matches!(c, '@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') {
                self.next();
                return c.to_string();
            }
            if !c.is_alphanumeric() && c != '_' {
                break;
            }
            name.push(c);
            self.next();
        }
        name
    }

    /// `processPossibleHeredoc`: `<<` swallows the blanks after it so that
    /// `<< EOF` stays one word.
    fn possible_heredoc(&mut self) -> String {
        self.next();
        if self.peek() != Some('<') {
            return "<".into();
        }
        self.next();
        let mut out = String::from("<<");
        while let Some(c) = self.peek().filter(|c| matches!(c, '\t' | '\r' | ' ')) {
            out.push(c);
            self.next();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(line: &str) -> Vec<String> {
        heredocs_from_line(line)
            .unwrap()
            .into_iter()
            .map(|m| m.heredoc.name)
            .collect()
    }

    #[test]
    fn marker_helpers_like_buildkit() {
        for ok in [
            "<<EOF",
            "<<'EOF'",
            "<<\"EOF\"",
            "<<-EOF",
            "<<-'EOF'",
            "<<-\"EOF\"",
            "<<EO\"F\"",
            "<< EOF",
            "<<- EOF",
        ] {
            assert_eq!(
                parse_heredoc(ok).unwrap().map(|h| h.name),
                Some("EOF".to_string()),
                "{ok}"
            );
        }
        for bad in ["<<'EOF", "<<\"EOF", "<<EOF'", "<<EOF\""] {
            assert!(parse_heredoc(bad).is_err(), "{bad}");
        }
        for not in ["", "EOF", "<<", "<<-", "<EOF", "<<<EOF", "<<EOF sh"] {
            assert_eq!(parse_heredoc(not).unwrap(), None, "{not}");
        }
    }

    #[test]
    fn expand_and_chomp_flags() {
        let h = |s: &str| parse_heredoc(s).unwrap().unwrap();
        assert!(h("<<EOF").expand);
        assert!(!h("<<'EOF'").expand);
        assert!(!h("<<eo'f'").expand);
        assert_eq!(h("<<eo'f'").name, "eof");
        assert!(h("<<eo\\'f").expand);
        assert_eq!(h("<<eo\\'f").name, "eo'f");
        assert!(!h("<<'e'o\\'f").expand);
        assert_eq!(h("<<'one two'").name, "one two");
        assert_eq!(h("<<$EOF").name, "$EOF");
        assert_eq!(h("<<${EOF}").name, "${EOF}");
        assert!(h("<<-EOF").chomp);
        assert!(!h("<<EOF").chomp);
        assert_eq!(h("3<<EOF").name, "EOF");
    }

    #[test]
    fn markers_on_a_line() {
        assert_eq!(names("RUN <<EOF"), ["EOF"]);
        // `<<-` followed by a blank is a word of its own, as in BuildKit.
        assert!(names("RUN <<- EOF").is_empty());
        assert_eq!(names("RUN << -EOF"), ["-EOF"]);
        assert_eq!(names("RUN 4<<EOF"), ["EOF"]);
        assert_eq!(names("RUN <<EOF <<EOF2"), ["EOF", "EOF2"]);
        assert_eq!(names("RUN <<  EOF  > foo"), ["EOF"]);
        assert!(names("RUN '<<EOF'").is_empty());
        assert!(names("RUN \"<<EOF\"").is_empty());
        assert!(names("RUN cat<<EOF").is_empty());
        assert!(names("RUN <<EOF 'unterminated").is_empty());
        assert!(names("RUN ${x <<EOF").is_empty());
        let m = heredocs_from_line("COPY  <<A  <<B /x").unwrap();
        assert_eq!(m.iter().map(|m| m.offset).collect::<Vec<_>>(), [6, 11]);
    }

    #[test]
    fn terminators_and_chomp() {
        let mut doc = parse_heredoc("<<EOF").unwrap().unwrap();
        assert!(is_terminator("EOF\n", &doc));
        assert!(is_terminator("EOF\r\n", &doc));
        assert!(is_terminator("EOF", &doc));
        assert!(!is_terminator("\tEOF\n", &doc));
        assert!(!is_terminator("EOF \n", &doc));
        doc.chomp = true;
        assert!(is_terminator("\t\tEOF\n", &doc));
        assert_eq!(chomp_content("\ta\n\t\tb\n c\n"), "a\nb\n c\n");
    }
}
