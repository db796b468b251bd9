//! The `plain` view, as BuildKit's plain printer: `#N [stage] TEXT` when
//! a step starts, each line of its output as `#N 0.213 LINE` (seconds
//! since the step started), `#N CACHED` or `#N DONE 0.3s` when it ends, a
//! blank line between steps; a failed step ends `#N ERROR: …` and its
//! last lines are printed again between `------` rules at the end (an
//! interrupted one ends `#N CANCELED`).

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::sync::Mutex;
use std::time::Instant;

use hoist_engine::executor::BuildEvent;

use super::{cancelled, log_seconds, step_name};

/// Lines of a step's output kept for its error report (BuildKit keeps
/// the last ten too).
const ERROR_LINES: usize = 10;

pub struct Plain {
    explain: bool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    steps: HashMap<usize, Step>,
    order: Vec<usize>,
    printed: bool,
}

struct Step {
    name: String,
    started: Instant,
    open: bool,
    cached: bool,
    last: VecDeque<String>,
}

impl Plain {
    pub fn new(explain: bool) -> Plain {
        Plain {
            explain,
            state: Mutex::new(State::default()),
        }
    }

    pub fn event(&self, e: BuildEvent) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = std::io::stderr().lock();
        let _ = match e {
            // Collected by `build`'s `Warnings` and printed after the build.
            BuildEvent::Warning(_) => Ok(()),
            BuildEvent::Step { id, stage, text } => {
                let name = step_name(&stage, &text);
                if state.printed {
                    let _ = writeln!(out);
                }
                state.printed = true;
                state.order.push(id);
                let line = writeln!(out, "#{id} {name}");
                state.steps.insert(
                    id,
                    Step {
                        name,
                        started: Instant::now(),
                        open: true,
                        cached: false,
                        last: VecDeque::new(),
                    },
                );
                line
            }
            BuildEvent::Cached { id } => {
                if let Some(step) = state.steps.get_mut(&id) {
                    step.cached = true;
                }
                writeln!(out, "#{id} CACHED")
            }
            BuildEvent::Imported { id, from } if self.explain => {
                writeln!(out, "#{id} cache hit: imported from {from}")
            }
            BuildEvent::Explain { id, reason } if self.explain => {
                writeln!(out, "#{id} cache miss: {reason}")
            }
            BuildEvent::Imported { .. } | BuildEvent::Explain { .. } => Ok(()),
            BuildEvent::Output { id, line } => {
                let Some(step) = state.steps.get_mut(&id) else {
                    return;
                };
                let stamped = format!(
                    "{} {line}",
                    log_seconds(step.started.elapsed().as_secs_f64())
                );
                if step.last.len() == ERROR_LINES {
                    step.last.pop_front();
                }
                step.last.push_back(stamped.clone());
                writeln!(out, "#{id} {stamped}")
            }
            BuildEvent::Done { id, seconds } => {
                let Some(step) = state.steps.get_mut(&id) else {
                    return;
                };
                step.open = false;
                // A cached step has said so; BuildKit prints no DONE after.
                if step.cached {
                    Ok(())
                } else {
                    writeln!(out, "#{id} DONE {seconds:.1}s")
                }
            }
        };
    }

    /// Open steps failed with `error`: `#N ERROR: …`, then their last
    /// lines of output, as BuildKit's plain printer ends a failed build.
    pub fn finish(&self, error: Option<&str>) {
        let Some(error) = error else { return };
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = std::io::stderr().lock();
        let failed: Vec<(usize, &Step)> = state
            .order
            .iter()
            .filter_map(|id| state.steps.get(id).map(|s| (*id, s)))
            .filter(|(_, s)| s.open)
            .collect();
        for (id, _) in &failed {
            let _ = if cancelled(error) {
                writeln!(out, "#{id} CANCELED")
            } else {
                writeln!(out, "#{id} ERROR: {error}")
            };
        }
        for (_, step) in failed.iter().filter(|_| !cancelled(error)) {
            let _ = writeln!(out, "------");
            let _ = writeln!(out, " > {}:", step.name);
            for line in &step.last {
                let _ = writeln!(out, "{line}");
            }
            let _ = writeln!(out, "------");
        }
    }
}
