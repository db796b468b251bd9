//! `&str` faces of Go's `path.Clean` and `path.Match` (one port, on bytes,
//! in [`crate::gomatch`]): Docker's `.dockerignore` patterns are cleaned
//! and syntax-checked with them, and BuildKit matches `COPY` wildcard
//! sources with `Match`. Plus `is_clean`, which the context alone needs.

/// A malformed `Match` pattern (Go's `ErrBadPattern`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BadPattern;

/// Go's `path.Clean`: the shortest lexically equivalent path. Repeated
/// slashes collapse, `.` elements go, `..` removes the element before it
/// (and is dropped at the root), a trailing slash goes; `""` becomes `"."`.
pub(crate) fn clean(path: &str) -> String {
    String::from_utf8_lossy(&crate::gomatch::clean(path.as_bytes())).into_owned()
}

/// Whether `s` is already what [`clean`] would return (the common case,
/// checked without allocating).
pub(crate) fn is_clean(s: &str) -> bool {
    if s.is_empty() {
        return false;
    }
    if s == "/" || s == "." {
        return true;
    }
    if s.ends_with('/') {
        return false;
    }
    let body = s.strip_prefix('/').unwrap_or(s);
    let rooted = body.len() != s.len();
    let mut seen_name = false;
    for part in body.split('/') {
        match part {
            "" | "." => return false,
            ".." if rooted || seen_name => return false,
            ".." => {}
            _ => seen_name = true,
        }
    }
    true
}

/// Go's `path.Match`: whether `name` matches the shell pattern. `*` and
/// `?` never match `/`; `[...]` classes, `\` escapes. A malformed pattern is
/// an error even when the match fails early (Go ≥ 1.16).
pub(crate) fn glob_match(pattern: &str, name: &str) -> Result<bool, BadPattern> {
    crate::gomatch::match_component(pattern.as_bytes(), name.as_bytes()).map_err(|_| BadPattern)
}

/// Go's `filepath.Match(pattern, ".")` used only for its error: whether
/// the pattern is well formed.
pub(crate) fn validate(pattern: &str) -> Result<(), BadPattern> {
    glob_match(pattern, ".").map(|_| ())
}

/// Whether a source path holds wildcard characters (BuildKit's
/// `containsWildcards`: `*`, `?`, `[`, with `\` escaping the next byte).
pub(crate) fn has_wildcards(s: &str) -> bool {
    crate::gomatch::has_wildcards(s.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_matches_go() {
        // Go's path.Clean test table.
        let cases = [
            ("", "."),
            ("abc", "abc"),
            ("abc/def", "abc/def"),
            ("a/b/c", "a/b/c"),
            (".", "."),
            ("..", ".."),
            ("../..", "../.."),
            ("../../abc", "../../abc"),
            ("/abc", "/abc"),
            ("/", "/"),
            ("abc/", "abc"),
            ("abc/def/", "abc/def"),
            ("/abc/", "/abc"),
            ("abc//def//ghi", "abc/def/ghi"),
            ("//abc", "/abc"),
            ("///abc", "/abc"),
            ("//abc//", "/abc"),
            ("abc//", "abc"),
            ("abc/./def", "abc/def"),
            ("/./abc/def", "/abc/def"),
            ("abc/.", "abc"),
            ("abc/def/ghi/../jkl", "abc/def/jkl"),
            ("abc/def/../ghi/../jkl", "abc/jkl"),
            ("abc/def/..", "abc"),
            ("abc/def/../..", "."),
            ("/abc/def/../..", "/"),
            ("abc/def/../../..", ".."),
            ("/abc/def/../../..", "/"),
            ("abc/def/../../../ghi/jkl/../../../mno", "../../mno"),
            ("abc/./../def", "def"),
            ("abc//./../def", "def"),
            ("abc/../../././../def", "../../def"),
        ];
        for (input, want) in cases {
            assert_eq!(clean(input), want, "clean({input:?})");
            assert_eq!(is_clean(input), input == want, "is_clean({input:?})");
        }
    }

    #[test]
    fn match_matches_go() {
        // Go's path.Match test table (ErrBadPattern as None).
        let cases: &[(&str, &str, Option<bool>)] = &[
            ("abc", "abc", Some(true)),
            ("*", "abc", Some(true)),
            ("*c", "abc", Some(true)),
            ("a*", "a", Some(true)),
            ("a*", "abc", Some(true)),
            ("a*", "ab/c", Some(false)),
            ("a*/b", "abc/b", Some(true)),
            ("a*/b", "a/c/b", Some(false)),
            ("a*b*c*d*e*/f", "axbxcxdxe/f", Some(true)),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/f", Some(true)),
            ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", Some(false)),
            ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", Some(false)),
            ("a*b?c*x", "abxbbxdbxebxczzx", Some(true)),
            ("a*b?c*x", "abxbbxdbxebxczzy", Some(false)),
            ("ab[c]", "abc", Some(true)),
            ("ab[b-d]", "abc", Some(true)),
            ("ab[e-g]", "abc", Some(false)),
            ("ab[^c]", "abc", Some(false)),
            ("ab[^b-d]", "abc", Some(false)),
            ("ab[^e-g]", "abc", Some(true)),
            ("a\\*b", "a*b", Some(true)),
            ("a\\*b", "ab", Some(false)),
            ("a?b", "a☺b", Some(true)),
            ("a[^a]b", "a☺b", Some(true)),
            ("a???b", "a☺b", Some(false)),
            ("a[^a][^a][^a]b", "a☺b", Some(false)),
            ("[a-ζ]*", "α", Some(true)),
            ("*[a-ζ]", "A", Some(false)),
            ("a?b", "a/b", Some(false)),
            ("a*b", "a/b", Some(false)),
            ("[\\]a]", "]", Some(true)),
            ("[\\-]", "-", Some(true)),
            ("[x\\-]", "x", Some(true)),
            ("[x\\-]", "-", Some(true)),
            ("[x\\-]", "z", Some(false)),
            ("[\\-x]", "x", Some(true)),
            ("[\\-x]", "-", Some(true)),
            ("[\\-x]", "a", Some(false)),
            ("[]a]", "]", None),
            ("[-]", "-", None),
            ("[x-]", "x", None),
            ("[x-]", "-", None),
            ("[x-]", "z", None),
            ("[-x]", "x", None),
            ("[-x]", "-", None),
            ("[-x]", "a", None),
            ("\\", "a", None),
            ("[a-b-c]", "a", None),
            ("[", "a", None),
            ("[^", "a", None),
            ("[^bc", "a", None),
            ("a[", "a", None),
            ("a[", "ab", None),
            ("a[", "x", None),
            ("a/b[", "x", None),
            ("*x", "xxx", Some(true)),
        ];
        for &(pattern, name, want) in cases {
            assert_eq!(
                glob_match(pattern, name).ok(),
                want,
                "Match({pattern:?}, {name:?})"
            );
        }
    }

    #[test]
    fn wildcard_detection() {
        assert!(has_wildcards("a/*.txt"));
        assert!(has_wildcards("f?o"));
        assert!(has_wildcards("[ab]"));
        assert!(!has_wildcards("plain/path"));
        assert!(!has_wildcards("a\\*b"));
    }
}
