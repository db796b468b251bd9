//! Shell patterns for `${V#p}`, `${V%p}` and `${V/p/r}`.
//!
//! BuildKit turns such a pattern into a Go regular expression: `*` becomes
//! `.*` (or the lazy `.*?` for the shortest forms), `?` becomes `.`, and every
//! other character is literal — bracket expressions included, `[a]` matches
//! the three characters `[`, `a`, `]`. A backslash makes the next `*`, `?` or
//! `\` literal and is dropped before `}` and `/` (which had to be escaped to
//! get into the pattern at all); before anything else it is an error. Go's `.`
//! does not match a newline, so neither `*` nor `?` does here.
//!
//! Instead of building a regular expression, this module matches the token
//! list with a small NFA simulation that tracks, for every pattern position,
//! the leftmost start of a thread that reached it. That gives the leftmost
//! match and then its longest or shortest end, which is what Go's
//! leftmost-first engine returns for these patterns (all stars greedy, or all
//! lazy, and no alternation), in time linear in the text for a fixed pattern.

use crate::limits::{MAX_PATTERN_STEPS, MAX_WORD_BYTES, human};

/// Why a pattern operation (`${V#p}`, `${V%p}`, `${V/p/r}`) failed; the
/// words are BuildKit's where it has them.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PatternError {
    /// The pattern has an escape BuildKit cannot compile.
    #[error("invalid pattern ({pattern}) in substitution: {reason}")]
    Invalid {
        /// The pattern as written.
        pattern: String,
        /// What is wrong with it.
        reason: EscapeError,
    },
    /// Matching would take more than [`MAX_PATTERN_STEPS`] steps.
    #[error(
        "pattern matching needs more than {} steps (value length × pattern length)",
        MAX_PATTERN_STEPS
    )]
    TooManySteps,
    /// The result grew past the longest word.
    #[error(transparent)]
    TooLong(#[from] TooLong),
}

/// An expanded word longer than `0` bytes (the limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("expanded word is longer than {} (the limit)", human(self.0))]
pub(crate) struct TooLong(pub(crate) usize);

/// A `\` in a pattern that escapes nothing it may.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum EscapeError {
    /// `\x` for an `x` that needs no escape.
    #[error("invalid escape '\\{0}'")]
    Invalid(char),
    /// A `\` ending the pattern.
    #[error("invalid escape '\\' at end of pattern")]
    AtEnd,
}

/// What the patterns of one word may still cost: matching steps left
/// ([`MAX_PATTERN_STEPS`] to start with) and the longest result
/// ([`MAX_WORD_BYTES`]).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Budget {
    steps: u64,
    max_len: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            steps: MAX_PATTERN_STEPS,
            max_len: MAX_WORD_BYTES,
        }
    }
}

impl Budget {
    /// Spends `n` steps, or fails when there are not that many left.
    fn spend(&mut self, n: usize) -> Result<(), PatternError> {
        let n = u64::try_from(n).unwrap_or(u64::MAX);
        match self.steps.checked_sub(n) {
            Some(left) => {
                self.steps = left;
                Ok(())
            }
            None => Err(PatternError::TooManySteps),
        }
    }

    /// Fails when `out` has grown past the longest word.
    fn check_len(&self, out: &str) -> Result<(), TooLong> {
        if out.len() > self.max_len {
            return Err(TooLong(self.max_len));
        }
        Ok(())
    }
}

/// One element of a parsed pattern.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token {
    /// Exactly this character.
    Literal(char),
    /// `?`: any one character but a newline.
    AnyChar,
    /// `*`: any run of characters without a newline, possibly empty.
    AnyString,
}

/// A parsed shell pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pattern {
    tokens: Vec<Token>,
}

