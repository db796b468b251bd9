//! Instruction flags (`--from=x`, `--link`), checked as BuildKit's `BFlags`
//! does: each instruction declares the flags it takes and their kinds;
//! anything else is an error naming the flag.

use std::collections::BTreeMap;

/// What values a flag takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagKind {
    /// `--link`, `--link=true`, `--link=false`.
    Bool,
    /// `--from=x`, given at most once.
    String,
    /// `--mount=...`, repeatable.
    Strings,
}

/// The flags an instruction received, after checking.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags {
    values: BTreeMap<String, Vec<String>>,
}

impl Flags {
    /// Check `given` (the raw `--name=value` words) against `allowed`.
    pub fn parse(
        instruction: &str,
        given: &[String],
        allowed: &[(&str, FlagKind)],
    ) -> Result<Flags, String> {
        let mut values: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for word in given {
            if word == "--" {
                break;
            }
            let Some(body) = word.strip_prefix("--") else {
                return Err(format!("arg should start with -- : {word}"));
            };
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let Some((_, kind)) = allowed.iter().find(|(n, _)| *n == name) else {
                let mut msg = format!("unknown flag: --{name} for {instruction}");
                if let Some(best) = suggest(name, allowed.iter().map(|(n, _)| *n)) {
                    // BuildKit's wording, which scripts match on: the
                    // name without its dashes.
                    msg.push_str(&format!(" (did you mean {best}?)"));
                }
                return Err(msg);
            };
            if values.contains_key(name) && *kind != FlagKind::Strings {
                return Err(format!("duplicate flag specified: --{name}"));
            }
            let v = match kind {
                FlagKind::Bool => match value {
                    Some("") => return Err(format!("missing a value on flag: --{name}")),
                    None => "true".to_string(),
                    Some(v) if v.eq_ignore_ascii_case("true") => "true".to_string(),
                    Some(v) if v.eq_ignore_ascii_case("false") => "false".to_string(),
                    Some(v) => {
                        return Err(format!(
                            "expecting boolean value for flag --{name}, not: {v}"
                        ));
                    }
                },
                FlagKind::String | FlagKind::Strings => match value {
                    Some(v) => v.to_string(),
                    None => return Err(format!("missing a value on flag: --{name}")),
                },
            };
            values.entry(name.to_string()).or_default().push(v);
        }
        Ok(Flags { values })
    }

    /// The value of a string flag, if given.
    pub fn string(&self, name: &str) -> Option<&str> {
        self.values
            .get(name)
            .and_then(|v| v.last())
            .map(String::as_str)
    }

    /// Every value of a repeatable flag, in order.
    pub fn strings(&self, name: &str) -> Vec<String> {
        self.values.get(name).cloned().unwrap_or_default()
    }

    /// A bool flag: `None` when not given.
    pub fn bool(&self, name: &str) -> Option<bool> {
        self.string(name).map(|v| v == "true")
    }

    /// Whether the flag was given at all.
    pub fn has(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }
}

/// The closest allowed name within edit distance 2, for "did you mean".
pub(crate) fn suggest<'a>(given: &str, options: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    options
        .map(|o| (edit_distance(given, o), o))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, o)| o)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    const COPY: &[(&str, FlagKind)] = &[
        ("from", FlagKind::String),
        ("link", FlagKind::Bool),
        ("exclude", FlagKind::Strings),
    ];

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_kinds() {
        let f = Flags::parse(
            "COPY",
            &words(&["--from=a", "--link", "--exclude=x", "--exclude=y"]),
            COPY,
        )
        .unwrap();
        assert_eq!(f.string("from"), Some("a"));
        assert_eq!(f.bool("link"), Some(true));
        assert_eq!(f.strings("exclude"), vec!["x", "y"]);
        assert_eq!(f.bool("missing"), None);
    }

    #[test]
    fn rejects_bad_flags() {
        let err = |w: &[&str]| Flags::parse("COPY", &words(w), COPY).unwrap_err();
        assert_eq!(
            err(&["--frm=a"]),
            "unknown flag: --frm for COPY (did you mean from?)"
        );
        assert_eq!(
            err(&["--from=a", "--from=b"]),
            "duplicate flag specified: --from"
        );
        assert_eq!(err(&["--from"]), "missing a value on flag: --from");
        assert_eq!(err(&["--link="]), "missing a value on flag: --link");
        assert_eq!(
            err(&["--link=yes"]),
            "expecting boolean value for flag --link, not: yes"
        );
        assert_eq!(err(&["-x"]), "arg should start with -- : -x");
    }

    #[test]
    fn double_dash_ends_flags() {
        let f = Flags::parse("COPY", &words(&["--link=false", "--", "--bogus"]), COPY).unwrap();
        assert_eq!(f.bool("link"), Some(false));
    }
}
