//! What metadata instructions mean: an expanded `ENV`, `LABEL`, `CMD`, …
//! becomes a plain [`ConfigChange`] and the history line BuildKit writes
//! for it, so images built by hoist and by BuildKit have the same config.

use std::time::Duration;

use hoist_dockerfile::instruction::{Command, Healthcheck};

use super::op::{ConfigChange, MetaOp};
use crate::executor::image_config::with_shell;
use crate::image::{HealthConfig, ImageConfig};

/// Why a metadata instruction cannot be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// The plan of an expanded metadata instruction against the config so far
/// (`SHELL` for a shell-form `CMD`/`ENTRYPOINT`): its change and history
/// line, as BuildKit's `dispatchEnv`, `dispatchLabel`, ... and
/// `commitToHistory` write them. `cmd_set` is whether the stage set a
/// `CMD` (an `ENTRYPOINT` clears an inherited one only). `None` for an
/// instruction that is not metadata.
pub fn lower_meta(
    cmd: &Command,
    config: &ImageConfig,
    cmd_set: &mut bool,
) -> Result<Option<MetaOp>, ConfigError> {
    let kvs = |kvs: &[hoist_dockerfile::instruction::KeyValue]| -> Vec<(String, String)> {
        kvs.iter()
            .map(|kv| (kv.key.clone(), kv.value.clone()))
            .collect()
    };
    let line = |word: &str, kvs: &[(String, String)]| {
        let mut msg = String::from(word);
        for (k, v) in kvs {
            msg.push_str(&format!(" {k}={v}"));
        }
        msg
    };
    let (change, history) = match cmd {
        Command::Env { env } => {
            let env = kvs(env);
            let h = line("ENV", &env);
            (ConfigChange::Env(env), h)
        }
        Command::Label { labels } => {
            let labels = kvs(labels);
            let h = line("LABEL", &labels);
            (ConfigChange::Labels(labels), h)
        }
        Command::Maintainer { maintainer } => (
            ConfigChange::Author(maintainer.clone()),
            format!("MAINTAINER {maintainer}"),
        ),
        Command::Expose { ports } => {
            let mut added = Vec::new();
            for p in ports {
                added.extend(parse_port(p)?);
            }
            let h = format!("EXPOSE {}", go_list(&added));
            (ConfigChange::ExposedPorts(added), h)
        }
        Command::User { user } => (ConfigChange::User(user.clone()), format!("USER {user}")),
        Command::Volume { volumes } => (
            ConfigChange::Volumes(volumes.clone()),
            format!("VOLUME {}", go_list(volumes)),
        ),
        Command::Stopsignal { signal } => {
            check_signal(signal)?;
            (
                ConfigChange::StopSignal(signal.clone()),
                format!("STOPSIGNAL {signal}"),
            )
        }
        Command::Shell { shell } => (
            ConfigChange::Shell(shell.clone()),
            format!("SHELL {}", go_list(shell)),
        ),
        Command::Cmd(c) => {
            let args = if c.prepend_shell {
                with_shell(config, &c.args)
            } else {
                c.args.clone()
            };
            *cmd_set = true;
            let h = format!("CMD {}", go_quoted_list(&args));
            (ConfigChange::Cmd(args), h)
        }
        Command::Entrypoint(c) => {
            let args = if c.prepend_shell {
                with_shell(config, &c.args)
            } else {
                c.args.clone()
            };
            let h = format!("ENTRYPOINT {}", go_quoted_list(&args));
            (
                ConfigChange::Entrypoint {
                    args,
                    clear_cmd: !*cmd_set,
                },
                h,
            )
        }
        Command::Healthcheck(h) => {
            let hc = match h {
                Healthcheck::None => HealthConfig {
                    test: vec!["NONE".into()],
                    ..HealthConfig::default()
                },
                Healthcheck::Cmd {
                    test,
                    interval_ns,
                    timeout_ns,
                    start_period_ns,
                    start_interval_ns,
                    retries,
                } => {
                    let d = |ns: &u64| (*ns > 0).then(|| Duration::from_nanos(*ns));
                    HealthConfig {
                        test: test.clone(),
                        interval: d(interval_ns),
                        timeout: d(timeout_ns),
                        start_period: d(start_period_ns),
                        start_interval: d(start_interval_ns),
                        retries: (*retries > 0).then_some(i64::from(*retries)),
                        ..HealthConfig::default()
                    }
                }
            };
            let h = format!("HEALTHCHECK {}", healthcheck_summary(&hc));
            (ConfigChange::Healthcheck(hc), h)
        }
        Command::Onbuild(o) => {
            return Ok(Some(MetaOp {
                change: ConfigChange::OnBuild(o.expression.clone()),
                history: None,
            }));
        }
        Command::Arg { args } => {
            let parts: Vec<String> = args
                .iter()
                .map(|a| match &a.default {
                    Some(v) => format!("{}={v}", a.key),
                    None => a.key.clone(),
                })
                .collect();
            // As in BuildKit, an ARG changes no layer: its value reaches the
            // cache only through what it expands into (or a RUN's env).
            (ConfigChange::None, format!("ARG {}", parts.join(" ")))
        }
        _ => return Ok(None),
    };
    Ok(Some(MetaOp {
        change,
        history: Some(history),
    }))
}

