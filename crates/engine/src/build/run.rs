//! The `RUN` step of the solver: the command line as BuildKit builds it
//! (`SHELL`, heredocs), the environment (the image's plus the stage's build
//! args), the cache key, and — on a miss — the sandbox run over the state's
//! overlay stack, whose upper directory becomes the layer and is kept as
//! the lower directory of the next step.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::Ordering;

use hoist_dockerfile::StageScope;
use hoist_dockerfile::instruction::{Command, CommandLine, Instruction, Network, Security};

use super::config::commit_history;
use super::key::KeyBuilder;
use super::records::LastRun;
use super::run_mounts::Planned;
use super::snapshot::{lower_stack, mark_current};
use super::solve::{Made, Solver};
use super::state::ImageState;
use super::time::{now_seconds, rfc3339};
use super::{BuildError, BuildEvent};
use crate::layer::{LayerOptions, TreeMode, append_tree};
use crate::ops::run::{RunRequest, run};
use crate::store::{SnapshotKind, chain_ids};

/// BuildKit's `PATH` for a step whose image sets none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

impl Solver<'_> {
    pub(super) fn run(
        &self,
        stage: &str,
        scope: &StageScope<'_>,
        ins: &Instruction,
        mut state: ImageState,
        results: &BTreeMap<usize, ImageState>,
    ) -> Result<ImageState, BuildError> {
        let Command::Run(cmd) = &ins.command else {
            return Err(BuildError::Internal(
                "run() on a non-RUN instruction".into(),
            ));
        };
        let security = match cmd.security {
            Security::Sandbox => hoist_sandbox::Security::Sandbox,
            Security::Insecure => {
                self.opts
                    .entitlements
                    .require(super::Entitlement::SecurityInsecure)
                    .map_err(|e| {
                        BuildError::Unsupported(format!("RUN --security=insecure: {e}"))
                    })?;
                hoist_sandbox::Security::Insecure
            }
        };
        // Before the cache, as BuildKit refuses the op when loading it.
        let host = match cmd.network {
            Network::Host => true,
            Network::Default => self.opts.network == hoist_sandbox::Network::Host,
            Network::None => false,
        };
        if host {
            self.opts
                .entitlements
                .require(super::Entitlement::NetworkHost)
                .map_err(BuildError::Unsupported)?;
        }
        let (id, started) = self.begin_step(stage, ins.original.trim());
        let (args, script) = argv(&state, &cmd.command);
        let env = environment(&state, scope);
        let cwd = state
            .config
            .config
            .working_dir
            .clone()
            .filter(|w| !w.is_empty())
            .unwrap_or_else(|| "/".into());
        let mounts = cmd
            .mounts(&mut |w| scope.expand_word(w))
            .map_err(|e| BuildError::Run(format!("RUN --mount: {e}")))?;
        let mounts = self.plan_mounts(mounts, &cwd, results)?;
        let mut mount_keys: Vec<String> = mounts.iter().map(|m| m.key.clone()).collect();
        if let Some(s) = &script {
            mount_keys.push(format!(
                "script /dev/pipes/{} {}",
                s.name,
                crate::digest::Digest::of(s.data.as_bytes())
            ));
        }
        let user = state.config.config.user.clone().unwrap_or_default();
        let network = match cmd.network {
            Network::None => hoist_sandbox::Network::None,
            Network::Host => hoist_sandbox::Network::Host,
            Network::Default => self.opts.network,
        };
        let hostname = sandbox_hostname(&self.opts.front.build_args)?;
        let history = history_line(&args, &state, scope);
        let parent_key = state.key.clone();
        let key = KeyBuilder::new("run")
            .digest("parent", &state.key)
            .strs("args", &args)
            .strs("env", &env)
            .str("cwd", &cwd)
            .str("user", &user)
            .str("network", network_name(network))
            .strs("mounts", &mount_keys);
        // BuildKit keys the hostname (ExecOp's meta); the default leaves
        // the key as it was. Proxy variables are never keyed (BuildKit
        // clears `ProxyEnv` from the op's cache map).
        let key = match &hostname {
            Some(h) => key.str("hostname", h),
            None => key,
        };
        let key = if self.opts.extra_hosts.is_empty() {
            key
        } else {
            let hosts: Vec<String> = self.opts.extra_hosts.iter().map(|h| h.key()).collect();
            key.strs("extra-hosts", &hosts)
        };
        // BuildKit's ExecOp keys its security mode; a sandboxed step's key
        // stays what it was.
        let key = match security {
            hoist_sandbox::Security::Sandbox => key,
            hoist_sandbox::Security::Insecure => key.str("security", "insecure"),
        }
        .finish();
        state.key = key.clone();
        let cache_key = key.to_string();
        let now = LastRun {
            parent: parent_key.to_string(),
            command: args.join(" "),
            workdir: cwd.clone(),
            inputs: env
                .iter()
                .map(|e| (format!("env {e}"), crate::digest::Digest::of(e.as_bytes())))
                .collect(),
        };
        let slot = self.slot(&cache_key);
        let _running = slot.lock().unwrap_or_else(|p| p.into_inner());
        let (layer, created) = match self.cached_step(stage, &cache_key)? {
            Some(hit) => {
                self.announce_hit(id, &cache_key);
                hit
            }
            None => {
                if !self.ignores_cache(stage) {
                    self.explain(id, stage, ins, &now);
                }
                let out = self.execute(
                    id,
                    &state,
                    &cache_key,
                    RunParts {
                        args: &args,
                        env: &env,
                        cwd: &cwd,
                        user: &user,
                        network,
                        mounts: &mounts,
                        script: script.as_ref(),
                        security,
                        hostname: hostname.as_deref(),
                    },
                )?;
                self.executed.fetch_add(1, Ordering::SeqCst);
                out
            }
        };
        self.remember(stage, ins, &now)?;
        self.visit(stage, &cache_key, layer.as_ref(), created.clone());
        let with_layer = layer.is_some();
        if let Some(layer) = layer {
            state.layers.push(layer);
        }
        commit_history(
            &mut state.config,
            history,
            with_layer,
            self.created.clone().or(created),
        );
        self.progress.event(BuildEvent::Done {
            id,
            seconds: started.elapsed().as_secs_f64(),
        });
        Ok(state)
    }

    /// Run the step in the sandbox; its layer (none for no change).
    fn execute(
        &self,
        id: usize,
        state: &ImageState,
        cache_key: &str,
        parts: RunParts<'_>,
    ) -> Result<Made, BuildError> {
        let exe = self.opts.sandbox.clone().ok_or_else(|| {
            BuildError::Unsupported(
                "RUN needs the sandbox binary (hoist itself); none was given".into(),
            )
        })?;
        let lower = lower_stack(self.store, &state.layers)?;
        let upper = self.store.reserve_snapshot()?;
        // The mounts' host side lives as long as the step.
        let tmp = self.store.root().join("tmp");
        let scratch = tempfile::Builder::new()
            .prefix("mounts-")
            .tempdir_in(&tmp)
            .map_err(|e| BuildError::Run(format!("{}: {e}", tmp.display())))?;
        let mut prepared = self.prepare_mounts(parts.mounts, scratch.path())?;
        if let Some(s) = parts.script {
            let file = scratch.path().join(format!("script-{}", s.name));
            std::fs::write(&file, &s.data)
                .and_then(|()| {
                    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755))
                })
                .map_err(|e| BuildError::Run(format!("{}: {e}", file.display())))?;
            prepared.mounts.push(crate::ops::run::bind(
                file,
                &format!("/dev/pipes/{}", s.name),
                true,
            ));
        }
        let mut env = parts.env.to_vec();
        env.extend(prepared.env.iter().cloned());
        for (k, v) in proxy_env(&self.opts.front.build_args) {
            set_env(&mut env, &k, v);
        }
        let request = RunRequest {
            sandbox_exe: exe,
            lower: lower.clone(),
            upper: upper.path().to_path_buf(),
            scratch_parent: self.store.root().join("tmp"),
            args: parts.args.to_vec(),
            env,
            cwd: parts.cwd.to_string(),
            user: parts.user.to_string(),
            network: parts.network,
            mounts: prepared.mounts.clone(),
            limits: self.opts.limits.clone(),
            isolation: Some(self.opts.isolation),
            security: parts.security,
            hostname: parts.hostname.map(str::to_string),
            extra_hosts: self.opts.extra_hosts.clone(),
            cancel: self.opts.cancel.clone(),
            probe: self.opts.probe.clone(),
        };
        let outcome = run(&request, &self.snapshotters, &mut |line| {
            self.progress.event(BuildEvent::Output {
                id,
                line: line.to_string(),
            })
        })
        .map_err(|e| BuildError::Run(e.to_string()))?;
        if outcome.code != 0 {
            return Err(BuildError::RunFailed {
                command: parts.args.join(" "),
                code: outcome.code,
                tail: outcome.tail,
            });
        }
        let created = Some(
            self.created
                .clone()
                .unwrap_or_else(|| rfc3339(now_seconds())),
        );
        // The snapshotter left the step's changes only (no copy-ups that
        // changed nothing).
        if is_empty_dir(upper.path()) {
            // Nothing changed: no layer, as BuildKit's empty diff.
            self.put_record(cache_key, None, &[], created.clone())?;
            return Ok((None, created));
        }
        let walk = LayerOptions {
            mode: TreeMode::OverlayUpper,
            ..LayerOptions::default()
        };
        let upper_path = upper.path().to_path_buf();
        let (layer, created) = self.write_layer_with_inputs(cache_key, &[], |w| {
            append_tree(w, &upper_path, &walk)?;
            Ok(())
        })?;
        // Keep the upper dir as this chain's top layer, for the next step.
        let mut diff_ids = state.diff_ids();
        diff_ids.push(layer.diff_id.clone());
        if let Some(chain) = chain_ids(&diff_ids).pop() {
            upper.commit_diff(&chain)?;
            mark_current(self.store, SnapshotKind::Diff, &chain)?;
        }
        Ok((Some(layer), created))
    }
}

