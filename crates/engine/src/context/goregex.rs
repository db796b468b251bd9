//! Translation of the Go (RE2) regular expressions that moby/patternmatcher
//! builds from `.dockerignore` patterns into the `regex` crate's syntax.
//!
//! patternmatcher turns a pattern into a Go regexp by rewriting `*`, `?`,
//! `**` and a few metacharacters and passing everything else through,
//! character classes included. Go and Rust agree on most of that syntax but
//! not all: inside a class Rust reads `[` as a nested class and `&&`, `--`,
//! `~~` as set operations, and `\d`, `\s`, `\w`, `\b` are Unicode-aware in
//! Rust but ASCII in Go. So the Go regexp is parsed here as Go parses it and
//! re-emitted with every literal escaped for Rust, keeping Go's meaning.
//!
//! Supported escapes: escaped punctuation, `\a \f \n \r \t \v`, and the
//! Perl classes `\d \D \s \S \w \W`. Go also accepts `\x..`, octal, `\p{..}`,
//! `\A \z \b \B \Q..\E`; nobody writes those in a `.dockerignore`, and they
//! are refused here with a clear error instead of being guessed at.

/// The characters the `regex` crate treats as special somewhere; escaping
/// them is always allowed and always means the literal.
fn is_rust_meta(c: char) -> bool {
    matches!(
        c,
        '\\' | '.'
            | '+'
            | '*'
            | '?'
            | '('
            | ')'
            | '|'
            | '['
            | ']'
            | '{'
            | '}'
            | '^'
            | '$'
            | '#'
            | '&'
            | '-'
            | '~'
    )
}

fn push_literal(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c if c.is_control() => out.push_str(&format!("\\x{{{:X}}}", c as u32)),
        c => {
            if is_rust_meta(c) {
                out.push('\\');
            }
            out.push(c);
        }
    }
}

/// Go's Perl classes (ASCII only), as the contents of a Rust class.
fn perl_class(c: char) -> Option<(&'static str, bool)> {
    match c {
        'd' => Some(("0-9", false)),
        'D' => Some(("0-9", true)),
        's' => Some(("\\t\\n\\x0C\\r ", false)),
        'S' => Some(("\\t\\n\\x0C\\r ", true)),
        'w' => Some(("0-9A-Za-z_", false)),
        'W' => Some(("0-9A-Za-z_", true)),
        _ => None,
    }
}

/// A Go regexp (as patternmatcher builds it) this translator cannot take,
/// in Go's `regexp/syntax` words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum RegexError {
    /// A `\` ending the pattern.
    #[error("trailing backslash")]
    TrailingBackslash,
    /// `[` without its `]`.
    #[error("missing closing ] in character class")]
    UnclosedClass,
    /// `[:name:]` of a class Go does not know.
    #[error("invalid character class [:{0}:]")]
    ClassName(String),
    /// `[z-a]`.
    #[error("invalid character class range {0}-{1}")]
    ClassRange(char, char),
    /// `\q` for a `q` Go has no escape for.
    #[error("unsupported escape sequence \\{0}")]
    Escape(char),
}

/// The character a single-character escape stands for.
fn escaped_char(c: char) -> Result<char, RegexError> {
    match c {
        'a' => Ok('\x07'),
        'f' => Ok('\x0C'),
        'n' => Ok('\n'),
        'r' => Ok('\r'),
        't' => Ok('\t'),
        'v' => Ok('\x0B'),
        c if c.is_ascii() && !c.is_ascii_alphanumeric() => Ok(c),
        c => Err(RegexError::Escape(c)),
    }
}

/// The POSIX class names Go (and Rust) know.
const POSIX: [&str; 14] = [
    "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower", "print", "punct",
    "space", "upper", "word", "xdigit",
];