impl Pattern {
    /// Parses `pattern`, with BuildKit's rules for `\`.
    pub(crate) fn parse(pattern: &str) -> Result<Self, EscapeError> {
        let mut tokens = Vec::new();
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            let token = match c {
                '*' => Token::AnyString,
                '?' => Token::AnyChar,
                '\\' => match chars.peek() {
                    // The escape only got `}` or `/` past the `${...}` reader.
                    Some('}' | '/') => continue,
                    Some(&next @ ('*' | '?' | '\\')) => {
                        chars.next();
                        Token::Literal(next)
                    }
                    Some(&other) => return Err(EscapeError::Invalid(other)),
                    None => return Err(EscapeError::AtEnd),
                },
                other => Token::Literal(other),
            };
            tokens.push(token);
        }
        Ok(Self { tokens })
    }

    /// The leftmost match of the pattern in `text` starting at or after byte
    /// `from` (which must be a char boundary), or only at `from` when
    /// `anchored`. Among matches with that start, the longest or the shortest.
    /// Returns byte offsets `(start, end)`.
    fn find(
        &self,
        text: &str,
        from: usize,
        anchored: bool,
        longest: bool,
        budget: &mut Budget,
    ) -> Result<Option<(usize, usize)>, PatternError> {
        let m = self.tokens.len();
        // threads[i]: leftmost start of a thread that has matched tokens[..i].
        let mut threads: Vec<Option<usize>> = vec![None; m + 1];
        let mut stepped: Vec<Option<usize>> = vec![None; m + 1];
        let mut best: Option<(usize, usize)> = None;
        let mut pos = from;
        loop {
            if best.is_none() && (!anchored || pos == from) {
                keep_leftmost(&mut threads[0], pos);
            }
            self.close(&mut threads);
            if let Some(start) = threads[m] {
                let better = match best {
                    None => true,
                    Some((best_start, _)) => start < best_start || (start == best_start && longest),
                };
                if better {
                    best = Some((start, pos));
                }
            }
            if let Some((best_start, _)) = best {
                // Threads that started later can never win; for the shortest
                // match, neither can longer runs from the same start.
                for thread in &mut threads {
                    if thread.is_some_and(|s| s > best_start || (s == best_start && !longest)) {
                        *thread = None;
                    }
                }
            }
            let idle = threads.iter().all(Option::is_none);
            if idle && (anchored || best.is_some()) {
                break;
            }
            let Some(c) = text.get(pos..).and_then(|rest| rest.chars().next()) else {
                break;
            };
            budget.spend(m + 1)?;
            stepped.fill(None);
            for (i, token) in self.tokens.iter().enumerate() {
                let Some(start) = threads[i] else { continue };
                match *token {
                    Token::Literal(l) if l == c => keep_leftmost(&mut stepped[i + 1], start),
                    Token::AnyChar if c != '\n' => keep_leftmost(&mut stepped[i + 1], start),
                    Token::AnyString if c != '\n' => keep_leftmost(&mut stepped[i], start),
                    _ => {}
                }
            }
            std::mem::swap(&mut threads, &mut stepped);
            pos += c.len_utf8();
        }
        Ok(best)
    }

    /// Lets every thread sitting before a `*` also skip it (empty run).
    fn close(&self, threads: &mut [Option<usize>]) {
        for (i, token) in self.tokens.iter().enumerate() {
            if *token == Token::AnyString
                && let Some(start) = threads[i]
            {
                keep_leftmost(&mut threads[i + 1], start);
            }
        }
    }
}

/// Records `start` in `slot` unless an earlier start is already there.
fn keep_leftmost(slot: &mut Option<usize>, start: usize) {
    if slot.is_none_or(|s| start < s) {
        *slot = Some(start);
    }
}

/// `${V#p}` (`longest` false) and `${V##p}` (`longest` true): `value` without
/// its shortest or longest prefix matching `pattern`.
pub(crate) fn trim_prefix(
    value: &str,
    pattern: &str,
    longest: bool,
    budget: &mut Budget,
) -> Result<String, PatternError> {
    let parsed = Pattern::parse(pattern).map_err(|e| invalid(pattern, e))?;
    Ok(match parsed.find(value, 0, true, longest, budget)? {
        Some((_, end)) => value[end..].to_owned(),
        None => value.to_owned(),
    })
}

/// `${V%p}` and `${V%%p}`: `value` without its shortest or longest suffix
/// matching `pattern`.
///
/// Like BuildKit, this reverses the pattern (keeping each `\x` pair in order)
/// and the value, and trims a prefix of the reversed value. That is the plain
/// suffix match, except for a pattern ending in a lone `\`, which BuildKit's
/// reversal moves to the front.
pub(crate) fn trim_suffix(
    value: &str,
    pattern: &str,
    longest: bool,
    budget: &mut Budget,
) -> Result<String, PatternError> {
    let reversed_pattern = reverse_pattern(pattern);
    let parsed = Pattern::parse(&reversed_pattern).map_err(|e| invalid(pattern, e))?;
    let reversed_value: String = value.chars().rev().collect();
    Ok(
        match parsed.find(&reversed_value, 0, true, longest, budget)? {
            // The reversed value has the same characters, so `end` bytes of it
            // are the last `end` bytes of `value`.
            Some((_, end)) => value[..value.len() - end].to_owned(),
            None => value.to_owned(),
        },
    )
}

