//! BuildKit's per-instruction argument splitters (`line_parsers.go` and
//! `split_command.go`): each instruction's text after the keyword (and its
//! `--flags`) becomes the argument list BuildKit keeps in `Node.Next`.
//!
//! Errors returned here carry no position (`line == 0`); the parser puts
//! them at the instruction.

use crate::ast::{Node, Pos};
use crate::error::{Error, Result};
use crate::parser::LineCtx;

/// BuildKit's message for a JSON array holding something other than strings.
pub const NOT_STRING_ARRAY: &str =
    "when using JSON array syntax, arrays must be comprised of strings only";

/// What a line parser makes of an instruction's arguments.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Parsed {
    pub args: Vec<String>,
    /// The arguments came from a JSON array.
    pub json: bool,
    /// ONBUILD's nested instruction.
    pub sub: Option<Node>,
}

impl Parsed {
    fn args(args: Vec<String>) -> Self {
        Parsed {
            args,
            ..Parsed::default()
        }
    }
}

fn err(message: impl Into<String>) -> Error {
    Error::new(message, Pos::default())
}

/// Go's `unicode.IsSpace` (the Unicode `White_Space` property).
pub fn is_space(c: char) -> bool {
    c.is_whitespace()
}

/// Go's `unicode.IsSpace` applied to a byte, as BuildKit's byte-oriented
/// scanners (`extractBuilderFlags`, `parseHealthConfig`) do: only ASCII
/// white space separates there (non-ASCII spaces stay inside words).
fn is_byte_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\x0b' | '\x0c' | '\r' | ' ')
}

/// The characters of BuildKit's `reWhitespace` (`[\t\v\f\r ]`).
fn is_re_ws(c: char) -> bool {
    matches!(c, '\t' | '\x0b' | '\x0c' | '\r' | ' ')
}

/// `reWhitespace.Split(s, n)`: split at runs of `[\t\v\f\r ]`, into at most
/// `n` parts when `n > 0` (the last part keeps the rest unsplit).
pub fn split_whitespace_regex(s: &str, n: usize) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut iter = s.char_indices().peekable();
    while let Some((i, c)) = iter.next() {
        if n > 0 && parts.len() + 1 == n {
            break;
        }
        if is_re_ws(c) {
            let mut end = i + c.len_utf8();
            while let Some(&(j, d)) = iter.peek() {
                if !is_re_ws(d) {
                    break;
                }
                end = j + d.len_utf8();
                iter.next();
            }
            parts.push(&s[start..i]);
            start = end;
        }
    }
    parts.push(&s[start..]);
    parts
}

/// `splitCommand`: the keyword, the builder flags and the remaining
/// arguments (trimmed). All returned slices borrow from `line`.
pub fn split_command(line: &str, escape: char) -> (&str, Vec<String>, &str) {
    let parts = split_whitespace_regex(line.trim(), 2);
    let cmd = parts.first().copied().unwrap_or_default();
    match parts.get(1) {
        Some(rest) => {
            let (args, flags) = extract_builder_flags(rest, escape);
            (cmd, flags, args.trim())
        }
        None => (cmd, Vec::new(), ""),
    }
}

/// `extractBuilderFlags`: take the leading `--name[=value]` words (quotes
/// and escapes processed) and return the rest of the line. A bare `--` ends
/// the flags and is dropped. BuildKit scans bytes here; this scans
/// characters (so non-ASCII flag values survive intact) but, like it, only
/// splits at ASCII white space.
pub fn extract_builder_flags(line: &str, escape: char) -> (&str, Vec<String>) {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote(char),
    }
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut word = String::new();
    let mut blank_ok = false;
    let mut iter = line.char_indices().peekable();
    while let Some((pos, ch)) = iter.next() {
        if phase == Phase::Spaces {
            if is_byte_space(ch) {
                continue;
            }
            let next_is_dash = matches!(iter.peek(), Some((_, '-')));
            if ch != '-' || !next_is_dash {
                return (&line[pos..], words);
            }
            phase = Phase::Word;
        }
        match phase {
            Phase::Word => {
                if is_byte_space(ch) {
                    phase = Phase::Spaces;
                    if word == "--" {
                        return (&line[pos..], words);
                    }
                    if blank_ok || !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                    word.clear();
                    blank_ok = false;
                    continue;
                }
                if ch == '\'' || ch == '"' {
                    phase = Phase::Quote(ch);
                    blank_ok = true;
                    continue;
                }
                if ch == escape {
                    match iter.next() {
                        Some((_, c)) => word.push(c),
                        None => continue,
                    }
                    continue;
                }
                word.push(ch);
            }
            Phase::Quote(q) => {
                if ch == q {
                    phase = Phase::Word;
                    continue;
                }
                if ch == escape {
                    match iter.next() {
                        Some((_, c)) => word.push(c),
                        None => phase = Phase::Word,
                    }
                    continue;
                }
                word.push(ch);
            }
            Phase::Spaces => {}
        }
    }
    if phase != Phase::Spaces && word != "--" && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    ("", words)
}