/// Translates a Go regexp (as patternmatcher builds them) to Rust syntax.
pub(crate) fn translate(go: &str) -> Result<String, RegexError> {
    let chars: Vec<char> = go.chars().collect();
    let mut out = String::with_capacity(go.len() + 8);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        match c {
            '\\' => {
                let Some(&e) = chars.get(i) else {
                    return Err(RegexError::TrailingBackslash);
                };
                i += 1;
                if let Some((set, negated)) = perl_class(e) {
                    out.push_str(if negated { "[^" } else { "[" });
                    out.push_str(set);
                    out.push(']');
                } else {
                    push_literal(&mut out, escaped_char(e)?);
                }
            }
            '[' => i = class(&chars, i, &mut out)?,
            ']' => out.push_str("\\]"),
            // Syntax patternmatcher generates (`^`, `$`, `(.*/)?`, `.*`,
            // `[^/]*`) or passes through unescaped (`^`): same in both.
            '^' | '$' | '(' | ')' | '.' | '*' | '?' | '|' | '+' | '{' | '}' => out.push(c),
            c => push_literal(&mut out, c),
        }
    }
    Ok(out)
}

/// Parses a Go character class starting after its `[`, appending the Rust
/// class; returns the index after its `]`.
fn class(chars: &[char], mut i: usize, out: &mut String) -> Result<usize, RegexError> {
    out.push('[');
    if chars.get(i) == Some(&'^') {
        out.push('^');
        i += 1;
    }
    let mut first = true;
    loop {
        let Some(&c) = chars.get(i) else {
            return Err(RegexError::UnclosedClass);
        };
        if c == ']' && !first {
            out.push(']');
            return Ok(i + 1);
        }
        first = false;
        // POSIX `[:name:]`: Go looks for the next `:]` anywhere after it.
        if c == '[' && chars.get(i + 1) == Some(&':') {
            let rest: String = chars[i + 2..].iter().collect();
            if let Some(end) = rest.find(":]") {
                let name = &rest[..end];
                let bare = name.strip_prefix('^').unwrap_or(name);
                if !POSIX.contains(&bare) {
                    return Err(RegexError::ClassName(name.to_owned()));
                }
                out.push_str("[:");
                out.push_str(name);
                out.push_str(":]");
                i += 2 + name.chars().count() + 2;
                continue;
            }
        }
        if c == '\\'
            && let Some((set, negated)) = chars.get(i + 1).copied().and_then(perl_class)
        {
            out.push_str(if negated { "[^" } else { "[" });
            out.push_str(set);
            out.push(']');
            i += 2;
            continue;
        }
        let (lo, next) = class_char(chars, i)?;
        i = next;
        push_literal(out, lo);
        if chars.get(i) == Some(&'-') && chars.get(i + 1).is_some_and(|&n| n != ']') {
            let (hi, next) = class_char(chars, i + 1)?;
            i = next;
            if hi < lo {
                return Err(RegexError::ClassRange(lo, hi));
            }
            out.push('-');
            push_literal(out, hi);
        }
    }
}

/// One class character (a literal or a single-character escape).
fn class_char(chars: &[char], i: usize) -> Result<(char, usize), RegexError> {
    match chars.get(i) {
        Some('\\') => match chars.get(i + 1) {
            Some(&e) => Ok((escaped_char(e)?, i + 2)),
            None => Err(RegexError::TrailingBackslash),
        },
        Some(&c) => Ok((c, i + 1)),
        None => Err(RegexError::UnclosedClass),
    }
}

#[cfg(test)]
mod tests {
    use super::translate;

    fn is_match(go: &str, s: &str) -> bool {
        let rust = translate(go).unwrap();
        regex::Regex::new(&rust).unwrap().is_match(s)
    }

    #[test]
    fn go_class_quirks_keep_go_meaning() {
        // `[` inside a class is a literal in Go, a nested class in Rust.
        assert!(is_match("^a[[]$", "a["));
        // `&&` and `~~` are set operations in Rust, literals in Go.
        assert!(is_match("^[a&&b]$", "&"));
        assert!(is_match("^[~~]$", "~"));
        // A leading `]` is a literal.
        assert!(is_match("^[]a]$", "]"));
        // `\d` is ASCII in Go.
        assert!(is_match("^\\d$", "7"));
        assert!(!is_match("^\\d$", "٣"));
        assert!(is_match("^[[:alpha:]]$", "q"));
        assert!(is_match("^a\\.b$", "a.b"));
        assert!(!is_match("^a\\.b$", "axb"));
        assert!(is_match("^a]$", "a]"));
    }

    #[test]
    fn errors() {
        assert!(translate("^[").is_err());
        assert!(translate("^[z-a]$").is_err());
        assert!(translate("^[[:nope:]]$").is_err());
        assert!(translate("\\x41").is_err());
        assert!(translate("a\\").is_err());
    }
}
