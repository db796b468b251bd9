//! The image config as steps change it: `FROM scratch`'s, history
//! entries as BuildKit's `commitToHistory` writes them, and a planned
//! metadata change applied (what each instruction means is the plan's,
//! `plan::meta`).

use std::collections::HashMap;

use crate::image::{History, ImageConfig};
use crate::plan::op::{ConfigChange, MetaOp};

/// BuildKit's history comment on every entry it writes.
pub const HISTORY_COMMENT: &str = "buildkit.dockerfile.v0";
/// `PATH` of a `FROM scratch` image (BuildKit's `DefaultPathEnvUnix`).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The config of `FROM scratch` (BuildKit's `emptyImage`).
pub fn scratch_config(os: &str, architecture: &str, variant: Option<&str>) -> ImageConfig {
    let mut c = ImageConfig {
        architecture: architecture.to_string(),
        os: os.to_string(),
        variant: variant.filter(|v| !v.is_empty()).map(str::to_string),
        ..ImageConfig::default()
    };
    c.rootfs.kind = "layers".into();
    c.config.working_dir = Some("/".into());
    if os != "windows" {
        c.config.env = vec![format!("PATH={DEFAULT_PATH}")];
    }
    c
}

/// Add a history entry (`created` is the epoch when one is set).
pub fn commit_history(
    config: &mut ImageConfig,
    created_by: String,
    with_layer: bool,
    created: Option<String>,
) {
    config.history.push(History {
        created,
        created_by: Some(created_by),
        comment: Some(HISTORY_COMMENT.into()),
        empty_layer: !with_layer,
        ..History::default()
    });
}

/// The argv a shell-form `CMD`/`ENTRYPOINT` becomes: `SHELL` (or
/// `/bin/sh -c`) plus the command line (BuildKit's `withShell`).
pub fn with_shell(config: &ImageConfig, args: &[String]) -> Vec<String> {
    let mut shell = match &config.config.shell {
        Some(s) if !s.is_empty() => s.clone(),
        _ => vec!["/bin/sh".to_string(), "-c".to_string()],
    };
    shell.push(args.join(" "));
    shell
}

/// The position of each key in a config's `Env`, so an `ENV` costs the
/// same however many came before it (a search of the list per key made
/// 100,000 `ENV` lines quadratic).
#[derive(Debug, Clone, Default)]
pub struct EnvIndex {
    positions: HashMap<String, usize>,
    /// The length of the env the positions describe.
    len: usize,
}

/// The key of a `KEY=VALUE` env entry (`None` without a `=`).
fn env_key(entry: &str) -> Option<&str> {
    entry.split_once('=').map(|(k, _)| k)
}

impl EnvIndex {
    /// Sets `KEY=VALUE` in `env`, replacing the first earlier `KEY` in
    /// place. The index is rebuilt first when `env` is not the list it
    /// describes (another stage's, or changed behind its back).
    pub fn set(&mut self, env: &mut Vec<String>, key: &str, value: &str) {
        let stale = self.len != env.len()
            || self
                .positions
                .get(key)
                .is_some_and(|&i| env_key(&env[i]) != Some(key));
        if stale {
            self.positions = env
                .iter()
                .enumerate()
                .rev()
                .filter_map(|(i, e)| env_key(e).map(|k| (k.to_string(), i)))
                .collect();
            self.len = env.len();
        }
        let entry = format!("{key}={value}");
        match self.positions.get(key) {
            Some(&i) => env[i] = entry,
            None => {
                self.positions.insert(key.to_string(), env.len());
                env.push(entry);
                self.len = env.len();
            }
        }
    }
}

/// Apply a planned metadata change (and its history line) to `config`.
/// `env` is the stage's index of its env keys (kept by the caller from
/// one step to the next, so an `ENV` costs the same however many came
/// before it).
pub fn apply_change(
    config: &mut ImageConfig,
    env: &mut EnvIndex,
    op: &MetaOp,
    created: Option<String>,
) {
    let c = &mut config.config;
    match &op.change {
        ConfigChange::None => {}
        ConfigChange::Env(kvs) => {
            for (k, v) in kvs {
                env.set(&mut c.env, k, v);
            }
        }
        ConfigChange::Labels(kvs) => {
            for (k, v) in kvs {
                c.labels.insert(k.clone(), v.clone());
            }
        }
        ConfigChange::Author(a) => config.author = Some(a.clone()),
        ConfigChange::ExposedPorts(ports) => c.exposed_ports.extend(ports.iter().cloned()),
        ConfigChange::User(u) => c.user = Some(u.clone()),
        ConfigChange::Volumes(v) => c.volumes.extend(v.iter().cloned()),
        ConfigChange::StopSignal(s) => c.stop_signal = Some(s.clone()),
        ConfigChange::Shell(s) => c.shell = Some(s.clone()),
        ConfigChange::Cmd(args) => {
            c.cmd = Some(args.clone());
            c.args_escaped = true;
        }
        ConfigChange::Entrypoint { args, clear_cmd } => {
            c.entrypoint = Some(args.clone());
            if *clear_cmd {
                c.cmd = None;
            }
        }
        ConfigChange::Healthcheck(h) => c.healthcheck = Some(h.clone()),
        ConfigChange::OnBuild(e) => c.on_build.push(e.clone()),
        ConfigChange::ClearOnBuild => c.on_build.clear(),
    }
    if let Some(line) = &op.history {
        commit_history(config, line.clone(), false, created);
    }
}
