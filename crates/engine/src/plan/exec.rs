//! What a `RUN` means: the argv BuildKit's `dispatchRun` makes (`SHELL`,
//! heredocs), the environment (the image's plus the stage's build args),
//! the history line, and the build args BuildKit gives a meaning to
//! (`BUILDKIT_SANDBOX_HOSTNAME`, the proxy variables).

use std::collections::BTreeMap;

use hoist_dockerfile::StageScope;
use hoist_dockerfile::instruction::CommandLine;

use super::op::Script;
use crate::executor::BuildError;
use crate::executor::image_config::{DEFAULT_PATH, with_shell};
use crate::image::ImageConfig;

/// The build arg that names the steps' hostname (BuildKit's).
const HOSTNAME_ARG: &str = "BUILDKIT_SANDBOX_HOSTNAME";

/// `--build-arg BUILDKIT_SANDBOX_HOSTNAME=NAME`: the steps' hostname (set
/// in their uts namespace, in `/etc/hosts` and as `$HOSTNAME`), as
/// BuildKit's; empty is the default. A name `sethostname` would refuse, or
/// one that would add lines to `/etc/hosts`, is refused here.
pub(super) fn sandbox_hostname(
    build_args: &BTreeMap<String, String>,
) -> Result<Option<String>, BuildError> {
    let Some(h) = build_args.get(HOSTNAME_ARG).filter(|h| !h.is_empty()) else {
        return Ok(None);
    };
    if h.len() > 64
        || h.chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '#')
    {
        return Err(BuildError::Unsupported(format!(
            "invalid {HOSTNAME_ARG} {h:?}: a hostname is at most 64 bytes, without spaces, \
             control characters or '#'"
        )));
    }
    Ok(Some(h.clone()))
}

/// BuildKit's `proxyEnvFromBuildArgs` and `proxyEnvList`: a proxy build
/// arg in either spelling (any case) reaches every step in both, declared
/// or not; never the key, the config or the history. Of two spellings
/// given, the one sorting last wins.
pub(super) fn proxy_env(build_args: &BTreeMap<String, String>) -> Vec<(String, String)> {
    const NAMES: [&str; 5] = [
        "http_proxy",
        "https_proxy",
        "ftp_proxy",
        "no_proxy",
        "all_proxy",
    ];
    let mut out = Vec::new();
    for name in NAMES {
        let Some(v) = build_args
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
            .next_back()
            .filter(|v| !v.is_empty())
        else {
            continue;
        };
        out.push((name.to_ascii_uppercase(), v.clone()));
        out.push((name.to_string(), v.clone()));
    }
    out
}

/// The argv BuildKit's `dispatchRun` makes: a lone heredoc is the script
/// (run directly when it has a shebang), other heredocs are handed back to
/// the shell whole; shell form goes through `SHELL`.
pub(super) fn argv(config: &ImageConfig, cmd: &CommandLine) -> (Vec<String>, Option<Script>) {
    let mut args = cmd.args.clone();
    let mut script = None;
    if let (Some(first), [_]) = (cmd.files.first(), args.as_slice()) {
        if is_lone_heredoc(&args[0], &first.name) {
            let data = if first.chomp {
                chomp(&first.data)
            } else {
                first.data.clone()
            };
            if data.starts_with("#!") {
                args = vec![format!("/dev/pipes/{}", first.name)];
                script = Some(Script {
                    name: first.name.clone(),
                    data,
                });
            } else {
                args = vec![data];
            }
        } else {
            let mut text = args[0].clone();
            for f in &cmd.files {
                text.push('\n');
                text.push_str(&f.data);
                text.push_str(&f.name);
            }
            args = vec![text];
        }
    }
    let args = if cmd.prepend_shell {
        with_shell(config, &args)
    } else {
        args
    };
    (args, script)
}

fn is_lone_heredoc(word: &str, name: &str) -> bool {
    let w = word.trim();
    let Some(rest) = w.strip_prefix("<<") else {
        return false;
    };
    let rest = rest.strip_prefix('-').unwrap_or(rest);
    let rest = rest.trim_matches(|c| c == '"' || c == '\'');
    rest == name
}

/// `<<-`: leading tabs go from every line.
fn chomp(data: &str) -> String {
    data.split_inclusive('\n')
        .map(|l| l.trim_start_matches('\t'))
        .collect()
}

/// The image's env, then the stage's build args it does not set (ENV wins
/// over ARG), and BuildKit's default `PATH` when there is none.
pub(super) fn environment(config: &ImageConfig, scope: &StageScope<'_>) -> Vec<String> {
    let mut env = config.config.env.clone();
    let has = |env: &[String], k: &str| {
        env.iter()
            .any(|e| e.split_once('=').map_or(e.as_str(), |(a, _)| a) == k)
    };
    for (k, v) in scope.args() {
        if !has(&env, k) {
            env.push(format!("{k}={v}"));
        }
    }
    if !has(&env, "PATH") {
        env.push(format!("PATH={DEFAULT_PATH}"));
    }
    env
}

/// `RUN [|N K=V...] ARGV... # buildkit`, BuildKit's history line
/// (`runCommandString`): every `ARG` declared in the stage, valued or not,
/// with the value the step's environment has for it (an `ENV` of the same
/// name wins over the `ARG`).
pub(super) fn history_line(
    args: &[String],
    config: &ImageConfig,
    scope: &StageScope<'_>,
) -> String {
    let env_value = |k: &str| {
        config.config.env.iter().find_map(|e| {
            let (key, v) = e.split_once('=').unwrap_or((e.as_str(), ""));
            (key == k).then(|| v.to_string())
        })
    };
    let build_args: Vec<String> = scope
        .declared_args()
        .iter()
        .map(|(k, v)| {
            let v = env_value(k).or_else(|| v.clone()).unwrap_or_default();
            format!("{k}={v}")
        })
        .collect();
    let mut parts = Vec::new();
    if !build_args.is_empty() {
        parts.push(format!("|{}", build_args.len()));
        parts.extend(build_args);
    }
    parts.extend(args.iter().cloned());
    format!("RUN {} # buildkit", parts.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// BuildKit's `proxyEnvFromBuildArgs` (keys in sorted order, any
    /// case; the last wins) and `proxyEnvList` (both spellings).
    #[test]
    fn proxy_env_is_buildkits_both_spellings_last_sorted_wins() {
        let env = proxy_env(&args(&[
            ("HTTP_PROXY", "upper"),
            ("http_proxy", "lower"),
            ("No_Proxy", "mixed"),
            ("FOO", "x"),
            ("ftp_proxy", ""),
        ]));
        let env: Vec<String> = env.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
        assert_eq!(
            env,
            [
                "HTTP_PROXY=lower",
                "http_proxy=lower",
                "NO_PROXY=mixed",
                "no_proxy=mixed"
            ]
        );
    }

    #[test]
    fn sandbox_hostname_is_checked() {
        let h = |v: &str| sandbox_hostname(&args(&[(HOSTNAME_ARG, v)]));
        assert_eq!(h("foo").unwrap().as_deref(), Some("foo"));
        assert_eq!(h("").unwrap(), None);
        assert_eq!(sandbox_hostname(&args(&[])).unwrap(), None);
        for bad in ["a b", "a\nb", "a#b", &"x".repeat(65)] {
            assert!(h(bad).is_err(), "{bad:?}");
        }
    }
}
