//! Parser directives (`# syntax=`, `# escape=`, `# check=`).
//!
//! BuildKit's rules: directives are comment lines at the very top of the
//! file, of the form `# key=value` (spaces allowed around `#`, the key and
//! `=`; the key is case-insensitive). Scanning stops for good at the first
//! line that is not such a directive with a known key: an instruction, an
//! empty line, an ordinary comment or `# unknown=value`. A directive seen
//! twice is an error; so is an `escape` other than `` ` `` or `\`.

/// The directive keys BuildKit knows.
pub const KNOWN: [&str; 3] = ["syntax", "escape", "check"];

/// One `# key=value` line at the top of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    /// Lower-cased key (`syntax`, `escape`, `check`).
    pub name: String,
    /// The value, surrounding white space removed.
    pub value: String,
}

/// Scans the leading lines of a Dockerfile for directives, one line at a time.
#[derive(Debug, Default)]
pub struct DirectiveParser {
    done: bool,
    seen: Vec<String>,
}

impl DirectiveParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// True once scanning has stopped: no later line can be a directive.
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Looks at one line (its line ending removed). Returns the directive it
    /// holds, `None` when it holds none (which ends scanning), or an error
    /// message for a repeated directive.
    pub fn parse_line(&mut self, line: &str) -> Result<Option<Directive>, DirectiveError> {
        if self.done {
            return Ok(None);
        }
        let Some(rest) = line.strip_prefix('#') else {
            self.done = true;
            return Ok(None);
        };
        let Some((key, value)) = split_directive(rest.trim_start()) else {
            self.done = true;
            return Ok(None);
        };
        let name = key.to_ascii_lowercase();
        if !KNOWN.contains(&name.as_str()) {
            self.done = true;
            return Ok(None);
        }
        if self.seen.contains(&name) {
            return Err(DirectiveError::Repeated(name));
        }
        self.seen.push(name.clone());
        Ok(Some(Directive {
            name,
            value: value.to_string(),
        }))
    }
}

/// Matches `^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$` and returns the key and
/// the (trimmed, non-empty) value.
fn split_directive(s: &str) -> Option<(&str, &str)> {
    let mut chars = s.char_indices();
    match chars.next() {
        Some((_, c)) if c.is_ascii_alphabetic() => {}
        _ => return None,
    }
    let key_end = s
        .char_indices()
        .find(|&(_, c)| !c.is_ascii_alphanumeric())
        .map_or(s.len(), |(i, _)| i);
    let key = &s[..key_end];
    let after = s[key_end..]
        .trim_start_matches(is_re_space)
        .strip_prefix('=')?;
    let value = after.trim_matches(is_re_space);
    if value.is_empty() {
        return None;
    }
    Some((key, value))
}

/// RE2's `\s`: ASCII white space without `\v`.
fn is_re_space(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\x0c' | '\r' | ' ')
}

/// The escape character a `# escape=` value selects, or BuildKit's error.
pub fn escape_token(value: &str) -> Result<char, DirectiveError> {
    match value {
        "`" => Ok('`'),
        "\\" => Ok('\\'),
        _ => Err(DirectiveError::EscapeToken(value.to_owned())),
    }
}

/// A parser directive BuildKit refuses, in its words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectiveError {
    /// The same directive twice.
    #[error("only one {0} parser directive can be used")]
    Repeated(String),
    /// `# escape=` of neither `` ` `` nor `\`.
    #[error("invalid escape token '{0}' does not match ` or \\")]
    EscapeToken(String),
}

/// Whether a `# syntax=` value names the official Dockerfile front end
/// (`docker/dockerfile`, `docker/dockerfile:1.7`, `docker.io/docker/dockerfile-upstream:master`,
/// with or without a digest), whose syntax hoist's built-in parser follows.
pub fn is_builtin_syntax(value: &str) -> bool {
    // Like BuildKit, only the first space-separated word names the image.
    let image = value.split(' ').next().unwrap_or_default();
    let image = image.split('@').next().unwrap_or_default();
    let name = match image.rfind(':') {
        Some(i) if !image[i..].contains('/') => &image[..i],
        _ => image,
    };
    let name = name
        .strip_prefix("docker.io/")
        .or_else(|| name.strip_prefix("index.docker.io/"))
        .unwrap_or(name);
    matches!(name, "docker/dockerfile" | "docker/dockerfile-upstream")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(name: &str, value: &str) -> Option<Directive> {
        Some(Directive {
            name: name.into(),
            value: value.into(),
        })
    }

    #[test]
    fn recognises_directives_case_insensitively() {
        let mut p = DirectiveParser::new();
        assert_eq!(
            p.parse_line("# Syntax = docker/dockerfile:1 "),
            Ok(d("syntax", "docker/dockerfile:1"))
        );
        assert_eq!(p.parse_line("#ESCAPE=`"), Ok(d("escape", "`")));
        assert_eq!(
            p.parse_line("#  check=skip=all"),
            Ok(d("check", "skip=all"))
        );
        assert_eq!(p.parse_line("FROM x"), Ok(None));
        assert!(p.is_done());
    }

    #[test]
    fn stops_at_first_non_directive() {
        let mut p = DirectiveParser::new();
        assert_eq!(p.parse_line("# a comment"), Ok(None));
        assert_eq!(p.parse_line("# escape=`"), Ok(None));

        let mut p = DirectiveParser::new();
        assert_eq!(p.parse_line("# unknown=1"), Ok(None));
        assert_eq!(p.parse_line("# syntax=x"), Ok(None));

        let mut p = DirectiveParser::new();
        assert_eq!(p.parse_line(""), Ok(None));
        assert_eq!(p.parse_line("# syntax=x"), Ok(None));

        let mut p = DirectiveParser::new();
        assert_eq!(p.parse_line("# escape="), Ok(None));
        assert!(p.is_done());
    }

    #[test]
    fn duplicates_are_errors() {
        let mut p = DirectiveParser::new();
        assert!(p.parse_line("# escape=\\").is_ok());
        assert_eq!(
            p.parse_line("# ESCAPE=`").map_err(|e| e.to_string()),
            Err("only one escape parser directive can be used".to_string())
        );
    }

    #[test]
    fn escape_tokens() {
        assert_eq!(escape_token("`"), Ok('`'));
        assert_eq!(escape_token("\\"), Ok('\\'));
        assert!(escape_token("x").is_err());
        assert!(escape_token("``").is_err());
    }

    #[test]
    fn builtin_syntax() {
        for ok in [
            "docker/dockerfile",
            "docker/dockerfile:1",
            "docker/dockerfile:1.7-labs",
            "docker.io/docker/dockerfile:1@sha256:abc",
            "docker/dockerfile-upstream:master",
            "docker/dockerfile:1 extra args",
        ] {
            assert!(is_builtin_syntax(ok), "{ok}");
        }
        for bad in [
            "example.com/my/frontend:1",
            "docker/dockerfilex",
            "tonistiigi/dockerfile",
            "",
        ] {
            assert!(!is_builtin_syntax(bad), "{bad}");
        }
    }
}
