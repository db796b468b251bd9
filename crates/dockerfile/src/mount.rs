//! `RUN --mount=type=...,target=...` specs, checked as BuildKit checks them.

use serde::Serialize;

use crate::expand::ExpandError;
use crate::flags::did_you_mean;

/// A `--mount` value BuildKit would refuse, in its words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MountError {
    /// A value could not be expanded.
    #[error(transparent)]
    Expand(#[from] ExpandError),
    /// A quoted field never ends.
    #[error("failed to parse csv mounts: unterminated quote in {0:?}")]
    UnterminatedQuote(String),
    /// Text after a quoted field's closing quote.
    #[error("failed to parse csv mounts: extraneous \" in field of {0:?}")]
    ExtraneousQuote(String),
    /// A field without `=` that is no flag.
    #[error("invalid field '{0}' must be a key=value pair")]
    NotKeyValue(String),
    /// `from=` with a variable at parse time.
    #[error("'{0}' doesn't support variable expansion, define alias stage instead")]
    NoExpansion(String),
    /// `type=` of no known kind.
    #[error("unsupported mount type {given:?}{}", did_you_mean(.suggestion))]
    UnsupportedType {
        /// The type as written.
        given: String,
        /// The nearest known type.
        suggestion: Option<String>,
    },
    /// A key no mount takes.
    #[error("unexpected key '{key}' in '{field}'{}", did_you_mean(.suggestion))]
    UnknownKey {
        /// The key, lower-cased.
        key: String,
        /// The field as written.
        field: String,
        /// The nearest known key.
        suggestion: Option<String>,
    },
    /// A key this type of mount does not take.
    #[error("unexpected key '{key}' for mount type '{kind}'")]
    KeyNotForType {
        /// The key, lower-cased.
        key: String,
        /// The mount type.
        kind: &'static str,
    },
    /// A boolean or size that does not parse.
    #[error("invalid value for {key}: {value}")]
    InvalidValue {
        /// The key, lower-cased.
        key: String,
        /// The value.
        value: String,
    },
    /// `mode=`, `uid=` or `gid=` that is no number.
    #[error("invalid value {value} for {key}")]
    InvalidNumber {
        /// `mode`, `uid` or `gid`.
        key: &'static str,
        /// The value.
        value: String,
    },
    /// `sharing=` of no known kind.
    #[error("unsupported sharing value {0:?}")]
    UnsupportedSharing(String),
    /// `mode=`, `uid=` or `gid=` on a mount without files of its own.
    #[error("{what} not allowed for {kind:?} type mounts")]
    FileInfoNotAllowed {
        /// `mode`, `uid` or `gid`.
        what: &'static str,
        /// The mount type.
        kind: &'static str,
    },
    /// A secret mount with `from=`.
    #[error("secret mount should not have a from")]
    SecretFrom,
    /// A secret mount with `sharing=`.
    #[error("secret mount should not define sharing")]
    SecretSharing,
    /// A secret mount with neither source, target nor id.
    #[error("invalid secret mount. one of source, target required")]
    SecretUnnamed,
    /// `source=` and `id=` both.
    #[error("both source and id can't be set")]
    SourceAndId,
    /// `sharing=` on a mount other than a cache.
    #[error("invalid cache sharing set for {0} mount")]
    SharingNotCache(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MountType {
    Bind,
    Cache,
    Tmpfs,
    Secret,
    Ssh,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Sharing {
    Shared,
    Private,
    Locked,
}

/// One `--mount`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mount {
    pub kind: MountType,
    pub from: Option<String>,
    pub source: Option<String>,
    pub target: Option<String>,
    pub read_only: bool,
    pub id: Option<String>,
    pub sharing: Option<Sharing>,
    pub required: bool,
    pub size_limit: Option<u64>,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub env: Option<String>,
}

type Expander<'a> = &'a mut dyn FnMut(&str) -> Result<String, ExpandError>;

/// Parse one `--mount` value. With no expander, only what needs no
/// variables is checked (`from=` must not use any), as BuildKit's parse-time pass.
pub fn parse_mount(spec: &str, mut expand: Option<Expander<'_>>) -> Result<Mount, MountError> {
    let mut m = Mount {
        kind: MountType::Bind,
        from: None,
        source: None,
        target: None,
        read_only: false,
        id: None,
        sharing: None,
        required: false,
        size_limit: None,
        mode: None,
        uid: None,
        gid: None,
        env: None,
    };
    let mut ro_auto = true;
    for field in csv_fields(spec)? {
        let (key, value) = match field.split_once('=') {
            Some((k, v)) => (k.to_lowercase(), Some(v.to_string())),
            None => (field.to_lowercase(), None),
        };
        let Some(value) = value else {
            if expand.is_none() {
                continue;
            }
            match key.as_str() {
                "readonly" | "ro" => {
                    m.read_only = true;
                    ro_auto = false;
                }
                "readwrite" | "rw" => {
                    m.read_only = false;
                    ro_auto = false;
                }
                "required" if matches!(m.kind, MountType::Secret | MountType::Ssh) => {
                    m.required = true
                }
                "required" => {
                    return Err(MountError::KeyNotForType {
                        key,
                        kind: kind_name(m.kind),
                    });
                }
                _ => return Err(MountError::NotKeyValue(field)),
            }
            continue;
        };
        let value = match expand.as_mut() {
            Some(e) => e(&value)?,
            None => {
                if key == "from" {
                    if let Some(i) = value.find('$')
                        && i != value.len() - 1
                    {
                        return Err(MountError::NoExpansion(key));
                    }
                    m.from = Some(value);
                }
                continue;
            }
        };
        let bad = |k: &str, v: &str| MountError::InvalidValue {
            key: k.to_owned(),
            value: v.to_owned(),
        };
        match key.as_str() {
            "type" => {
                m.kind = match value.to_lowercase().as_str() {
                    "bind" => MountType::Bind,
                    "cache" => MountType::Cache,
                    "tmpfs" => MountType::Tmpfs,
                    "secret" => MountType::Secret,
                    "ssh" => MountType::Ssh,
                    _ => {
                        return Err(MountError::UnsupportedType {
                            suggestion: suggestion(
                                &value.to_lowercase(),
                                &["bind", "cache", "tmpfs", "secret", "ssh"],
                            ),
                            given: value,
                        });
                    }
                }
            }
            "from" => m.from = Some(value),
            "source" | "src" => m.source = Some(value),
            "target" | "dst" | "destination" => m.target = Some(value),
            "readonly" | "ro" => {
                m.read_only = go_bool(&value).ok_or_else(|| bad(&key, &value))?;
                ro_auto = false;
            }
            "readwrite" | "rw" => {
                m.read_only = !go_bool(&value).ok_or_else(|| bad(&key, &value))?;
                ro_auto = false;
            }
            "required" if matches!(m.kind, MountType::Secret | MountType::Ssh) => {
                m.required = go_bool(&value).ok_or_else(|| bad(&key, &value))?;
            }
            "size" if m.kind == MountType::Tmpfs => {
                m.size_limit = Some(ram_in_bytes(&value).ok_or_else(|| bad(&key, &value))?);
            }
            "required" | "size" => {
                return Err(MountError::KeyNotForType {
                    key,
                    kind: kind_name(m.kind),
                });
            }
            "id" => m.id = Some(value),
            "sharing" => {
                m.sharing = Some(match value.to_lowercase().as_str() {
                    "shared" => Sharing::Shared,
                    "private" => Sharing::Private,
                    "locked" => Sharing::Locked,
                    _ => return Err(MountError::UnsupportedSharing(value)),
                })
            }
            "mode" => {
                m.mode = Some(u32::from_str_radix(&value, 8).map_err(|_| number("mode", &value))?)
            }
            "uid" => m.uid = Some(value.parse().map_err(|_| number("uid", &value))?),
            "gid" => m.gid = Some(value.parse().map_err(|_| number("gid", &value))?),
            "env" => m.env = Some(value),
            _ => {
                return Err(MountError::UnknownKey {
                    suggestion: suggestion(&key, MOUNT_KEYS),
                    key,
                    field,
                });
            }
        }
    }
    if expand.is_none() {
        return Ok(m);
    }
    let file_info = matches!(
        m.kind,
        MountType::Secret | MountType::Ssh | MountType::Cache
    );
    if !file_info {
        for (set, what) in [
            (m.mode.is_some(), "mode"),
            (m.uid.is_some(), "uid"),
            (m.gid.is_some(), "gid"),
        ] {
            if set {
                return Err(MountError::FileInfoNotAllowed {
                    what,
                    kind: kind_name(m.kind),
                });
            }
        }
    }
    if ro_auto {
        m.read_only = !matches!(m.kind, MountType::Cache | MountType::Tmpfs);
    }
    if m.kind == MountType::Secret {
        if m.from.is_some() {
            return Err(MountError::SecretFrom);
        }
        if m.sharing.is_some() {
            return Err(MountError::SecretSharing);
        }
        if m.source.is_none() && m.target.is_none() && m.id.is_none() {
            return Err(MountError::SecretUnnamed);
        }
        if m.source.is_some() && m.id.is_some() {
            return Err(MountError::SourceAndId);
        }
    }
    if m.sharing.is_some() && m.kind != MountType::Cache {
        return Err(MountError::SharingNotCache(kind_name(m.kind)));
    }
    Ok(m)
}

/// The error for a `mode=`, `uid=` or `gid=` that is no number.
fn number(key: &'static str, value: &str) -> MountError {
    MountError::InvalidNumber {
        key,
        value: value.to_owned(),
    }
}

fn kind_name(k: MountType) -> &'static str {
    match k {
        MountType::Bind => "bind",
        MountType::Cache => "cache",
        MountType::Tmpfs => "tmpfs",
        MountType::Secret => "secret",
        MountType::Ssh => "ssh",
    }
}

/// Go's `strconv.ParseBool`.
fn go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// docker/go-units `RAMInBytes`: `64m`, `1g`, `512k`, `100` (binary units).
fn ram_in_bytes(v: &str) -> Option<u64> {
    let v = v.trim();
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let num: f64 = num.parse().ok()?;
    let mul: f64 = match unit
        .to_lowercase()
        .trim_end_matches('b')
        .trim_end_matches('i')
    {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return None,
    };
    let bytes = num * mul;
    (bytes.is_finite() && (0.0..1.8e19).contains(&bytes)).then_some(bytes as u64)
}

/// Split one CSV record (Go's `encoding/csv` rules: `"` quotes a field,
/// `""` inside quotes is a literal quote).
fn csv_fields(s: &str) -> Result<Vec<String>, MountError> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = s.chars().peekable();
    let mut at_field_start = true;
    while let Some(c) = chars.next() {
        match c {
            '"' if at_field_start => {
                loop {
                    match chars.next() {
                        Some('"') if chars.peek() == Some(&'"') => {
                            chars.next();
                            cur.push('"');
                        }
                        Some('"') => break,
                        Some(c) => cur.push(c),
                        None => {
                            return Err(MountError::UnterminatedQuote(s.to_owned()));
                        }
                    }
                }
                at_field_start = false;
                match chars.peek() {
                    None | Some(',') => {}
                    Some(_) => {
                        return Err(MountError::ExtraneousQuote(s.to_owned()));
                    }
                }
            }
            ',' => {
                out.push(std::mem::take(&mut cur));
                at_field_start = true;
            }
            c => {
                cur.push(c);
                at_field_start = false;
            }
        }
    }
    out.push(cur);
    Ok(out)
}

