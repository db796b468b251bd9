//! The `tty` view, as buildx's: a frame redrawn in place on stderr,
//!
//! ```text
//! [+] Building 2.4s (4/5)
//!  => [stage-0] FROM docker.io/library/base:1                  DONE 0.0s
//!  => CACHED [stage-0] RUN echo one                                 0.0s
//!  => [stage-0] RUN make                                            1.9s
//!  => => # cc -c main.c
//!  => => # cc -o app main.o
//! ```
//!
//! A finished step keeps its line (`CACHED`, or `DONE` and its time); a
//! running one shows its last lines of output under it; a failed one is
//! `ERROR`, and its output is printed again after the last frame between
//! `------` rules (buildx's error report); an interrupted one is
//! `CANCELED`. Off a terminal (`--progress
//! tty` asked for anyway) only the last frame is printed, without colour.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hoist_engine::executor::BuildEvent;

use super::{cancelled, log_seconds, step_name};

/// Lines of a running step's output shown under it (buildx's 6).
const TAIL: usize = 6;
/// Lines of a step's output kept for its error report.
const KEEP: usize = 200;
/// How often the frame is redrawn while nothing happens (the clocks run).
const TICK: Duration = Duration::from_millis(100);

pub struct Tty {
    shared: Arc<Shared>,
    ticker: Mutex<Option<JoinHandle<()>>>,
}

struct Shared {
    state: Mutex<State>,
    stop: AtomicBool,
}

struct State {
    explain: bool,
    /// Redraw in place (stderr is a terminal); else print the end only.
    live: bool,
    color: bool,
    start: Instant,
    jobs: Vec<Job>,
    index: HashMap<usize, usize>,
    /// Lines the last frame took.
    drawn: usize,
}

struct Job {
    name: String,
    started: Instant,
    /// Seconds it took, once over.
    took: Option<f64>,
    cached: bool,
    failed: bool,
    /// Failed by an interrupt: `CANCELED`, no error report.
    cancelled: bool,
    /// `--explain` lines.
    notes: Vec<String>,
    /// The last lines of output, with their seconds since the start.
    output: VecDeque<(f64, String)>,
}

impl Tty {
    pub fn new(explain: bool, live: bool) -> Tty {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                explain,
                live,
                color: live && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
                start: Instant::now(),
                jobs: Vec::new(),
                index: HashMap::new(),
                drawn: 0,
            }),
            stop: AtomicBool::new(false),
        });
        let ticker = live.then(|| {
            let shared = shared.clone();
            std::thread::spawn(move || {
                while !shared.stop.load(Ordering::SeqCst) {
                    std::thread::sleep(TICK);
                    if shared.stop.load(Ordering::SeqCst) {
                        break;
                    }
                    shared.lock().draw(false);
                }
            })
        });
        Tty {
            shared,
            ticker: Mutex::new(ticker),
        }
    }

    pub fn event(&self, e: BuildEvent) {
        let mut state = self.shared.lock();
        let redraw = !matches!(e, BuildEvent::Output { .. });
        match e {
            // Collected by `build`'s `Warnings` and printed after the build.
            BuildEvent::Warning(_) => {}
            BuildEvent::Step { id, stage, text } => {
                let at = state.jobs.len();
                state.index.insert(id, at);
                state.jobs.push(Job {
                    name: step_name(&stage, &text),
                    started: Instant::now(),
                    took: None,
                    cached: false,
                    failed: false,
                    cancelled: false,
                    notes: Vec::new(),
                    output: VecDeque::new(),
                });
            }
            BuildEvent::Cached { id } => {
                if let Some(job) = state.job(id) {
                    job.cached = true;
                }
            }
            BuildEvent::Imported { id, from } => {
                if state.explain
                    && let Some(job) = state.job(id)
                {
                    job.notes.push(format!("cache hit: imported from {from}"));
                }
            }
            BuildEvent::Explain { id, reason } => {
                if state.explain
                    && let Some(job) = state.job(id)
                {
                    job.notes.push(format!("cache miss: {reason}"));
                }
            }
            BuildEvent::Output { id, line } => {
                if let Some(job) = state.job(id) {
                    if job.output.len() == KEEP {
                        job.output.pop_front();
                    }
                    let at = job.started.elapsed().as_secs_f64();
                    job.output.push_back((at, line));
                }
            }
            BuildEvent::Done { id, seconds } => {
                if let Some(job) = state.job(id) {
                    job.took = Some(seconds);
                }
            }
        }
        if redraw {
            state.draw(false);
        }
    }

    /// The last frame: every step, open ones failed with `error`; then
    /// the failed steps' output, as buildx's error report.
    pub fn finish(&self, error: Option<&str>) {
        self.stop();
        let mut state = self.shared.lock();
        if let Some(error) = error {
            for job in state.jobs.iter_mut().filter(|j| j.took.is_none()) {
                job.took = Some(job.started.elapsed().as_secs_f64());
                job.failed = true;
                job.cancelled = cancelled(error);
            }
        }
        state.draw(true);
        let mut report = String::new();
        for job in state.jobs.iter().filter(|j| j.failed && !j.cancelled) {
            report.push_str("------\n");
            report.push_str(&format!(" > {}:\n", job.name));
            for (at, line) in &job.output {
                report.push_str(&format!("{} {line}\n", log_seconds(*at)));
            }
            report.push_str("------\n");
        }
        let _ = std::io::stderr().lock().write_all(report.as_bytes());
    }

    fn stop(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        let handle = self.ticker.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }
}

