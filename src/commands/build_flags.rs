//! `hoist build`'s flag values (buildx's and docker's syntax) as the
//! engine's: `--secret`, `--ssh`, byte sizes, `--ulimit`,
//! `--build-context`, and `SOURCE_DATE_EPOCH` as BuildKit resolves it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;

/// buildx's `--secret`: `id=ID[,type=file|env][,src=FILE|,env=VAR]`; with
/// neither source, the variable named ID if set, else the file ID.
pub fn parse_secret(spec: &str) -> Result<(String, hoist_engine::executor::Secret)> {
    use hoist_engine::executor::Secret;
    let (mut id, mut kind, mut src, mut env) = (None, None, None, None);
    for field in spec.split(',') {
        let (k, v) = field.split_once('=').ok_or_else(|| {
            anyhow::anyhow!("invalid --secret {spec:?}: {field:?} is not key=value")
        })?;
        match k.trim().to_lowercase().as_str() {
            "id" => id = Some(v.to_string()),
            "type" => kind = Some(v.to_string()),
            "src" | "source" => src = Some(v.to_string()),
            "env" => env = Some(v.to_string()),
            other => anyhow::bail!("invalid --secret {spec:?}: unexpected key {other:?}"),
        }
    }
    let id = id
        .or_else(|| src.clone())
        .or_else(|| env.clone())
        .ok_or_else(|| anyhow::anyhow!("invalid --secret {spec:?}: no id"))?;
    let secret = match (kind.as_deref(), src, env) {
        (_, Some(src), _) => Secret::File(src.into()),
        (_, None, Some(env)) => Secret::Env(env),
        (Some("env"), None, None) => Secret::Env(id.clone()),
        (Some("file"), None, None) => Secret::File(id.clone().into()),
        (None, None, None) if std::env::var_os(&id).is_some() => Secret::Env(id.clone()),
        (None, None, None) => Secret::File(id.clone().into()),
        (Some(other), ..) => anyhow::bail!("invalid --secret {spec:?}: unknown type {other:?}"),
    };
    Ok((id, secret))
}

/// `--ssh default` (the agent in $SSH_AUTH_SOCK) or `--ssh ID=SOCKET`.
pub fn parse_ssh(spec: &str) -> Result<(String, PathBuf)> {
    let (id, path) = match spec.split_once('=') {
        Some((id, path)) => (id.to_string(), PathBuf::from(path)),
        None => {
            let sock = std::env::var_os("SSH_AUTH_SOCK").ok_or_else(|| {
                anyhow::anyhow!("--ssh {spec}: SSH_AUTH_SOCK is not set (give ID=SOCKET)")
            })?;
            (spec.to_string(), PathBuf::from(sock))
        }
    };
    Ok((id, path))
}

/// Docker's byte sizes: `1024`, `512k`, `64m`, `2g` (binary units; a
/// trailing `b` allowed).
pub fn parse_bytes(flag: &str, v: &str) -> Result<u64> {
    let s = v.trim().to_lowercase();
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (num, mult) = match s.chars().last() {
        Some('k') => (&s[..s.len() - 1], 1u64 << 10),
        Some('m') => (&s[..s.len() - 1], 1 << 20),
        Some('g') => (&s[..s.len() - 1], 1 << 30),
        Some('t') => (&s[..s.len() - 1], 1 << 40),
        _ => (s, 1),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| anyhow::anyhow!("invalid {flag} {v:?}: expected a size such as 512m"))?;
    Ok((n * mult as f64) as u64)
}

/// `--ulimit NAME=SOFT[:HARD]` (HARD defaults to SOFT; `-1` is unlimited).
pub fn parse_ulimit(spec: &str) -> Result<hoist_engine::executor::RunUlimit> {
    let bad = || anyhow::anyhow!("invalid --ulimit {spec:?}: expected NAME=SOFT[:HARD]");
    let (name, limits) = spec.split_once('=').ok_or_else(bad)?;
    let num = |v: &str| -> Result<u64> {
        if v == "-1" {
            return Ok(u64::MAX);
        }
        v.parse().map_err(|_| bad())
    };
    let (soft, hard) = match limits.split_once(':') {
        Some((s, h)) => (num(s)?, num(h)?),
        None => (num(limits)?, num(limits)?),
    };
    Ok(hoist_engine::executor::RunUlimit {
        name: name.to_string(),
        soft,
        hard,
    })
}

/// `SOURCE_DATE_EPOCH` as BuildKit resolves it (`getBuildArgValue`): a
/// `--build-arg` (an empty one disables it), else the environment (as
/// buildx passes it), else a global `ARG SOURCE_DATE_EPOCH=…` default. Not
/// a whole number of seconds: `invalid SOURCE_DATE_EPOCH: VALUE`. The
/// value is set back as the build arg (`setBuildArgValue`), so a stage's
/// `ARG SOURCE_DATE_EPOCH` sees it.
pub fn source_date_epoch(
    df: &hoist_dockerfile::Dockerfile,
    front: &mut hoist_dockerfile::BuildOptions,
    at: &dyn Fn(hoist_dockerfile::Error) -> anyhow::Error,
) -> Result<Option<i64>> {
    const KEY: &str = "SOURCE_DATE_EPOCH";
    let given = match front.build_args.get(KEY) {
        Some(v) => Some(v.clone()),
        None => std::env::var(KEY).ok().filter(|v| !v.is_empty()),
    };
    let (value, declared) = match given {
        Some(v) => (v, None),
        None => {
            let globals = hoist_dockerfile::GlobalScope::new(df, front).map_err(at)?;
            let Some(v) = globals.get(KEY) else {
                return Ok(None);
            };
            // The global `ARG` that gave it, for the error's line.
            let line = df.global_args.iter().rev().find(|ins| {
                matches!(&ins.command, hoist_dockerfile::Command::Arg { args }
                    if args.iter().any(|a| a.key == KEY))
            });
            (v.to_string(), line.map(|ins| ins.span.start))
        }
    };
    if value.is_empty() {
        return Ok(None);
    }
    let Ok(epoch) = value.parse::<i64>() else {
        let message = format!("invalid {KEY}: {value}");
        return Err(match declared {
            Some(pos) => at(hoist_dockerfile::Error::new(message, pos)),
            None => anyhow::anyhow!(message),
        });
    };
    front.build_args.insert(KEY.into(), epoch.to_string());
    Ok(Some(epoch))
}

/// `--build-context NAME=VALUE`s, names lower-cased (as buildx).
pub fn named_contexts(
    list: &[String],
) -> Result<BTreeMap<String, hoist_engine::executor::NamedContext>> {
    list.iter()
        .map(|c| {
            let (name, value) = c.split_once('=').ok_or_else(|| {
                anyhow::anyhow!("invalid --build-context {c:?}: expected NAME=VALUE")
            })?;
            let value =
                hoist_engine::executor::NamedContext::parse(value).map_err(anyhow::Error::msg)?;
            Ok((name.to_lowercase(), value))
        })
        .collect()
}