/// Reverses a pattern's characters, keeping each `\x` pair as `\x`.
fn reverse_pattern(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut units: Vec<&[char]> = Vec::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        let len = if chars[i] == '\\' && i + 1 < chars.len() {
            2
        } else {
            1
        };
        units.push(&chars[i..i + len]);
        i += len;
    }
    units.iter().rev().flat_map(|unit| unit.iter()).collect()
}

/// `${V/p/r}` (`all` false) and `${V//p/r}` (`all` true).
///
/// The first form splices `replacement` in literally, in place of the leftmost
/// longest match. The second follows Go's `Regexp.ReplaceAllString`: matches
/// do not overlap, an empty match right after a match is not replaced, and
/// `replacement` is a Go template (`$0` or `${0}` is the match, `$$` a dollar,
/// any other `$name` nothing).
pub(crate) fn replace(
    value: &str,
    pattern: &str,
    replacement: &str,
    all: bool,
    budget: &mut Budget,
) -> Result<String, PatternError> {
    let parsed = Pattern::parse(pattern).map_err(|e| invalid(pattern, e))?;
    if !all {
        let out = match parsed.find(value, 0, false, true, budget)? {
            Some((start, end)) => format!("{}{replacement}{}", &value[..start], &value[end..]),
            None => value.to_owned(),
        };
        budget.check_len(&out)?;
        return Ok(out);
    }
    let mut out = String::with_capacity(value.len());
    let mut last_end = 0;
    let mut search = 0;
    while search <= value.len() {
        let Some((start, end)) = parsed.find(value, search, false, true, budget)? else {
            break;
        };
        out.push_str(&value[last_end..start]);
        if end > last_end || start == 0 {
            expand_template(&mut out, replacement, &value[start..end]);
        }
        budget.check_len(&out)?;
        last_end = end;
        // Move on by at least one character.
        let width = value[search..].chars().next().map_or(0, char::len_utf8);
        if search + width > end {
            search += width;
        } else if search + 1 > end {
            search += 1;
        } else {
            search = end;
        }
    }
    out.push_str(&value[last_end..]);
    budget.check_len(&out)?;
    Ok(out)
}

/// Appends Go's `Regexp.Expand` of `template` for a pattern without groups.
fn expand_template(out: &mut String, template: &str, matched: &str) {
    let mut rest = template;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
            continue;
        }
        match template_name(after) {
            Some((name, tail)) => {
                // Group 0 is the whole match; there are no other groups.
                if name == "0" {
                    out.push_str(matched);
                }
                rest = tail;
            }
            None => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
}

/// Go's template name after a `$`: `name` or `{name}`, where a name is a
/// non-empty run of letters, digits and `_`. Returns the name and the rest.
fn template_name(s: &str) -> Option<(&str, &str)> {
    let (braced, body) = match s.strip_prefix('{') {
        Some(body) => (true, body),
        None => (false, s),
    };
    let end = body
        .char_indices()
        .find(|&(_, c)| !(super::unicode::is_letter(c) || super::unicode::is_digit(c) || c == '_'))
        .map_or(body.len(), |(i, _)| i);
    if end == 0 {
        return None;
    }
    let name = &body[..end];
    let tail = if braced {
        body[end..].strip_prefix('}')?
    } else {
        &body[end..]
    };
    Some((name, tail))
}