/// Go's `%q` of a `[]string`: `["a" "b c"]`.
fn go_quoted_list(v: &[String]) -> String {
    let items: Vec<String> = v
        .iter()
        .map(|s| hoist_dockerfile::ast::go_quote(s))
        .collect();
    format!("[{}]", items.join(" "))
}

/// Go's `%v` of a `[]string`: `[a b c]`.
fn go_list(v: &[String]) -> String {
    format!("[{}]", v.join(" "))
}

/// Go's `%+v` of a `HealthcheckConfig`, as BuildKit's history shows it.
fn healthcheck_summary(h: &HealthConfig) -> String {
    let ns = |d: &Option<Duration>| d.map_or(0, |d| d.as_nanos());
    format!(
        "{{Test:{} Interval:{} Timeout:{} StartPeriod:{} StartInterval:{} Retries:{}}}",
        go_list(&h.test),
        go_duration(ns(&h.interval)),
        go_duration(ns(&h.timeout)),
        go_duration(ns(&h.start_period)),
        go_duration(ns(&h.start_interval)),
        h.retries.unwrap_or(0)
    )
}

/// Go's `time.Duration.String()` for the whole-unit values healthchecks use.
fn go_duration(ns: u128) -> String {
    if ns == 0 {
        return "0s".into();
    }
    if ns < 1_000_000_000 {
        return match ns {
            n if n % 1_000_000 == 0 => format!("{}ms", n / 1_000_000),
            n if n % 1_000 == 0 => format!("{}µs", n / 1_000),
            n => format!("{n}ns"),
        };
    }
    let total_s = ns / 1_000_000_000;
    let frac = ns % 1_000_000_000;
    let (h, m, s) = (total_s / 3600, (total_s / 60) % 60, total_s % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if frac == 0 {
        out.push_str(&format!("{s}s"));
    } else {
        let f = format!("{frac:09}");
        out.push_str(&format!("{s}.{}s", f.trim_end_matches('0')));
    }
    out
}

/// BuildKit's `parsePort`: `[ip:][hostPort:]containerPort[/proto]`, a
/// range expanding to one entry per port, `80` → `80/tcp`.
fn parse_port(raw: &str) -> Result<Vec<String>, ConfigError> {
    let bad = |why: String| ConfigError(format!("invalid port: {raw:?}: {why}"));
    let (spec, proto) = raw.split_once('/').unwrap_or((raw, "tcp"));
    let container = spec.rsplit(':').next().unwrap_or(spec);
    if container.is_empty() {
        return Err(bad("no port specified".into()));
    }
    let proto = proto.to_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(bad(format!("invalid proto: {proto}")));
    }
    let num = |s: &str| {
        s.parse::<u16>()
            .map_err(|_| ConfigError(format!("invalid containerPort: {container}")))
    };
    let (start, end) = match container.split_once('-') {
        Some((a, b)) if a != b => (num(a)?, num(b)?),
        Some((a, _)) => (num(a)?, num(a)?),
        None => (num(container)?, num(container)?),
    };
    if end < start {
        return Err(ConfigError(format!("invalid containerPort: {container}")));
    }
    Ok((start..=end).map(|p| format!("{p}/{proto}")).collect())
}