impl Drop for Tty {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl State {
    fn job(&mut self, id: usize) -> Option<&mut Job> {
        let i = *self.index.get(&id)?;
        self.jobs.get_mut(i)
    }

    /// Draw the frame over the last one; `last`: every line, nothing
    /// running shown (the build is over).
    fn draw(&mut self, last: bool) {
        if !self.live && !last {
            return;
        }
        let (rows, cols) = console::Term::stderr().size();
        let (rows, cols) = (usize::from(rows).max(4), usize::from(cols).max(20));
        let mut lines = self.frame(cols - 1, last);
        if !last && lines.len() > rows - 1 {
            // As buildx: what does not fit is the oldest, off the top.
            let cut = lines.len() - (rows - 1);
            lines.drain(1..=cut);
        }
        let mut buf = String::new();
        if self.live {
            if self.drawn > 0 {
                buf.push_str(&format!("\x1b[{}A", self.drawn));
            }
            buf.push('\r');
        }
        for (text, paint) in &lines {
            match paint {
                Some(code) if self.color => buf.push_str(&format!("\x1b[{code}m{text}\x1b[0m")),
                _ => buf.push_str(text),
            }
            if self.live {
                buf.push_str("\x1b[K");
            }
            buf.push('\n');
        }
        if self.live {
            buf.push_str("\x1b[J");
        }
        self.drawn = lines.len();
        let _ = std::io::stderr().lock().write_all(buf.as_bytes());
    }

    /// The frame's lines, each at most `width` characters, with the SGR
    /// colour to paint it in.
    fn frame(&self, width: usize, last: bool) -> Vec<(String, Option<&'static str>)> {
        let done = self.jobs.iter().filter(|j| j.took.is_some()).count();
        let over = last && done == self.jobs.len() && !self.jobs.iter().any(|j| j.failed);
        let header = format!(
            "[+] Building {:.1}s ({done}/{}){}",
            self.start.elapsed().as_secs_f64(),
            self.jobs.len(),
            if over { " FINISHED" } else { "" }
        );
        let mut lines = vec![(fit(&header, width), None)];
        for job in &self.jobs {
            let seconds = job
                .took
                .unwrap_or_else(|| job.started.elapsed().as_secs_f64());
            // buildx shows what took under 0.05 s as 0.0 s.
            let seconds = if seconds < 0.05 { 0.0 } else { seconds };
            let (label, right, paint) = match (job.took, job.failed, job.cached) {
                (Some(_), true, _) if job.cancelled => {
                    ("CANCELED ", format!("{seconds:.1}s"), Some("33"))
                }
                (Some(_), true, _) => ("ERROR ", format!("{seconds:.1}s"), Some("31")),
                (Some(_), false, true) => ("CACHED ", format!("{seconds:.1}s"), Some("34")),
                (Some(_), false, false) => ("", format!("DONE {seconds:.1}s"), Some("34")),
                (None, _, _) => ("", format!("{seconds:.1}s"), None),
            };
            lines.push((
                align(&format!(" => {label}{}", job.name), &right, width),
                paint,
            ));
            for note in &job.notes {
                lines.push((fit(&format!(" => => {note}"), width), paint));
            }
            if job.took.is_none() && !last {
                let skip = job.output.len().saturating_sub(TAIL);
                for (_, line) in job.output.iter().skip(skip) {
                    lines.push((fit(&format!(" => => # {line}"), width), Some("2")));
                }
            }
        }
        lines
    }
}

/// `text` cut to `width` characters, tabs as spaces and control
/// characters dropped (a step's output must not move the cursor).
fn fit(text: &str, width: usize) -> String {
    text.chars()
        .map(|c| if c == '\t' { ' ' } else { c })
        .filter(|c| !c.is_control())
        .take(width)
        .collect()
}

/// `left`, cut to leave room, then `right` at the right edge of `width`.
fn align(left: &str, right: &str, width: usize) -> String {
    let room = width.saturating_sub(right.chars().count() + 1);
    let left = fit(left, room);
    let pad = room - left.chars().count();
    format!("{left}{} {right}", " ".repeat(pad))
}

#[cfg(test)]
mod tests {
    use super::{align, fit};

    #[test]
    fn lines_fit_the_width() {
        assert_eq!(align(" => [s] RUN x", "DONE 0.1s", 30).chars().count(), 30);
        assert_eq!(
            align(" => [s] RUN a very long command line", "0.1s", 20),
            " => [s] RUN a v 0.1s"
        );
        assert_eq!(fit("a\tb\x1b[2Jc", 10), "a b[2Jc");
    }
}