/// BuildKit's error for a pattern it cannot compile.
fn invalid(pattern: &str, reason: EscapeError) -> PatternError {
    PatternError::Invalid {
        pattern: pattern.to_owned(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trim_prefix(value: &str, pattern: &str, longest: bool) -> Result<String, PatternError> {
        super::trim_prefix(value, pattern, longest, &mut Budget::default())
    }

    fn trim_suffix(value: &str, pattern: &str, longest: bool) -> Result<String, PatternError> {
        super::trim_suffix(value, pattern, longest, &mut Budget::default())
    }

    fn replace(
        value: &str,
        pattern: &str,
        replacement: &str,
        all: bool,
    ) -> Result<String, PatternError> {
        super::replace(value, pattern, replacement, all, &mut Budget::default())
    }

    #[test]
    fn matching_cost_is_bounded() {
        // 8 Ki characters against a 4 Ki-element pattern: 2^25 steps.
        let value = "a".repeat(1 << 13);
        let pattern = "*a".repeat(1 << 11);
        let err = trim_prefix(&value, &pattern, true).unwrap_err().to_string();
        assert!(err.contains("pattern matching needs more than"), "{err}");
        // The same pattern on a short value is fine.
        assert_eq!(trim_prefix("aaa", &pattern, true).unwrap(), "aaa");
    }

    #[test]
    fn replacement_output_is_bounded() {
        let value = "a".repeat(1 << 10);
        let replacement = "b".repeat(2 << 10);
        let err = replace(&value, "a", &replacement, true)
            .unwrap_err()
            .to_string();
        assert_eq!(err, "expanded word is longer than 1 MiB (the limit)");
        assert_eq!(replace(&value[..4], "a", "bb", true).unwrap(), "bbbbbbbb");
    }

    fn find(p: &str, text: &str, anchored: bool, longest: bool) -> Option<(usize, usize)> {
        Pattern::parse(p)
            .ok()?
            .find(text, 0, anchored, longest, &mut Budget::default())
            .unwrap()
    }

    #[test]
    fn parse_escapes() {
        assert!(Pattern::parse("\\*\\?\\\\").is_ok());
        assert!(Pattern::parse("a\\}b\\/").is_ok());
        assert_eq!(
            Pattern::parse("\\x").unwrap_err().to_string(),
            "invalid escape '\\x'"
        );
        assert!(Pattern::parse("\\").is_err());
        assert!(Pattern::parse("\\\\\\").is_err());
    }

    #[test]
    fn leftmost_longest_and_shortest() {
        assert_eq!(find("a*b", "xxaxbxb", false, true), Some((2, 7)));
        assert_eq!(find("a*b", "xxaxbxb", false, false), Some((2, 5)));
        assert_eq!(find("*", "abc", true, true), Some((0, 3)));
        assert_eq!(find("*", "abc", true, false), Some((0, 0)));
        assert_eq!(find("b", "abc", true, true), None);
        assert_eq!(find("?", "\n", false, true), None);
        assert_eq!(find("*", "a\nb", true, true), Some((0, 1)));
        assert_eq!(find("[a]", "x[a]", false, true), Some((1, 4)));
        assert_eq!(find("?", "한국", true, true), Some((0, 3)));
    }

    #[test]
    fn trims() {
        assert_eq!(trim_prefix("xxyy", "*x", false).unwrap(), "xyy");
        assert_eq!(trim_prefix("xxyy", "*x", true).unwrap(), "yy");
        assert_eq!(trim_suffix("xxyy", "y*", false).unwrap(), "xxy");
        assert_eq!(trim_suffix("xxyy", "y*", true).unwrap(), "xx");
        assert_eq!(trim_suffix("a***yy*", "\\**\\*", true).unwrap(), "a");
        assert_eq!(trim_suffix("한국어", "?", false).unwrap(), "한국");
        assert!(
            trim_prefix("x", "\\q", false)
                .unwrap_err()
                .to_string()
                .contains("invalid pattern (\\q)")
        );
    }

    #[test]
    fn reversal_keeps_escape_pairs() {
        assert_eq!(reverse_pattern("a\\*c"), "c\\*a");
        assert_eq!(reverse_pattern("\\\\\\ab"), "b\\a\\\\");
        assert_eq!(reverse_pattern("ab\\"), "\\ba");
        assert_eq!(reverse_pattern("👽\\🚀🖖"), "🖖\\🚀👽");
    }

    #[test]
    fn replacements() {
        assert_eq!(
            replace("/foo*/*/*.txt", "\\*/", ".", false).unwrap(),
            "/foo.*/*.txt"
        );
        assert_eq!(
            replace("/foo*/*/*.txt", "\\*/", ".", true).unwrap(),
            "/foo..*.txt"
        );
        assert_eq!(replace("abc", "", "x", false).unwrap(), "xabc");
        assert_eq!(replace("abc", "", "x", true).unwrap(), "xaxbxcx");
        assert_eq!(replace("abc", "*", "x", true).unwrap(), "x");
        assert_eq!(replace("a\nb", "*", "x", true).unwrap(), "x\nx");
        assert_eq!(
            replace("abab", "b", "<$0$$${0}$1$x$.>", true).unwrap(),
            "a<b$b$.>a<b$b$.>"
        );
        assert_eq!(replace("abab", "b", "$0", false).unwrap(), "a$0ab");
        assert_eq!(replace("한a국a", "a", "-", true).unwrap(), "한-국-");
    }
}
