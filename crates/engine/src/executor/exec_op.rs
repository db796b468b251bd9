//! The `RUN` op: its cache key (argv, env, user, cwd, network, mounts),
//! and — on a miss — the sandbox run over the state's overlay stack, whose
//! upper directory becomes the layer and is kept as the lower directory of
//! the next step.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use super::build::{Builder, Made};
use super::exec_mounts::Planned;
use super::key::KeyBuilder;
use super::records::LastRun;
use super::snapshot::{lower_stack, mark_current};
use super::state::ImageState;
use super::time::{now_seconds, rfc3339};
use super::{BuildError, BuildEvent};
use crate::digest::Digest;
use crate::layer::{LayerOptions, TreeMode, append_tree};
use crate::ops::run::RunRequest;
use crate::plan::Step;
use crate::plan::op::ExecOp;
use crate::store::{SnapshotKind, chain_ids};

/// What the key phase of a `RUN` found.
pub(super) struct ExecPending {
    id: usize,
    started: Instant,
    mounts: Vec<Planned>,
    key: Digest,
    now: LastRun,
}

impl Builder<'_> {
    /// The step's key. The entitlements it needs are checked first, as
    /// BuildKit refuses the op when loading it (before the cache).
    pub(super) fn exec_key(
        &self,
        step: &Step,
        op: &ExecOp,
        parent: &ImageState,
        inputs: &[Arc<ImageState>],
    ) -> Result<(String, ExecPending), BuildError> {
        super::entitlement::exec_allowed(op.security, op.network, &self.opts.entitlements)?;
        let (id, started) = self.begin_step(&step.stage, &step.text);
        let mounts = self.plan_mounts(&op.mounts, &op.cwd, inputs)?;
        let mut mount_keys: Vec<String> = mounts.iter().map(|m| m.key.clone()).collect();
        if let Some(s) = &op.script {
            mount_keys.push(format!(
                "script /dev/pipes/{} {}",
                s.name,
                crate::digest::Digest::of(s.data.as_bytes())
            ));
        }
        let key = KeyBuilder::new("run")
            .digest("parent", &parent.key)
            .strs("args", &op.args)
            .strs("env", &op.env)
            .str("cwd", &op.cwd)
            .str("user", &op.user)
            .str("network", network_name(op.network))
            .strs("mounts", &mount_keys);
        // BuildKit keys the hostname (ExecOp's meta); the default leaves
        // the key as it was. Proxy variables are never keyed (BuildKit
        // clears `ProxyEnv` from the op's cache map).
        let key = match &op.hostname {
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
        let key = match op.security {
            crate::ops::run::Security::Sandbox => key,
            crate::ops::run::Security::Insecure => key.str("security", "insecure"),
        }
        .finish();
        let now = LastRun {
            parent: parent.key.to_string(),
            command: op.args.join(" "),
            workdir: op.cwd.clone(),
            inputs: op
                .env
                .iter()
                .map(|e| (format!("env {e}"), crate::digest::Digest::of(e.as_bytes())))
                .collect(),
        };
        Ok((
            key.to_string(),
            ExecPending {
                id,
                started,
                mounts,
                key,
                now,
            },
        ))
    }

    pub(super) fn exec_load(
        &self,
        step: &Step,
        op: &ExecOp,
        p: &ExecPending,
        key: &str,
        parent: &ImageState,
    ) -> Result<Option<ImageState>, BuildError> {
        let Some(hit) = self.cached_step(&step.stage, key)? else {
            return Ok(None);
        };
        self.announce_hit(p.id, key);
        self.exec_done(step, op, p, hit, parent.clone()).map(Some)
    }

    pub(super) fn exec_run(
        &self,
        step: &Step,
        op: &ExecOp,
        p: ExecPending,
        key: &str,
        inputs: Vec<Arc<ImageState>>,
    ) -> Result<ImageState, BuildError> {
        if !self.ignores_cache(&step.stage) {
            self.explain(p.id, &step.stage, step.line(), &p.now);
        }
        let made = self.execute(p.id, &inputs[0], key, op, &p.mounts)?;
        self.ledger.ran();
        self.exec_done(step, op, &p, made, super::build::parent_of(inputs)?)
    }

    fn exec_done(
        &self,
        step: &Step,
        op: &ExecOp,
        p: &ExecPending,
        (layer, created): Made,
        parent: ImageState,
    ) -> Result<ImageState, BuildError> {
        self.remember(&step.stage, step.line(), &p.now)?;
        Ok(self.step_done(
            step,
            &p.key,
            parent,
            (layer, created),
            &op.history,
            (p.id, p.started),
        ))
    }

    /// Run the step in the sandbox; its layer (none for no change).
    fn execute(
        &self,
        id: usize,
        state: &ImageState,
        cache_key: &str,
        op: &ExecOp,
        mounts: &[Planned],
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
        let mut prepared = self.prepare_mounts(mounts, scratch.path())?;
        if let Some(s) = &op.script {
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
        let mut env = op.env.clone();
        env.extend(prepared.env.iter().cloned());
        for (k, v) in &op.proxy_env {
            set_env(&mut env, k, v.clone());
        }
        let request = RunRequest {
            sandbox_exe: exe,
            lower: lower.clone(),
            upper: upper.path().to_path_buf(),
            scratch_parent: self.store.root().join("tmp"),
            args: op.args.clone(),
            env,
            cwd: op.cwd.clone(),
            user: op.user.clone(),
            network: op.network,
            mounts: prepared.mounts.clone(),
            limits: self.opts.limits.clone(),
            isolation: Some(self.opts.isolation),
            security: op.security,
            hostname: op.hostname.clone(),
            extra_hosts: self.opts.extra_hosts.clone(),
            cancel: self.opts.cancel.clone(),
            probe: self.opts.probe.clone(),
        };
        let outcome = self
            .executor
            .run(&request, &mut |line| {
                self.progress.event(BuildEvent::Output {
                    id,
                    line: line.to_string(),
                })
            })
            .map_err(|e| BuildError::Run(e.to_string()))?;
        if outcome.code != 0 {
            return Err(BuildError::RunFailed {
                command: op.args.join(" "),
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

/// Set `key` in `env` (`K=V` entries), replacing an entry of that name.
fn set_env(env: &mut Vec<String>, key: &str, value: String) {
    env.retain(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) != key);
    env.push(format!("{key}={value}"));
}

fn network_name(n: crate::ops::run::Network) -> &'static str {
    match n {
        crate::ops::run::Network::Host => "host",
        crate::ops::run::Network::None => "none",
        crate::ops::run::Network::Private => "private",
    }
}

fn is_empty_dir(p: &Path) -> bool {
    std::fs::read_dir(p)
        .map(|mut d| d.next().is_none())
        .unwrap_or(false)
}
