//! The two pattern languages COPY and ADD use, with BuildKit's rules:
//!
//! - [`fn@match_component`]: Go's `filepath.Match` for one path component
//!   (`*`, `?`, `[a-z]`, `[^a]`, `\x`), used to expand wildcard sources
//!   component by component (fsutil's `ResolveWildcards`).
//! - [`Matcher`]: moby/patternmatcher, the `.dockerignore` dialect used by
//!   `--exclude` and by `--parents` include patterns: patterns are cleaned,
//!   `**` spans directories, `!` re-includes, and a path matches when it or
//!   one of its parents matches.

use std::fmt;

/// A malformed pattern (Go's `filepath.ErrBadPattern`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadPattern;

impl fmt::Display for BadPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("syntax error in pattern")
    }
}

/// Whether `name` has an unescaped `*`, `?` or `[` (fsutil's `containsWildcards`).
pub(crate) fn has_wildcards(name: &[u8]) -> bool {
    let mut i = 0;
    while i < name.len() {
        match name[i] {
            b'\\' => i += 1,
            b'*' | b'?' | b'[' => return true,
            _ => {}
        }
        i += 1;
    }
    false
}

/// Go's `filepath.Match(pattern, name)` on Unix.
pub(crate) fn match_component(pattern: &[u8], name: &[u8]) -> Result<bool, BadPattern> {
    let mut pattern = pattern;
    let mut name = name;
    'outer: while !pattern.is_empty() {
        let (star, chunk, rest) = scan_chunk(pattern);
        pattern = rest;
        if star && chunk.is_empty() {
            return Ok(!name.contains(&b'/'));
        }
        let (t, ok, err) = match_chunk(chunk, name);
        if ok && (t.is_empty() || !pattern.is_empty()) {
            name = t;
            continue;
        }
        if err {
            return Err(BadPattern);
        }
        if star {
            let mut i = 0;
            while i < name.len() && name[i] != b'/' {
                let (t, ok, err) = match_chunk(chunk, &name[i + 1..]);
                if ok {
                    if pattern.is_empty() && !t.is_empty() {
                        i += 1;
                        continue;
                    }
                    name = t;
                    continue 'outer;
                }
                if err {
                    return Err(BadPattern);
                }
                i += 1;
            }
        }
        // The rest of the pattern must still be well formed.
        while !pattern.is_empty() {
            let (_, chunk, rest) = scan_chunk(pattern);
            pattern = rest;
            if match_chunk(chunk, b"").2 {
                return Err(BadPattern);
            }
        }
        return Ok(false);
    }
    Ok(name.is_empty())
}

/// Splits off the leading `*`s and the chunk up to the next unescaped `*`.
fn scan_chunk(mut pattern: &[u8]) -> (bool, &[u8], &[u8]) {
    let mut star = false;
    while pattern.first() == Some(&b'*') {
        pattern = &pattern[1..];
        star = true;
    }
    let mut in_range = false;
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            b'\\' => {
                if i + 1 < pattern.len() {
                    i += 1;
                }
            }
            b'[' => in_range = true,
            b']' => in_range = false,
            b'*' if !in_range => break,
            _ => {}
        }
        i += 1;
    }
    (star, &pattern[..i], &pattern[i..])
}

/// The length of the UTF-8 character at the start of `s` (1 for an invalid byte).
fn char_len(s: &[u8]) -> usize {
    let n = match s.first() {
        Some(b) if *b < 0x80 => 1,
        Some(b) if *b >= 0xf0 => 4,
        Some(b) if *b >= 0xe0 => 3,
        Some(b) if *b >= 0xc0 => 2,
        _ => 1,
    };
    if n <= s.len() && std::str::from_utf8(&s[..n]).is_ok() {
        n
    } else {
        1
    }
}

fn char_at(s: &[u8]) -> (u32, usize) {
    let n = char_len(s);
    match std::str::from_utf8(&s[..n]).ok().and_then(|c| c.chars().next()) {
        Some(c) => (c as u32, n),
        None => (u32::from(s[0]), 1),
    }
}