/// moby's `signal.ParseSignal`: a number or a known name, `SIG` optional.
fn check_signal(s: &str) -> Result<(), ConfigError> {
    if let Ok(n) = s.parse::<u32>() {
        return if n == 0 {
            Err(ConfigError(format!("invalid signal: {s}")))
        } else {
            Ok(())
        };
    }
    const NAMES: &[&str] = &[
        "ABRT", "ALRM", "BUS", "CHLD", "CLD", "CONT", "FPE", "HUP", "ILL", "INT", "IO", "IOT",
        "KILL", "PIPE", "POLL", "PROF", "PWR", "QUIT", "SEGV", "STKFLT", "STOP", "SYS", "TERM",
        "TRAP", "TSTP", "TTIN", "TTOU", "UNUSED", "URG", "USR1", "USR2", "VTALRM", "WINCH", "XCPU",
        "XFSZ",
    ];
    let name = s.strip_prefix("SIG").unwrap_or(s);
    let rt = name
        .strip_prefix("RTMIN")
        .or_else(|| name.strip_prefix("RTMAX"));
    if NAMES.contains(&name)
        || rt
            .is_some_and(|r| r.is_empty() || r.trim_start_matches(['+', '-']).parse::<u8>().is_ok())
    {
        Ok(())
    } else {
        Err(ConfigError(format!("invalid signal: {s}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::image_config::{
        DEFAULT_PATH, EnvIndex, HISTORY_COMMENT, apply_change, scratch_config,
    };
    use hoist_dockerfile::load;

    /// Plan `cmd` against `c` and apply it, as a step would.
    fn apply(
        c: &mut ImageConfig,
        flags: &mut (bool, EnvIndex),
        cmd: &Command,
        created: Option<String>,
    ) -> Result<(), ConfigError> {
        let op = lower_meta(cmd, c, &mut flags.0)?.expect("a metadata instruction");
        apply_change(c, &mut flags.1, &op, created);
        Ok(())
    }

    /// Apply every instruction of the only stage to a scratch config.
    fn config_of(text: &str) -> ImageConfig {
        let df = load(text).unwrap();
        let mut c = scratch_config("linux", "amd64", None);
        let mut flags = (false, EnvIndex::default());
        for ins in &df.stages[0].instructions {
            apply(&mut c, &mut flags, &ins.command, None).unwrap();
        }
        c
    }

    #[test]
    fn env_replaces_the_first_entry_of_a_key_in_place() {
        // BuildKit's addEnv: an existing key keeps its place, a new one is
        // appended; the index also follows an env that changed length.
        let mut c = scratch_config("linux", "amd64", None);
        c.config
            .env
            .extend(["A=0".into(), "NOEQ".into(), "A=dup".into()]);
        let mut flags = (false, EnvIndex::default());
        let env = |text: &str| {
            load(text).unwrap().stages[0].instructions[0]
                .command
                .clone()
        };
        apply(&mut c, &mut flags, &env("FROM s\nENV A=1 B=2\n"), None).unwrap();
        c.config.env.push("C=pushed".into());
        apply(
            &mut c,
            &mut flags,
            &env("FROM s\nENV C=3 PATH=/p B=4\n"),
            None,
        )
        .unwrap();
        assert_eq!(
            c.config.env,
            ["PATH=/p", "A=1", "NOEQ", "A=dup", "B=4", "C=3"]
        );
    }

    #[test]
    fn many_envs_keep_every_key_once() {
        let text: String = std::iter::once("FROM scratch\n".to_string())
            .chain((0..20_000).map(|i| format!("ENV k{}=v{i}\n", i % 10_000)))
            .collect();
        let c = config_of(&text);
        assert_eq!(c.config.env.len(), 10_001);
        assert_eq!(c.config.env[1], "k0=v10000");
        assert_eq!(c.config.env[10_000], "k9999=v19999");
        assert_eq!(c.history.len(), 20_000);
    }

    #[test]
    fn scratch_defaults_match_buildkit_empty_image() {
        let c = scratch_config("linux", "arm64", Some("v8"));
        assert_eq!(c.config.env, [format!("PATH={DEFAULT_PATH}")]);
        assert_eq!(c.config.working_dir.as_deref(), Some("/"));
        assert_eq!(c.rootfs.kind, "layers");
        assert_eq!(c.variant.as_deref(), Some("v8"));
    }

    #[test]
    fn history_lines_as_buildkit_writes_them() {
        let c = config_of(
            "FROM scratch\nENV A=1 B=two\nLABEL x=y\nEXPOSE 80 53/udp\nUSER app\nVOLUME /data /logs\n\
             STOPSIGNAL SIGTERM\nSHELL [\"/bin/bash\", \"-c\"]\nCMD echo hi\nENTRYPOINT [\"/e\"]\nMAINTAINER me\n\
             HEALTHCHECK --interval=30s --timeout=1m30s --retries=3 CMD [\"true\"]\n",
        );
        let lines: Vec<&str> = c
            .history
            .iter()
            .map(|h| h.created_by.as_deref().unwrap())
            .collect();
        assert_eq!(
            lines,
            [
                "ENV A=1 B=two",
                "LABEL x=y",
                "EXPOSE [80/tcp 53/udp]",
                "USER app",
                "VOLUME [/data /logs]",
                "STOPSIGNAL SIGTERM",
                "SHELL [/bin/bash -c]",
                "CMD [\"/bin/bash\" \"-c\" \"echo hi\"]",
                "ENTRYPOINT [\"/e\"]",
                "MAINTAINER me",
                "HEALTHCHECK {Test:[CMD true] Interval:30s Timeout:1m30s StartPeriod:0s StartInterval:0s Retries:3}",
            ]
        );
        assert!(
            c.history
                .iter()
                .all(|h| h.empty_layer && h.comment.as_deref() == Some(HISTORY_COMMENT))
        );
        assert_eq!(
            c.config.env,
            [format!("PATH={DEFAULT_PATH}"), "A=1".into(), "B=two".into()]
        );
        assert!(c.config.args_escaped);
        assert_eq!(
            c.config.cmd.as_deref(),
            Some(&["/bin/bash".to_string(), "-c".into(), "echo hi".into()][..])
        );
        assert_eq!(
            c.config.exposed_ports.iter().collect::<Vec<_>>(),
            ["53/udp", "80/tcp"]
        );
        assert_eq!(c.author.as_deref(), Some("me"));
        let hc = c.config.healthcheck.unwrap();
        assert_eq!(hc.interval, Some(Duration::from_secs(30)));
        assert_eq!(hc.retries, Some(3));
    }

    #[test]
    fn entrypoint_clears_an_inherited_cmd_only() {
        let df = load("FROM scratch\nENTRYPOINT [\"/e\"]\n").unwrap();
        let mut c = scratch_config("linux", "amd64", None);
        c.config.cmd = Some(vec!["inherited".into()]);
        apply(
            &mut c,
            &mut (false, EnvIndex::default()),
            &df.stages[0].instructions[0].command,
            None,
        )
        .unwrap();
        assert_eq!(c.config.cmd, None);
        let c = config_of("FROM scratch\nCMD [\"x\"]\nENTRYPOINT [\"/e\"]\n");
        assert_eq!(c.config.cmd.as_deref(), Some(&["x".to_string()][..]));
    }

    #[test]
    fn env_replaces_in_place_and_onbuild_is_stored() {
        let c = config_of("FROM scratch\nENV PATH=/x\nONBUILD RUN echo hi\n");
        assert_eq!(c.config.env, ["PATH=/x"]);
        assert_eq!(c.config.on_build, ["RUN echo hi"]);
    }

    #[test]
    fn bad_ports_and_signals_are_errors() {
        let df = load("FROM scratch\nEXPOSE 80/xyz\nSTOPSIGNAL SIGNOPE\n").unwrap();
        let mut c = scratch_config("linux", "amd64", None);
        let mut f = (false, EnvIndex::default());
        assert_eq!(
            apply(&mut c, &mut f, &df.stages[0].instructions[0].command, None)
                .unwrap_err()
                .0,
            "invalid port: \"80/xyz\": invalid proto: xyz"
        );
        assert_eq!(
            apply(&mut c, &mut f, &df.stages[0].instructions[1].command, None)
                .unwrap_err()
                .0,
            "invalid signal: SIGNOPE"
        );
    }

    #[test]
    fn ports_as_buildkit_parses_them() {
        assert_eq!(
            parse_port("8000-8002/UDP").unwrap(),
            ["8000/udp", "8001/udp", "8002/udp"]
        );
        assert_eq!(parse_port("[::1]:80:80").unwrap(), ["80/tcp"]);
        assert_eq!(parse_port("127.0.0.1:8080:80").unwrap(), ["80/tcp"]);
        assert!(parse_port("90-80").is_err());
        assert!(parse_port("x").is_err());
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration(90_000_000_000), "1m30s");
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(go_duration(1_500_000_000), "1.5s");
        assert_eq!(go_duration(5_000_000), "5ms");
    }
}
