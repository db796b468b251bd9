//! Which isolation a build's `RUN` steps get (`hoist build --isolation`):
//! found once per build (its [`Probe`], a value the build owns), before the first step, by the sandbox's probe
//! (`hoist __hoist-isolation`, see `hoist_sandbox::isolation`), printed as
//! one line with that step's output, then required of every step:
//!
//! ```text
//! isolation: rootless (user namespace, subids: 0→1000, 1-65536→100000-165535),
//!   mount/pid/ipc/uts namespaces, fresh /proc, overlay
//! ```
//!
//! A mode that cannot be had fails the first step, saying why (an explicit
//! one fails the build before it starts: [`check`]). Where the
//! probe found overlayfs refused, the copying snapshotter takes every step
//! from the first (`snapshotter`), and the line says so instead of `overlay`.

use std::path::Path;
use std::sync::{Arc, Mutex};

use hoist_sandbox::isolation::{Mode, Plan, Unavailable};
use hoist_sandbox::probe::{ProbeReport, ProbeSpec};

use super::snapshotter::SNAPSHOTTER_ENV;
use super::{RunError, RunRequest, io};

/// What a mode gave, once per build: the plan (or why not), the line,
/// and whether a step has printed it.
struct Decided {
    mode: Mode,
    plan: Result<Plan, Unavailable>,
    line: String,
    printed: bool,
    /// Docker's seccomp profile compiled by the probe for the plan (hex BPF).
    seccomp: Option<String>,
    /// The probe found overlayfs refused (and the mode possible): the
    /// build's `Snapshotters` copy from the first step.
    overlay_refused: bool,
}

/// A build's isolation decision and network stack: probed by the first
/// step (or by [`Probe::check`] before the build), then given to every step. Cheap to
/// clone; all clones share one decision.
#[derive(Clone, Default)]
pub struct Probe {
    decided: Arc<Mutex<Option<Decided>>>,
    /// The network stack private steps use, found by the first of them.
    network: Arc<Mutex<Option<super::network::Found>>>,
}

impl std::fmt::Debug for Probe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Probe")
    }
}

impl Probe {
    pub(super) fn network(&self) -> &Mutex<Option<super::network::Found>> {
        &self.network
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Decided>> {
        self.decided.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The plan every step of this build gets in `mode`, with its seccomp
    /// filter; the first call probes, the first step tells `on_line` the
    /// isolation line.
    pub(super) fn plan(
        &self,
        req: &RunRequest,
        mode: Mode,
        on_line: &mut dyn FnMut(&str),
    ) -> Result<(Plan, Option<String>), RunError> {
        let mut decided = self.lock();
        let d = decide(&mut decided, &req.sandbox_exe, &req.scratch_parent, mode)?;
        if d.plan.is_ok() && !d.printed {
            on_line(&d.line);
            d.printed = true;
        }
        let plan = d.plan.clone().map_err(RunError::Isolation)?;
        Ok((plan, d.seccomp.clone()))
    }

    /// Whether the probe for `mode` (run by [`plan`](Self::plan) or
    /// [`check`](Self::check)) found overlayfs refused.
    pub(super) fn overlay_refused(&self, mode: Mode) -> bool {
        self.lock()
            .as_ref()
            .is_some_and(|d| d.mode == mode && d.overlay_refused)
    }

    /// Whether `mode` can be had here (probing now if no step has): for an
    /// explicit `--isolation`, checked before the build, so that a build
    /// whose steps are all cached fails too. Prints nothing.
    pub fn check(
        &self,
        sandbox_exe: &Path,
        scratch_parent: &Path,
        mode: Mode,
    ) -> Result<(), RunError> {
        let mut decided = self.lock();
        let d = decide(&mut decided, sandbox_exe, scratch_parent, mode)?;
        d.plan.clone().map(|_| ()).map_err(RunError::Isolation)
    }
}

/// Without a probe (`RunRequest::isolation` `None`): every namespace and
/// Docker's seccomp profile, compiled once per process.
pub(super) fn default_plan() -> Result<(Plan, Option<String>), RunError> {
    type Compiled = Result<String, Arc<hoist_sandbox::seccomp::SeccompError>>;
    static FILTER: std::sync::OnceLock<Compiled> = std::sync::OnceLock::new();
    let plan = Plan::default();
    let filter = FILTER
        .get_or_init(|| hoist_sandbox::seccomp::compile_for(&plan).map_err(Arc::new))
        .clone()
        .map_err(RunError::Seccomp)?;
    Ok((plan, Some(filter)))
}

fn decide<'a>(
    decided: &'a mut Option<Decided>,
    exe: &Path,
    scratch_parent: &Path,
    mode: Mode,
) -> Result<&'a mut Decided, RunError> {
    if decided.as_ref().is_none_or(|d| d.mode != mode) {
        let report = probe(exe, scratch_parent, mode)?;
        let forced = std::env::var_os(SNAPSHOTTER_ENV).is_some_and(|v| v == "copy");
        let overlay_refused = report.plan.is_ok() && report.facts.overlay.is_err();
        let snapshotter = match &report.facts.overlay {
            _ if forced => format!("copy snapshotter ({SNAPSHOTTER_ENV}=copy)"),
            Ok(()) => "overlay".to_string(),
            Err(why) => format!("copy snapshotter (overlay refused: {why})"),
        };
        *decided = Some(Decided {
            mode,
            line: format!("{}, {snapshotter}", report.line),
            plan: report.plan,
            printed: false,
            seccomp: report.seccomp,
            overlay_refused,
        });
    }
    decided
        .as_mut()
        .ok_or_else(|| RunError::Sandbox("isolation: nothing decided".into()))
}

/// Run the probe in a scratch dir of the store's `tmp/`.
fn probe(exe: &Path, scratch_parent: &Path, mode: Mode) -> Result<ProbeReport, RunError> {
    let scratch = tempfile::Builder::new()
        .prefix("isolation-")
        .tempdir_in(scratch_parent)
        .map_err(io("create a scratch dir in", scratch_parent))?;
    let dir = scratch.path().join("probe");
    std::fs::create_dir(&dir).map_err(io("mkdir", &dir))?;
    let spec = ProbeSpec {
        mode,
        scratch: dir,
        report: scratch.path().join("report.json"),
    };
    let spec_path = scratch.path().join("spec.json");
    let bytes = serde_json::to_vec(&spec).map_err(|e| RunError::Sandbox(e.to_string()))?;
    std::fs::write(&spec_path, bytes).map_err(io("write", &spec_path))?;
    let out = hoist_sandbox::probe::command(exe, &spec_path)
        .output()
        .map_err(io("start the isolation probe", exe))?;
    std::fs::read(&spec.report)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or_else(|| {
            RunError::Sandbox(format!(
                "the isolation probe failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        })
}