/// Matches `chunk` (no `*`) at the start of `s`: (rest, matched, bad pattern).
fn match_chunk<'a>(mut chunk: &[u8], mut s: &'a [u8]) -> (&'a [u8], bool, bool) {
    // After a mismatch Go keeps scanning the chunk only to report bad syntax.
    let mut failed = false;
    while !chunk.is_empty() {
        if !failed && s.is_empty() {
            failed = true;
        }
        match chunk[0] {
            b'[' => {
                let (r, n) = if failed { (0, 0) } else { char_at(s) };
                if !failed {
                    s = &s[n..];
                }
                chunk = &chunk[1..];
                let negated = chunk.first() == Some(&b'^');
                if negated {
                    chunk = &chunk[1..];
                }
                let mut matched = false;
                let mut nrange = 0;
                loop {
                    if !chunk.is_empty() && chunk[0] == b']' && nrange > 0 {
                        chunk = &chunk[1..];
                        break;
                    }
                    let Some((lo, rest)) = get_esc(chunk) else {
                        return (b"", false, true);
                    };
                    chunk = rest;
                    let mut hi = lo;
                    if chunk.first() == Some(&b'-') {
                        let Some((h, rest)) = get_esc(&chunk[1..]) else {
                            return (b"", false, true);
                        };
                        hi = h;
                        chunk = rest;
                    }
                    if lo <= r && r <= hi {
                        matched = true;
                    }
                    nrange += 1;
                }
                if matched == negated {
                    failed = true;
                }
            }
            b'?' => {
                if !failed {
                    if s[0] == b'/' {
                        failed = true;
                    }
                    let n = char_len(s);
                    s = &s[n..];
                }
                chunk = &chunk[1..];
            }
            b'\\' => {
                chunk = &chunk[1..];
                if chunk.is_empty() {
                    return (b"", false, true);
                }
                if !failed {
                    if chunk[0] != s[0] {
                        failed = true;
                    }
                    s = &s[1..];
                }
                chunk = &chunk[1..];
            }
            c => {
                if !failed {
                    if c != s[0] {
                        failed = true;
                    }
                    s = &s[1..];
                }
                chunk = &chunk[1..];
            }
        }
    }
    if failed { (b"", false, false) } else { (s, true, false) }
}

/// One possibly escaped character of a class; `None` when malformed.
fn get_esc(chunk: &[u8]) -> Option<(u32, &[u8])> {
    let mut chunk = chunk;
    if chunk.is_empty() || chunk[0] == b'-' || chunk[0] == b']' {
        return None;
    }
    if chunk[0] == b'\\' {
        chunk = &chunk[1..];
        if chunk.is_empty() {
            return None;
        }
    }
    let (r, n) = char_at(chunk);
    let rest = &chunk[n..];
    if rest.is_empty() {
        return None;
    }
    Some((r, rest))
}

/// One token of a patternmatcher pattern (its regular expression, spelt out).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Byte(u8),
    /// `?`: one character but `/`.
    One,
    /// `*`: any run without `/`.
    Star,
    /// `**` inside a pattern: `(.*/)?`.
    Dirs,
    /// `**` at the end: `.*`.
    Any,
    Class {
        negated: bool,
        ranges: Vec<(u32, u32)>,
    },
}

#[derive(Debug, Clone)]
struct Pattern {
    exclusion: bool,
    /// `**` followed by plain text only: patternmatcher compares suffixes.
    suffix: Option<Vec<u8>>,
    toks: Vec<Tok>,
}

/// moby/patternmatcher with `MatchesUsingParentResults`.
#[derive(Debug, Clone)]
pub(crate) struct Matcher {
    patterns: Vec<Pattern>,
    exclusions: bool,
}

/// Per-pattern results for a directory, handed to its children.
pub(crate) type ParentInfo = Vec<bool>;

impl Matcher {
    /// Compiles `patterns`; `None` when there is nothing to match.
    pub(crate) fn new(patterns: &[String]) -> Result<Option<Matcher>, (String, BadPattern)> {
        let mut out = Vec::new();
        let mut exclusions = false;
        for raw in patterns {
            let trimmed = raw.trim();
            if trimmed.is_empty() {
                continue;
            }
            let cleaned = clean(trimmed.as_bytes());
            let (exclusion, body) = match cleaned.strip_prefix(b"!") {
                Some(b"") => return Err((raw.clone(), BadPattern)),
                Some(body) => (true, body.to_vec()),
                None => (false, cleaned),
            };
            exclusions |= exclusion;
            match_component(&body, b".").map_err(|e| (raw.clone(), e))?;
            out.push(compile(exclusion, &body).map_err(|e| (raw.clone(), e))?);
        }
        Ok((!out.is_empty()).then_some(Matcher {
            patterns: out,
            exclusions,
        }))
    }

    /// Whether any pattern starts with `!`.
    pub(crate) fn has_exclusions(&self) -> bool {
        self.exclusions
    }