/// `parseWords`: split at white space, keeping quotes and escapes as
/// written (they are removed later, by word expansion).
pub fn parse_words(rest: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut blank_ok = false;
    let mut word = String::new();
    let mut iter = rest.chars().peekable();
    while let Some(ch) = iter.next() {
        if let Some(q) = quote {
            if ch == q {
                quote = None;
            }
            // The escape token escapes nothing inside single quotes.
            if ch == escape && q != '\'' {
                match iter.next() {
                    Some(c) => {
                        word.push(ch);
                        word.push(c);
                    }
                    None => quote = None,
                }
                continue;
            }
            word.push(ch);
            continue;
        }
        if !in_word {
            if is_space(ch) {
                continue;
            }
            in_word = true;
        }
        if is_space(ch) {
            in_word = false;
            if blank_ok || !word.is_empty() {
                words.push(std::mem::take(&mut word));
            }
            blank_ok = false;
            continue;
        }
        if ch == '\'' || ch == '"' {
            quote = Some(ch);
            blank_ok = true;
        }
        if ch == escape {
            // An escape at the very end is dropped; otherwise it is kept
            // together with the character it escapes.
            if let Some(c) = iter.next() {
                word.push(ch);
                word.push(c);
            }
            continue;
        }
        word.push(ch);
    }
    if (in_word || quote.is_some()) && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    words
}

/// `parseNameVal` (ENV, LABEL): `k=v k2=v2 ...` gives `k v = k2 v2 =`; the
/// legacy `KEY name value...` form gives `name "value..." ""`.
pub fn parse_name_val(rest: &str, key: &str, escape: char) -> Result<Parsed> {
    let words = parse_words(rest, escape);
    let Some(first) = words.first() else {
        return Ok(Parsed::default());
    };
    if !first.contains('=') {
        let parts = split_whitespace_regex(rest, 2);
        if parts.len() < 2 {
            return Err(err(format!("{key} must have two arguments")));
        }
        return Ok(Parsed::args(vec![
            parts[0].to_string(),
            parts[1].to_string(),
            String::new(),
        ]));
    }
    let mut args = Vec::with_capacity(words.len() * 3);
    for word in words {
        let Some((k, v)) = word.split_once('=') else {
            return Err(err(format!(
                "syntax error - can't find = in {}. must be of the form: name=value",
                crate::ast::go_quote(&word)
            )));
        };
        args.push(k.to_string());
        args.push(v.to_string());
        args.push("=".to_string());
    }
    Ok(Parsed::args(args))
}

/// `parseNameOrNameVal` (ARG): the words, each `name` or `name=value`.
pub fn parse_name_or_name_val(rest: &str, escape: char) -> Parsed {
    Parsed::args(parse_words(rest, escape))
}

/// `parseStringsWhitespaceDelimited` (FROM, EXPOSE, shell-form list
/// instructions): split at runs of `[\t\v\f\r ]`.
pub fn parse_strings_whitespace_delimited(rest: &str) -> Parsed {
    if rest.is_empty() {
        return Parsed::default();
    }
    Parsed::args(
        split_whitespace_regex(rest, 0)
            .into_iter()
            .map(str::to_string)
            .collect(),
    )
}

/// `parseString` (MAINTAINER, USER, WORKDIR, STOPSIGNAL): the whole rest.
pub fn parse_string(rest: &str) -> Parsed {
    if rest.is_empty() {
        return Parsed::default();
    }
    Parsed::args(vec![rest.to_string()])
}

