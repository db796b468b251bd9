//! moby/patternmatcher, the `.dockerignore` dialect used by `--exclude`
//! and by `--parents` include patterns: patterns are cleaned, `*` and `?`
//! stay within a component, `**` spans directories, `!` re-includes, and
//! a path matches when it or one of its parents matches. Patterns are
//! compiled to tokens that spell out patternmatcher's regular expressions.

use super::glob::{BadPattern, char_at, char_len, clean, get_esc, match_component};

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
    let suffix =
        (body.starts_with(b"**") && plain_after_leading_globstar).then(|| body[2..].to_vec());
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
        assert!(
            !m(&["/dir"], "dir"),
            "leading slash is kept, as BuildKit does"
        );
        assert!(Matcher::new(&["!".to_string()]).is_err());
        assert!(Matcher::new(&["[".to_string()]).is_err());
        assert!(matches!(Matcher::new(&[" ".to_string()]), Ok(None)));
    }

    #[test]
    fn ops_file_parent_results_agree_with_parent_scan() {
        let patterns: Vec<String> = ["a", "!a/b", "a/b/c*"]
            .iter()
            .map(|s| s.to_string())
            .collect();
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
}