    /// Whether `path` (relative, `/`-separated) matches, given its parent's
    /// results (`None` at the top: parents are then checked one by one).
    pub(crate) fn matches(&self, path: &[u8], parent: Option<&ParentInfo>) -> (bool, ParentInfo) {
        let mut matched = false;
        let mut info = vec![false; self.patterns.len()];
        for (i, p) in self.patterns.iter().enumerate() {
            let mut hit = parent.is_some_and(|pi| pi.get(i).copied().unwrap_or(false));
            if !hit {
                if p.exclusion != matched {
                    continue;
                }
                hit = p.matches(path);
                if !hit && parent.is_none() {
                    let mut end = 0;
                    while let Some(pos) = path[end..].iter().position(|&b| b == b'/') {
                        end += pos;
                        if p.matches(&path[..end]) {
                            hit = true;
                            break;
                        }
                        end += 1;
                    }
                }
            }
            info[i] = hit;
            if hit {
                matched = !p.exclusion;
            }
        }
        (matched, info)
    }
}

/// Go's `filepath.Clean` on a relative or absolute path.
pub(crate) fn clean(path: &[u8]) -> Vec<u8> {
    let rooted = path.first() == Some(&b'/');
    let mut parts: Vec<&[u8]> = Vec::new();
    for comp in path.split(|&b| b == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                if parts.last().is_some_and(|p| *p != b"..") {
                    parts.pop();
                } else if !rooted {
                    parts.push(comp);
                }
            }
            _ => parts.push(comp),
        }
    }
    let mut out = Vec::with_capacity(path.len());
    if rooted {
        out.push(b'/');
    }
    out.extend_from_slice(&parts.join(&b'/'));
    if out.is_empty() {
        out.push(b'.');
    }
    out
}

fn compile(exclusion: bool, body: &[u8]) -> Result<Pattern, BadPattern> {
    let mut toks = Vec::new();
    let mut plain_after_leading_globstar = true;
    let mut i = 0;
    while i < body.len() {
        let c = body[i];
        match c {
            b'*' if body.get(i + 1) == Some(&b'*') => {
                i += 2;
                if body.get(i) == Some(&b'/') {
                    i += 1;
                }
                if i >= body.len() {
                    toks.push(Tok::Any);
                } else {
                    toks.push(Tok::Dirs);
                }
                if toks.len() > 1 {
                    plain_after_leading_globstar = false;
                }
                continue;
            }
            b'*' => {
                toks.push(Tok::Star);
                plain_after_leading_globstar = false;
            }
            b'?' => {
                toks.push(Tok::One);
                plain_after_leading_globstar = false;
            }
            b'\\' => {
                if i + 1 < body.len() {
                    i += 1;
                    toks.push(Tok::Byte(body[i]));
                    plain_after_leading_globstar = false;
                } else {
                    toks.push(Tok::Byte(b'\\'));
                }
            }
            b'[' => {
                let (tok, next) = class(body, i)?;
                toks.push(tok);
                plain_after_leading_globstar = false;
                i = next;
                continue;
            }
            _ => toks.push(Tok::Byte(c)),
        }
        i += 1;
    }
    let suffix = (body.starts_with(b"**") && plain_after_leading_globstar)
        .then(|| body[2..].to_vec());
    Ok(Pattern {
        exclusion,
        suffix,
        toks,
    })
}

/// A `[...]` class starting at `body[start]`; returns the token and the
/// index after `]`.
fn class(body: &[u8], start: usize) -> Result<(Tok, usize), BadPattern> {
    let mut rest = &body[start + 1..];
    let negated = rest.first() == Some(&b'^');
    if negated {
        rest = &rest[1..];
    }
    let mut ranges = Vec::new();
    loop {
        if rest.first() == Some(&b']') && !ranges.is_empty() {
            rest = &rest[1..];
            break;
        }
        let (lo, r) = get_esc(rest).ok_or(BadPattern)?;
        rest = r;
        let mut hi = lo;
        if rest.first() == Some(&b'-') {
            let (h, r) = get_esc(&rest[1..]).ok_or(BadPattern)?;
            hi = h;
            rest = r;
        }
        ranges.push((lo, hi));
    }
    Ok((Tok::Class { negated, ranges }, body.len() - rest.len()))
}

impl Pattern {
    fn matches(&self, path: &[u8]) -> bool {
        if let Some(suffix) = &self.suffix {
            return path.ends_with(suffix)
                || (suffix.first() == Some(&b'/') && path == &suffix[1..]);
        }
        let mut memo = vec![None; (self.toks.len() + 1) * (path.len() + 1)];
        run(&self.toks, path, 0, 0, &mut memo)
    }
}

