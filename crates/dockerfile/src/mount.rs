//! `RUN --mount=type=...,target=...` specs, checked as BuildKit checks them.

use serde::Serialize;

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

type Expander<'a> = &'a mut dyn FnMut(&str) -> Result<String, String>;

/// Parse one `--mount` value. With no expander, only what needs no
/// variables is checked (`from=` must not use any), as BuildKit's parse-time pass.
pub fn parse_mount(spec: &str, mut expand: Option<Expander<'_>>) -> Result<Mount, String> {
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
                    return Err(format!(
                        "unexpected key '{key}' for mount type '{}'",
                        kind_name(m.kind)
                    ));
                }
                _ => return Err(format!("invalid field '{field}' must be a key=value pair")),
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
                        return Err(format!(
                            "'{key}' doesn't support variable expansion, define alias stage instead"
                        ));
                    }
                    m.from = Some(value);
                }
                continue;
            }
        };
        let bad = |k: &str, v: &str| format!("invalid value for {k}: {v}");
        match key.as_str() {
            "type" => {
                m.kind = match value.to_lowercase().as_str() {
                    "bind" => MountType::Bind,
                    "cache" => MountType::Cache,
                    "tmpfs" => MountType::Tmpfs,
                    "secret" => MountType::Secret,
                    "ssh" => MountType::Ssh,
                    _ => {
                        return Err(with_suggestion(
                            format!("unsupported mount type {value:?}"),
                            &value.to_lowercase(),
                            &["bind", "cache", "tmpfs", "secret", "ssh"],
                        ));
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
                return Err(format!(
                    "unexpected key '{key}' for mount type '{}'",
                    kind_name(m.kind)
                ));
            }
            "id" => m.id = Some(value),
            "sharing" => {
                m.sharing = Some(match value.to_lowercase().as_str() {
                    "shared" => Sharing::Shared,
                    "private" => Sharing::Private,
                    "locked" => Sharing::Locked,
                    _ => return Err(format!("unsupported sharing value {value:?}")),
                })
            }
            "mode" => {
                m.mode = Some(
                    u32::from_str_radix(&value, 8)
                        .map_err(|_| format!("invalid value {value} for mode"))?,
                )
            }
            "uid" => {
                m.uid = Some(
                    value
                        .parse()
                        .map_err(|_| format!("invalid value {value} for uid"))?,
                )
            }
            "gid" => {
                m.gid = Some(
                    value
                        .parse()
                        .map_err(|_| format!("invalid value {value} for gid"))?,
                )
            }
            "env" => m.env = Some(value),
            _ => {
                return Err(with_suggestion(
                    format!("unexpected key '{key}' in '{field}'"),
                    &key,
                    MOUNT_KEYS,
                ));
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
                return Err(format!(
                    "{what} not allowed for {:?} type mounts",
                    kind_name(m.kind)
                ));
            }
        }
    }
    if ro_auto {
        m.read_only = !matches!(m.kind, MountType::Cache | MountType::Tmpfs);
    }
    if m.kind == MountType::Secret {
        if m.from.is_some() {
            return Err("secret mount should not have a from".into());
        }
        if m.sharing.is_some() {
            return Err("secret mount should not define sharing".into());
        }
        if m.source.is_none() && m.target.is_none() && m.id.is_none() {
            return Err("invalid secret mount. one of source, target required".into());
        }
        if m.source.is_some() && m.id.is_some() {
            return Err("both source and id can't be set".into());
        }
    }
    if m.sharing.is_some() && m.kind != MountType::Cache {
        return Err(format!(
            "invalid cache sharing set for {} mount",
            kind_name(m.kind)
        ));
    }
    Ok(m)
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
fn csv_fields(s: &str) -> Result<Vec<String>, String> {
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
                            return Err(format!(
                                "failed to parse csv mounts: unterminated quote in {s:?}"
                            ));
                        }
                    }
                }
                at_field_start = false;
                match chars.peek() {
                    None | Some(',') => {}
                    Some(_) => {
                        return Err(format!(
                            "failed to parse csv mounts: extraneous \" in field of {s:?}"
                        ));
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

/// `message (did you mean X?)`, BuildKit's `suggest.WrapError` wording,
/// when an option is close to `given`.
fn with_suggestion(message: String, given: &str, options: &[&str]) -> String {
    match crate::flags::suggest(given, options.iter().copied().filter(|o| *o != given)) {
        Some(best) => format!("{message} (did you mean {best}?)"),
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full(spec: &str) -> Result<Mount, String> {
        let mut same = |v: &str| Ok(v.to_string());
        parse_mount(spec, Some(&mut same))
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