struct RunParts<'a> {
    args: &'a [String],
    env: &'a [String],
    cwd: &'a str,
    user: &'a str,
    network: hoist_sandbox::Network,
    mounts: &'a [Planned],
    script: Option<&'a Script>,
    security: hoist_sandbox::Security,
    hostname: Option<&'a str>,
}

/// The build arg that names the steps' hostname (BuildKit's).
const HOSTNAME_ARG: &str = "BUILDKIT_SANDBOX_HOSTNAME";

/// `--build-arg BUILDKIT_SANDBOX_HOSTNAME=NAME`: the steps' hostname (set
/// in their uts namespace, in `/etc/hosts` and as `$HOSTNAME`), as
/// BuildKit's; empty is the default. A name `sethostname` would refuse, or
/// one that would add lines to `/etc/hosts`, is refused here.
fn sandbox_hostname(build_args: &BTreeMap<String, String>) -> Result<Option<String>, BuildError> {
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
fn proxy_env(build_args: &BTreeMap<String, String>) -> Vec<(String, String)> {
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

/// Set `key` in `env` (`K=V` entries), replacing an entry of that name.
fn set_env(env: &mut Vec<String>, key: &str, value: String) {
    env.retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != key);
    env.push(format!("{key}={value}"));
}

/// A lone heredoc with a shebang: BuildKit mounts it read-only at
/// `/dev/pipes/NAME` and runs it.
struct Script {
    name: String,
    data: String,
}

/// The argv BuildKit's `dispatchRun` makes: a lone heredoc is the script
/// (run directly when it has a shebang), other heredocs are handed back to
/// the shell whole; shell form goes through `SHELL`.
fn argv(state: &ImageState, cmd: &CommandLine) -> (Vec<String>, Option<Script>) {
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
        super::config::with_shell(&state.config, &args)
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
fn environment(state: &ImageState, scope: &StageScope<'_>) -> Vec<String> {
    let mut env = state.config.config.env.clone();
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
fn history_line(args: &[String], state: &ImageState, scope: &StageScope<'_>) -> String {
    let env_value = |k: &str| {
        state.config.config.env.iter().find_map(|e| {
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

fn network_name(n: hoist_sandbox::Network) -> &'static str {
    match n {
        hoist_sandbox::Network::Host => "host",
        hoist_sandbox::Network::None => "none",
        hoist_sandbox::Network::Private => "private",
    }
}

fn is_empty_dir(p: &Path) -> bool {
    std::fs::read_dir(p)
        .map(|mut d| d.next().is_none())
        .unwrap_or(false)
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
        let mut step = vec!["http_proxy=image".to_string(), "A=1".to_string()];
        set_env(&mut step, "http_proxy", "arg".into());
        assert_eq!(step, ["A=1", "http_proxy=arg"]);
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
