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

/// An instruction's flag BuildKit refuses, in its words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlagError {
    /// A flag word without its `--`.
    #[error("arg should start with -- : {0}")]
    NoDashes(String),
    /// A flag the instruction does not take.
    #[error("unknown flag: --{name} for {instruction}{}", did_you_mean(.suggestion))]
    Unknown {
        /// The flag's name.
        name: String,
        /// The instruction, upper-cased.
        instruction: String,
        /// The nearest flag it takes.
        suggestion: Option<String>,
    },
    /// A flag given twice that is not repeatable.
    #[error("duplicate flag specified: --{0}")]
    Duplicate(String),
    /// `--name=` or `--name` for a flag that needs a value.
    #[error("missing a value on flag: --{0}")]
    MissingValue(String),
    /// A bool flag with neither `true` nor `false`.
    #[error("expecting boolean value for flag --{name}, not: {value}")]
    NotBool {
        /// The flag's name.
        name: String,
        /// The value as given.
        value: String,
    },
}

/// BuildKit's wording, which scripts match on: ` (did you mean NAME?)`,
/// the name without its dashes; or nothing.
pub(crate) fn did_you_mean(suggestion: &Option<String>) -> String {
    suggestion
        .as_deref()
        .map(|s| format!(" (did you mean {s}?)"))
        .unwrap_or_default()
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
    ) -> Result<Flags, FlagError> {
        let mut values: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for word in given {
            if word == "--" {
                break;
            }
            let Some(body) = word.strip_prefix("--") else {
                return Err(FlagError::NoDashes(word.clone()));
            };
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let Some((_, kind)) = allowed.iter().find(|(n, _)| *n == name) else {
                return Err(FlagError::Unknown {
                    name: name.to_owned(),
                    instruction: instruction.to_owned(),
                    suggestion: suggest(name, allowed.iter().map(|(n, _)| *n)).map(str::to_owned),
                });
            };
            if values.contains_key(name) && *kind != FlagKind::Strings {
                return Err(FlagError::Duplicate(name.to_owned()));
            }
            let v = match kind {
                FlagKind::Bool => match value {
                    Some("") => return Err(FlagError::MissingValue(name.to_owned())),
                    None => "true".to_string(),
                    Some(v) if v.eq_ignore_ascii_case("true") => "true".to_string(),
                    Some(v) if v.eq_ignore_ascii_case("false") => "false".to_string(),
                    Some(v) => {
                        return Err(FlagError::NotBool {
                            name: name.to_owned(),
                            value: v.to_owned(),
                        });
                    }
                },
                FlagKind::String | FlagKind::Strings => match value {
                    Some(v) => v.to_string(),
                    None => return Err(FlagError::MissingValue(name.to_owned())),
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
        let err = |w: &[&str]| {
            Flags::parse("COPY", &words(w), COPY)
                .unwrap_err()
                .to_string()
        };
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