/// `parseIgnore`: keep the instruction, drop its arguments.
pub fn parse_ignore(_rest: &str) -> Parsed {
    Parsed::default()
}

/// The outcome of [`parse_json`].
#[derive(Debug, PartialEq, Eq)]
pub enum Json {
    /// A JSON array of strings.
    Strings(Vec<String>),
    /// Not JSON, or not an array: the caller falls back to shell form.
    NotJson,
    /// A JSON array holding something other than a string: an error.
    NotStringArray,
}

/// `parseJSON`: `rest` as a JSON array of strings.
pub fn parse_json(rest: &str) -> Json {
    let rest = rest.trim_start();
    if !rest.starts_with('[') {
        return Json::NotJson;
    }
    let Ok(values) = serde_json::from_str::<Vec<serde_json::Value>>(rest) else {
        return Json::NotJson;
    };
    let mut out = Vec::with_capacity(values.len());
    for v in values {
        match v {
            serde_json::Value::String(s) => out.push(s),
            _ => return Json::NotStringArray,
        }
    }
    Json::Strings(out)
}

/// `parseMaybeJSON` (RUN, CMD, ENTRYPOINT, SHELL): a JSON array, or else the
/// whole rest as one string.
pub fn parse_maybe_json(rest: &str) -> Result<Parsed> {
    if rest.is_empty() {
        return Ok(Parsed::default());
    }
    match parse_json(rest) {
        Json::Strings(args) => Ok(Parsed {
            args,
            json: true,
            sub: None,
        }),
        Json::NotStringArray => Err(err(NOT_STRING_ARRAY)),
        Json::NotJson => Ok(Parsed::args(vec![rest.to_string()])),
    }
}

/// `parseMaybeJSONToList` (ADD, COPY, VOLUME): a JSON array, or else the
/// white-space separated words.
pub fn parse_maybe_json_to_list(rest: &str) -> Result<Parsed> {
    match parse_json(rest) {
        Json::Strings(args) => Ok(Parsed {
            args,
            json: true,
            sub: None,
        }),
        Json::NotStringArray => Err(err(NOT_STRING_ARRAY)),
        Json::NotJson => Ok(parse_strings_whitespace_delimited(rest)),
    }
}

/// `parseHealthConfig`: the type word (`CMD`, `NONE`, ...) then the rest as
/// in [`parse_maybe_json`].
pub fn parse_health_config(rest: &str) -> Result<Parsed> {
    let sep = rest.find(is_byte_space).unwrap_or(rest.len());
    if sep == 0 {
        return Ok(Parsed::default());
    }
    let typ = &rest[..sep];
    let cmd = parse_maybe_json(rest[sep..].trim_start_matches(is_byte_space))?;
    let mut args = Vec::with_capacity(cmd.args.len() + 1);
    args.push(typ.to_string());
    args.extend(cmd.args);
    Ok(Parsed {
        args,
        json: cmd.json,
        sub: None,
    })
}

/// `parseSubCommand` (ONBUILD): the rest is an instruction of its own.
pub(crate) fn parse_sub_command(rest: &str, ctx: &LineCtx<'_>) -> Result<Parsed> {
    if rest.is_empty() {
        return Ok(Parsed::default());
    }
    let child = crate::parser::node_from_line(rest, ctx, Vec::new())?;
    Ok(Parsed {
        sub: Some(child),
        ..Parsed::default()
    })
}

