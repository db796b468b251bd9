//! The untyped syntax tree: one [`Node`] per instruction, as BuildKit's
//! `parser.Node`, plus its dump format (`Node.Dump()`), which the
//! conformance cases compare byte for byte.

use serde::Serialize;

/// A 1-based position in the Dockerfile text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Default)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

/// Where an instruction sits: from its first character to the last line it
/// (with continuations and heredoc bodies) occupies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct Span {
    pub start: Pos,
    pub end_line: usize,
}

/// A heredoc body attached to an instruction (`RUN <<EOF`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Heredoc {
    /// The word after `<<` with quotes removed (`EOF`).
    pub name: String,
    /// The body, each line ending in `\n` (tabs stripped for `<<-`).
    pub content: String,
    /// False for `<<"EOF"` / `<<'EOF'`: the body is used literally.
    pub expand: bool,
    /// True for `<<-EOF`.
    pub chomp: bool,
}

/// A non-fatal finding while parsing; printed to stderr, never fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    /// A short rule name, e.g. `NoEmptyContinuation`.
    pub rule: &'static str,
    pub message: String,
    /// 1-based line, 0 when the warning is about the whole file.
    pub line: usize,
}

/// One instruction as written, before any typing or expansion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    /// The instruction keyword, lower-cased (`from`, `run`, ...).
    pub keyword: String,
    /// `--name[=value]` words before the arguments, as written.
    pub flags: Vec<String>,
    /// The arguments as BuildKit's per-instruction line parser splits them.
    pub args: Vec<String>,
    /// The instruction nested in `ONBUILD`.
    pub sub: Option<Box<Node>>,
    /// True when the arguments came from a JSON array (exec form).
    pub json: bool,
    /// Heredoc bodies, in the order their `<<` markers appear.
    pub heredocs: Vec<Heredoc>,
    /// The instruction's text as written, continuations joined.
    pub original: String,
    pub span: Span,
    /// Comment lines directly above the instruction (without `#`).
    pub prev_comment: Vec<String>,
}

impl Node {
    /// BuildKit's `Node.Dump()` for this instruction, parentheses included.
    pub fn dump(&self) -> String {
        format!("({})", self.dump_inner())
    }

    fn dump_inner(&self) -> String {
        let mut s = self.keyword.clone();
        if !self.flags.is_empty() {
            s.push_str(" [");
            for (i, f) in self.flags.iter().enumerate() {
                if i > 0 {
                    s.push(' ');
                }
                s.push_str(&go_quote(f));
            }
            s.push(']');
        }
        if let Some(sub) = &self.sub {
            s.push(' ');
            s.push_str(&sub.dump());
        }
        for a in &self.args {
            s.push(' ');
            s.push_str(&go_quote(a));
        }
        s.trim().to_string()
    }
}

/// The whole file as parsed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ast {
    pub children: Vec<Node>,
    /// The escape (and continuation) character in force: `\` or `` ` ``.
    pub escape: char,
    /// Parser directives found at the top (`syntax`, `escape`, `check`), keys lower-cased.
    pub directives: Vec<(String, String)>,
    pub warnings: Vec<Warning>,
}

impl Ast {
    /// The dump of every instruction, one per line, trimmed (as `Node.Dump()` of the root).
    pub fn dump(&self) -> String {
        let mut s = String::new();
        for c in &self.children {
            s.push_str(&c.dump());
            s.push('\n');
        }
        s.trim().to_string()
    }
}

/// Go's `strconv.Quote`: escapes `"`, `\`, control and non-printable
/// characters; keeps printable Unicode.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if is_go_printable(c) => out.push(c),
            c if (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// An approximation of Go's `strconv.IsPrint`: letters, marks, numbers,
/// punctuation, symbols and the ASCII space. Without the Unicode category
/// tables this misses unassigned code points inside assigned blocks; it
/// does know the control, space, format (`Cf`), private-use, non-character
/// and unassigned-plane ranges.
fn is_go_printable(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() || crate::expand::is_format_char(c) {
        return false;
    }
    let u = c as u32;
    if u & 0xFFFE == 0xFFFE {
        return false; // U+nFFFE and U+nFFFF are non-characters in every plane
    }
    !matches!(u,
        0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x890..=0x891 | 0x8E2 | 0x180E
        | 0x200B..=0x200F | 0x2028..=0x202E | 0x2060..=0x206F | 0xFDD0..=0xFDEF | 0xFEFF
        | 0xFFF0..=0xFFFB | 0xE000..=0xF8FF | 0x110BD | 0x110CD | 0x13430..=0x1343F
        | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A | 0x2FA20..=0x2FFFF | 0x323B0..=0xE00FF
        | 0xE01F0..=0x10FFFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_like_go() {
        assert_eq!(go_quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(go_quote("tab\there\n"), r#""tab\there\n""#);
        assert_eq!(go_quote("한국어"), "\"한국어\"");
        assert_eq!(go_quote("\u{1}"), r#""\x01""#);
        assert_eq!(
            go_quote("\u{a0}\u{200b}\u{feff}"),
            r#""\u00a0\u200b\ufeff""#
        );
        assert_eq!(go_quote("\u{e0001}\u{10ffff}"), r#""\U000e0001\U0010ffff""#);
        assert_eq!(go_quote("\u{7f}\u{85}"), r#""\x7f\u0085""#);
        assert_eq!(go_quote("♥☃é😀"), "\"♥☃é😀\"");
    }
}
