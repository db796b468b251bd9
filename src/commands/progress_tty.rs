//! The `tty` progress view: one live line per step (a spinner while it
//! runs, then `DONE 0.2s` or `CACHED`), steps of concurrent stages drawn
//! together. `--progress auto` picks it when stderr is a terminal.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use hoist_engine::build::{BuildEvent, BuildProgress};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

pub struct Tty {
    multi: MultiProgress,
    bars: Mutex<HashMap<usize, (ProgressBar, String, bool)>>,
    explain: bool,
}

impl Tty {
    pub fn new(explain: bool) -> Tty {
        Tty {
            multi: MultiProgress::new(),
            bars: Mutex::new(HashMap::new()),
            explain,
        }
    }
}

impl BuildProgress for Tty {
    fn event(&self, e: BuildEvent) {
        let Ok(mut bars) = self.bars.lock() else {
            return;
        };
        match e {
            BuildEvent::Step { id, stage, text } => {
                let bar = self.multi.add(ProgressBar::new_spinner());
                if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} {elapsed}") {
                    bar.set_style(style);
                }
                let line = format!("#{id} [{stage}] {text}");
                bar.set_message(line.clone());
                bar.enable_steady_tick(Duration::from_millis(100));
                bars.insert(id, (bar, line, false));
            }
            BuildEvent::Cached { id } => {
                if let Some(entry) = bars.get_mut(&id) {
                    entry.2 = true;
                }
            }
            BuildEvent::Imported { id, from } => {
                if self.explain {
                    let _ = self
                        .multi
                        .println(format!("#{id} cache hit: imported from {from}"));
                }
            }
            BuildEvent::Explain { id, reason } => {
                if self.explain {
                    let _ = self.multi.println(format!("#{id} cache miss: {reason}"));
                }
            }
            BuildEvent::Output { id, line } => {
                // The step's output scrolls above the live lines.
                let _ = self.multi.println(format!("#{id} {line}"));
            }
            BuildEvent::Warning(_) => {}
            BuildEvent::Done { id, seconds } => {
                if let Some((bar, line, cached)) = bars.remove(&id) {
                    if let Ok(style) = ProgressStyle::with_template("{msg}") {
                        bar.set_style(style);
                    }
                    let how = if cached {
                        "CACHED".to_string()
                    } else {
                        format!("DONE {seconds:.1}s")
                    };
                    bar.finish_with_message(format!("{line}  {how}"));
                }
            }
        }
    }
}