/// Anchored match of `toks[t..]` against `path[p..]`, memoised.
fn run(toks: &[Tok], path: &[u8], t: usize, p: usize, memo: &mut Vec<Option<bool>>) -> bool {
    let slot = t * (path.len() + 1) + p;
    if let Some(done) = memo[slot] {
        return done;
    }
    let rest = &path[p..];
    let result = match toks.get(t) {
        None => rest.is_empty(),
        Some(Tok::Byte(b)) => rest.first() == Some(b) && run(toks, path, t + 1, p + 1, memo),
        Some(Tok::One) => {
            !rest.is_empty() && rest[0] != b'/' && run(toks, path, t + 1, p + char_len(rest), memo)
        }
        Some(Tok::Class { negated, ranges }) => {
            if rest.is_empty() {
                false
            } else {
                let (r, n) = char_at(rest);
                let inside = ranges.iter().any(|(lo, hi)| *lo <= r && r <= *hi);
                inside != *negated && run(toks, path, t + 1, p + n, memo)
            }
        }
        Some(Tok::Star) => {
            let mut q = p;
            loop {
                if run(toks, path, t + 1, q, memo) {
                    break true;
                }
                if q >= path.len() || path[q] == b'/' {
                    break false;
                }
                q += 1;
            }
        }
        Some(Tok::Any) => true,
        Some(Tok::Dirs) => {
            run(toks, path, t + 1, p, memo)
                || (p..path.len())
                    .filter(|&q| path[q] == b'/')
                    .any(|q| run(toks, path, t + 1, q + 1, memo))
        }
    };
    memo[slot] = Some(result);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_file_go_filepath_match_cases() {
        // From Go's path/filepath match_test.go.
        let cases: &[(&str, &str, Result<bool, BadPattern>)] = &[
            ("abc", "abc", Ok(true)),
            ("*", "abc", Ok(true)),
            ("*c", "abc", Ok(true)),
            ("a*", "a", Ok(true)),
            ("a*", "abc", Ok(true)),
            ("a*", "ab/c", Ok(false)),
            ("a*/b", "abc/b", Ok(true)),
            ("a*/b", "a/c/b", Ok(false)),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", Ok(true)),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", Ok(true)),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", Ok(false)),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", Ok(false)),
            ("a*b?c*x", "abxbbxdbxebxczzx", Ok(true)),
            ("a*b?c*x", "abxbbxdbxebxczzy", Ok(false)),
            ("ab[c]", "abc", Ok(true)),
            ("ab[b-d]", "abc", Ok(true)),
            ("ab[e-g]", "abc", Ok(false)),
            ("ab[^c]", "abc", Ok(false)),
            ("ab[^b-d]", "abc", Ok(false)),
            ("ab[^e-g]", "abc", Ok(true)),
            ("a\\*b", "a*b", Ok(true)),
            ("a\\*b", "ab", Ok(false)),
            ("a?b", "a☺b", Ok(true)),
            ("a[^a]b", "a☺b", Ok(true)),
            ("a???b", "a☺b", Ok(false)),
            ("a[^a][^a][^a]b", "a☺b", Ok(false)),
            ("[a-ζ]*", "α", Ok(true)),
            ("*[a-ζ]", "A", Ok(false)),
            ("a?b", "a/b", Ok(false)),
            ("a*b", "a/b", Ok(false)),
            ("[\\]a]", "]", Ok(true)),
            ("[\\-]", "-", Ok(true)),
            ("[x\\-]", "x", Ok(true)),
            ("[x\\-]", "-", Ok(true)),
            ("[x\\-]", "z", Ok(false)),
            ("[\\-x]", "x", Ok(true)),
            ("[\\-x]", "-", Ok(true)),
            ("[\\-x]", "a", Ok(false)),
            ("[]a]", "]", Err(BadPattern)),
            ("[-]", "-", Err(BadPattern)),
            ("[x-]", "x", Err(BadPattern)),
            ("[x-]", "-", Err(BadPattern)),
            ("[x-]", "z", Err(BadPattern)),
            ("[-x]", "x", Err(BadPattern)),
            ("[-x]", "-", Err(BadPattern)),
            ("[-x]", "a", Err(BadPattern)),
            ("\\", "a", Err(BadPattern)),
            ("[a-b-c]", "a", Err(BadPattern)),
            ("[", "a", Err(BadPattern)),
            ("[^", "a", Err(BadPattern)),
            ("[^bc", "a", Err(BadPattern)),
            ("a[", "a", Err(BadPattern)),
            ("a[", "ab", Err(BadPattern)),
            ("a[", "x", Err(BadPattern)),
            ("a/b[", "x", Err(BadPattern)),
            ("*x", "xxx", Ok(true)),
        ];
        for (pattern, name, want) in cases {
            assert_eq!(
                &match_component(pattern.as_bytes(), name.as_bytes()),
                want,
                "Match({pattern:?}, {name:?})"
            );
        }
    }

    fn m(patterns: &[&str], path: &str) -> bool {
        let patterns: Vec<String> = patterns.iter().map(|s| s.to_string()).collect();
        let Ok(Some(matcher)) = Matcher::new(&patterns) else {
            panic!("bad patterns {patterns:?}");
        };
        matcher.matches(path.as_bytes(), None).0
    }

    #[test]
    fn ops_file_patternmatcher_cases() {
        // From moby/patternmatcher's TestMatches and TestMatchesOrParentMatches.
        assert!(m(&["fileutils.go"], "fileutils.go"));
        assert!(!m(&["*.go"], "dir/fileutils.go"));
        assert!(m(&["**/*.go"], "dir/fileutils.go"));
        assert!(m(&["**"], "file"));
        assert!(m(&["**/"], "file"));
        assert!(m(&["**/file"], "file"));
        assert!(m(&["**/file"], "dir/file"));
        assert!(m(&["**file"], "dir/file"));
        assert!(m(&["**file"], "dir/xfile"), "suffix quirk");
        assert!(m(&["**/f*"], "dir/dir/file"));
        assert!(!m(&["**/f*"], "dir/dir/xfile"));
        assert!(m(&["dir/**"], "dir/file"));
        assert!(m(&["dir/**"], "dir/dir2/file"));
        assert!(m(&["dir/**/file"], "dir/file"));
        assert!(m(&["dir/**/file"], "dir/dir2/file"));
        assert!(!m(&["dir/**/file"], "dir/dir2/xfile"));
        assert!(m(&["abc.def"], "abc.def"));
        assert!(!m(&["abc.def"], "abcZdef"));
        assert!(m(&["abc?def"], "abcZdef"));
        assert!(m(&["a\\\\"], "a\\"));
        assert!(m(&["dir"], "dir/file"), "parent matches");
        assert!(m(&["dir/*"], "dir/a/b"), "parent matches");
        assert!(!m(&["*", "!dir"], "dir/file"));
        assert!(m(&["*", "!dir", "dir/file"], "dir/file"));
        assert!(m(&["./dir/"], "dir"), "patterns are cleaned");
        assert!(!m(&["/dir"], "dir"), "leading slash is kept, as BuildKit does");
        assert!(Matcher::new(&["!".to_string()]).is_err());
        assert!(Matcher::new(&["[".to_string()]).is_err());
        assert!(matches!(Matcher::new(&[" ".to_string()]), Ok(None)));
    }

    #[test]
    fn ops_file_parent_results_agree_with_parent_scan() {
        let patterns: Vec<String> = ["a", "!a/b", "a/b/c*"].iter().map(|s| s.to_string()).collect();
        let Ok(Some(matcher)) = Matcher::new(&patterns) else {
            panic!("bad patterns");
        };
        let (a, ia) = matcher.matches(b"a", None);
        let (ab, iab) = matcher.matches(b"a/b", Some(&ia));
        let (abc, _) = matcher.matches(b"a/b/cd", Some(&iab));
        let (abx, _) = matcher.matches(b"a/b/x", Some(&iab));
        assert_eq!((a, ab, abc, abx), (true, false, true, false));
        assert_eq!(matcher.matches(b"a/b/cd", None).0, abc);
        assert_eq!(matcher.matches(b"a/b/x", None).0, abx);
    }

    #[test]
    fn ops_file_clean_matches_go() {
        for (input, want) in [
            ("", "."),
            ("a/b/", "a/b"),
            ("./a//b/./c/..", "a/b"),
            ("/../a", "/a"),
            ("../a", "../a"),
            ("a/../..", ".."),
            ("/", "/"),
        ] {
            assert_eq!(clean(input.as_bytes()), want.as_bytes(), "{input:?}");
        }
    }

    #[test]
    fn ops_file_wildcard_detection_honours_escapes() {
        assert!(has_wildcards(b"a*"));
        assert!(has_wildcards(b"[ab]"));
        assert!(!has_wildcards(b"a\\*"));
        assert!(!has_wildcards(b"plain"));
    }
}
