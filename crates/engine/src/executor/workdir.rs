//! What a stage's `WORKDIR` steps already know about its directories, so
//! a `WORKDIR` need not look at the parent's files (an index stack over
//! every layer, rebuilt per step: nested relative `WORKDIR`s made that
//! cost grow with the fourth power of their number).
//!
//! Knowledge holds while the state's cache key is the one the last
//! `WORKDIR` left: any step that changes the filesystem (`RUN`, `COPY`,
//! `ADD`) or `USER` changes the key and the memo starts over. A directory
//! is *present* when a `WORKDIR` made sure of it or of a directory under
//! it; *made* when a `WORKDIR` layer created it, empty, in this run, so
//! its only children are ones a later `WORKDIR` made.

use std::collections::HashSet;

#[derive(Debug, Clone, Default)]
pub struct WorkdirMemo {
    /// The state's cache key the knowledge is about.
    key: String,
    present: HashSet<String>,
    made: HashSet<String>,
}

impl WorkdirMemo {
    /// The directories of `wd` (absolute, clean) missing from the state
    /// with cache key `key`, shallowest first; `None` when that is not
    /// known without looking at the files.
    pub fn missing(&self, key: &str, wd: &str) -> Option<Vec<String>> {
        if self.key != key {
            return None;
        }
        let mut missing: Vec<String> = Vec::new();
        let mut parent_made = false;
        for dir in prefixes(wd) {
            if self.present.contains(dir) {
                parent_made = self.made.contains(dir);
                continue;
            }
            if !parent_made {
                return None;
            }
            // Under a directory created empty (or itself missing), absent.
            missing.push(dir.to_string());
        }
        Some(missing)
    }

    /// After a `WORKDIR` step from a state with key `before` to one with
    /// key `after`: `wd` and its parents are present, `made` were created.
    pub fn record(&mut self, before: &str, after: String, wd: &str, made: &[String]) {
        if self.key != before {
            self.present.clear();
            self.made.clear();
        }
        self.present.extend(prefixes(wd).map(str::to_string));
        self.made.extend(made.iter().cloned());
        self.key = after;
    }
}

/// `/a/b/c` → `/a`, `/a/b`, `/a/b/c` (nothing for `/`).
fn prefixes(wd: &str) -> impl Iterator<Item = &str> {
    wd.char_indices()
        .skip(1)
        .filter(|&(_, c)| c == '/')
        .map(|(i, _)| &wd[..i])
        .chain((wd.len() > 1).then_some(wd))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_of_a_path() {
        assert_eq!(
            prefixes("/a/bc/d").collect::<Vec<_>>(),
            ["/a", "/a/bc", "/a/bc/d"]
        );
        assert_eq!(prefixes("/").count(), 0);
    }

    #[test]
    fn only_children_of_made_directories_are_known_missing() {
        let mut m = WorkdirMemo::default();
        assert_eq!(m.missing("k0", "/a"), None);
        // `/a` existed (from the base, say), `/a/b` was made.
        m.record("k0", "k1".into(), "/a/b", &["/a/b".into()]);
        assert_eq!(m.missing("k1", "/a/b"), Some(vec![]));
        assert_eq!(m.missing("k1", "/a"), Some(vec![]));
        assert_eq!(
            m.missing("k1", "/a/b/c/d"),
            Some(vec!["/a/b/c".into(), "/a/b/c/d".into()])
        );
        // `/a` was not made here: its other children are unknown.
        assert_eq!(m.missing("k1", "/a/x"), None);
        assert_eq!(m.missing("k1", "/z"), None);
        // Another key (a RUN in between): nothing is known.
        assert_eq!(m.missing("k2", "/a/b"), None);
        m.record("k2", "k3".into(), "/q", &[]);
        assert_eq!(m.missing("k3", "/a/b"), None);
        assert_eq!(m.missing("k3", "/q"), Some(vec![]));
    }
}