/// The keys `--mount` takes, for "did you mean".
const MOUNT_KEYS: &[&str] = &[
    "type",
    "from",
    "source",
    "src",
    "target",
    "dst",
    "destination",
    "readonly",
    "ro",
    "readwrite",
    "rw",
    "id",
    "sharing",
    "required",
    "mode",
    "uid",
    "gid",
    "size",
    "env",
];

/// The option close to `given`, for BuildKit's `suggest.WrapError`.
fn suggestion(given: &str, options: &[&str]) -> Option<String> {
    crate::flags::suggest(given, options.iter().copied().filter(|o| *o != given)).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(spec: &str) -> Result<Mount, String> {
        let mut same = |v: &str| Ok(v.to_string());
        parse_mount(spec, Some(&mut same)).map_err(|e| e.to_string())
    }

    #[test]
    fn bind_defaults_read_only_cache_writable() {
        let m = full("target=/src,from=build").unwrap();
        assert_eq!(m.kind, MountType::Bind);
        assert!(m.read_only);
        assert_eq!(m.from.as_deref(), Some("build"));
        let c =
            full("type=cache,target=/root/.cache,id=pip,sharing=locked,mode=0755,uid=1").unwrap();
        assert!(!c.read_only);
        assert_eq!(c.sharing, Some(Sharing::Locked));
        assert_eq!(c.mode, Some(0o755));
        let t = full("type=tmpfs,target=/t,size=64m").unwrap();
        assert_eq!(t.size_limit, Some(64 << 20));
    }

    #[test]
    fn rejects_like_buildkit() {
        assert_eq!(
            full("type=nfs").unwrap_err(),
            "unsupported mount type \"nfs\""
        );
        assert_eq!(
            full("type=bind,mode=0755").unwrap_err(),
            "mode not allowed for \"bind\" type mounts"
        );
        assert_eq!(
            full("type=secret,from=x,id=a").unwrap_err(),
            "secret mount should not have a from"
        );
        assert_eq!(
            full("type=bind,sharing=shared").unwrap_err(),
            "invalid cache sharing set for bind mount"
        );
        assert_eq!(
            full("target=/a,bogus=1").unwrap_err(),
            "unexpected key 'bogus' in 'bogus=1'"
        );
        assert_eq!(
            full("target").unwrap_err(),
            "invalid field 'target' must be a key=value pair"
        );
        assert!(parse_mount("from=$X", None).is_err());
    }

    /// BuildKit's `did you mean` for a mistyped key or mount type.
    #[test]
    fn typos_get_a_suggestion() {
        assert_eq!(
            full("tpye=cache,target=/a").unwrap_err(),
            "unexpected key 'tpye' in 'tpye=cache' (did you mean type?)"
        );
        assert_eq!(
            full("type=tmfps,target=/a").unwrap_err(),
            "unsupported mount type \"tmfps\" (did you mean tmpfs?)"
        );
    }

    #[test]
    fn csv_quotes() {
        assert_eq!(
            csv_fields(r#"a=1,"b=x,y",c"#).unwrap(),
            vec!["a=1", "b=x,y", "c"]
        );
        assert!(csv_fields(r#""unterminated"#).is_err());
    }
}