/// The dispatch table: the line parser BuildKit uses for each instruction
/// (`keyword` lower-cased). Unknown keywords are ignored here, as in
/// BuildKit; the parser rejects them before calling this.
pub(crate) fn dispatch(keyword: &str, rest: &str, ctx: &LineCtx<'_>) -> Result<Parsed> {
    let escape = ctx.escape;
    match keyword {
        "add" | "copy" | "volume" => parse_maybe_json_to_list(rest),
        "arg" => Ok(parse_name_or_name_val(rest, escape)),
        "cmd" | "entrypoint" | "run" | "shell" => parse_maybe_json(rest),
        "env" => parse_name_val(rest, "ENV", escape),
        "label" => parse_name_val(rest, "LABEL", escape),
        "expose" | "from" => Ok(parse_strings_whitespace_delimited(rest)),
        "healthcheck" => parse_health_config(rest),
        "maintainer" | "stopsignal" | "user" | "workdir" => Ok(parse_string(rest)),
        "onbuild" => parse_sub_command(rest, ctx),
        _ => Ok(parse_ignore(rest)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn words_like_buildkit() {
        let cases: &[(&str, &[&str])] = &[
            ("foo", &["foo"]),
            ("foo bar", &["foo", "bar"]),
            ("foo\\ bar", &["foo\\ bar"]),
            ("foo=bar", &["foo=bar"]),
            ("foo bar 'abc xyz'", &["foo", "bar", "'abc xyz'"]),
            ("foo bar \"abc xyz\"", &["foo", "bar", "\"abc xyz\""]),
            ("àöû", &["àöû"]),
            ("föo bàr \"âbc xÿz\"", &["föo", "bàr", "\"âbc xÿz\""]),
            ("a\\", &["a"]),
            ("\"a\\", &["\"a"]),
            ("''", &["''"]),
            ("'a\\'b'", &["'a\\'b'"]),
        ];
        for (input, want) in cases {
            assert_eq!(parse_words(input, '\\'), s(want), "{input}");
        }
        assert_eq!(parse_words("a` b", '`'), s(&["a` b"]));
    }

    #[test]
    fn whitespace_regex_split() {
        assert_eq!(split_whitespace_regex("", 0), vec![""]);
        assert_eq!(split_whitespace_regex("a \t b", 0), vec!["a", "b"]);
        assert_eq!(split_whitespace_regex("a b  c", 2), vec!["a", "b  c"]);
        assert_eq!(split_whitespace_regex("a\u{a0}b", 0), vec!["a\u{a0}b"]);
    }

    #[test]
    fn builder_flags() {
        assert_eq!(
            extract_builder_flags("--a=1 --b x y", '\\'),
            ("x y", s(&["--a=1", "--b"]))
        );
        assert_eq!(
            extract_builder_flags("--a -- --b", '\\'),
            (" --b", s(&["--a"]))
        );
        assert_eq!(
            extract_builder_flags("--a=\"x y\" z", '\\'),
            ("z", s(&["--a=x y"]))
        );
        assert_eq!(extract_builder_flags("--a", '\\'), ("", s(&["--a"])));
        assert_eq!(extract_builder_flags("--", '\\'), ("", s(&[])));
        assert_eq!(extract_builder_flags("-a", '\\'), ("-a", s(&[])));
        assert_eq!(extract_builder_flags("--é=ü x", '\\'), ("x", s(&["--é=ü"])));
    }

    #[test]
    fn name_val() {
        let p = parse_name_val("a=b c=\"d e\"", "ENV", '\\').unwrap();
        assert_eq!(p.args, s(&["a", "b", "=", "c", "\"d e\"", "="]));
        let p = parse_name_val("a  b c", "ENV", '\\').unwrap();
        assert_eq!(p.args, s(&["a", "b c", ""]));
        let e = parse_name_val("PATH", "ENV", '\\').unwrap_err();
        assert_eq!(e.message, "ENV must have two arguments");
        let e = parse_name_val("a=b c", "LABEL", '\\').unwrap_err();
        assert_eq!(
            e.message,
            "syntax error - can't find = in \"c\". must be of the form: name=value"
        );
    }

    #[test]
    fn json_forms() {
        assert_eq!(parse_json(" [\"a\", \"b\"]"), Json::Strings(s(&["a", "b"])));
        assert_eq!(parse_json("[\"a\", 1]"), Json::NotStringArray);
        assert_eq!(parse_json("['a']"), Json::NotJson);
        assert_eq!(parse_json("echo"), Json::NotJson);
        assert!(parse_maybe_json("[[\"a\"]]").is_err());
        let p = parse_maybe_json("[]").unwrap();
        assert!(p.json && p.args.is_empty());
    }

    #[test]
    fn health() {
        let p = parse_health_config("CMD  a b").unwrap();
        assert_eq!(p.args, s(&["CMD", "a b"]));
        let p = parse_health_config("CMD [\"x\"]").unwrap();
        assert!(p.json);
        assert_eq!(p.args, s(&["CMD", "x"]));
        assert_eq!(parse_health_config("NONE").unwrap().args, s(&["NONE"]));
        assert_eq!(parse_health_config("").unwrap(), Parsed::default());
    }
}
