//! The views of `hoist build --progress` (buildx's modes):
//!
//! - [`tty`]: a frame redrawn in place, as buildx's: a line for each step
//!   (`CACHED`, `DONE` and its time when over), the running steps' last
//!   lines of output under them, a failed step's output kept after it;
//! - [`plain`]: lines as BuildKit's plain printer, `#5 0.213 output`;
//! - [`rawjson`]: BuildKit's `SolveStatus` objects, one a line;
//! - quiet: nothing.
//!
//! The engine reports events ([`BuildEvent`]); each view takes its own
//! timestamps as they arrive. A failed step is the one still open when
//! the build fails ([`View::finish`]).

mod plain;
mod rawjson;
mod time;
mod tty;

use std::io::IsTerminal;

use hoist_engine::executor::{BuildError, BuildEvent, BuildProgress};

/// The view `--progress` asked for.
pub enum View {
    Tty(tty::Tty),
    Plain(plain::Plain),
    RawJson(rawjson::RawJson),
    Quiet,
}

impl View {
    /// `auto` is `tty` when stderr is a terminal, else `plain` (buildx).
    pub fn new(mode: &str, explain: bool) -> anyhow::Result<View> {
        let on_terminal = std::io::stderr().is_terminal();
        Ok(match mode {
            "quiet" => View::Quiet,
            "tty" => View::Tty(tty::Tty::new(explain, on_terminal)),
            "auto" if on_terminal => View::Tty(tty::Tty::new(explain, true)),
            "auto" | "plain" => View::Plain(plain::Plain::new(explain)),
            "rawjson" => View::RawJson(rawjson::RawJson::new(explain)),
            other => {
                anyhow::bail!("unknown --progress {other:?} (auto, tty, plain, rawjson, quiet)")
            }
        })
    }

    /// The build is over; `error` is why it failed, and the steps still
    /// open failed with it.
    pub fn finish(&self, error: Option<&BuildError>) {
        let error = error.map(step_error);
        match self {
            View::Tty(v) => v.finish(error.as_deref()),
            View::Plain(v) => v.finish(error.as_deref()),
            View::RawJson(v) => v.finish(error.as_deref()),
            View::Quiet => {}
        }
    }

    /// What the build did after its steps (`writing image … done`,
    /// `naming to … done`): on stderr, or in rawjson the statuses of an
    /// `exporting to image` vertex (nothing but JSON on that stream).
    pub fn summary(&self, lines: &[String]) {
        match self {
            View::RawJson(v) => v.summary(lines),
            _ => {
                for line in lines {
                    eprintln!("{line}");
                }
            }
        }
    }
}

impl BuildProgress for View {
    fn event(&self, e: BuildEvent) {
        match self {
            View::Tty(v) => v.event(e),
            View::Plain(v) => v.event(e),
            View::RawJson(v) => v.event(e),
            View::Quiet => {}
        }
    }
}

/// The Dockerfile's warnings: on stderr, or in rawjson as
/// `SolveStatus.warnings` (nothing but JSON on that stream).
pub fn warn(mode: &str, src: &super::input::Source, warnings: &[hoist_dockerfile::Warning]) {
    if mode == "rawjson" {
        rawjson::warnings(warnings);
    } else {
        src.warn(warnings);
    }
}

/// A failed step's error as its vertex carries it: without the Dockerfile
/// line (the build's own error says it), first line only (the output the
/// views kept follows).
fn step_error(e: &BuildError) -> String {
    let inner = match e {
        BuildError::At { source, .. } => source.as_ref(),
        e => e,
    };
    inner.to_string().lines().next().unwrap_or("").to_string()
}

/// Whether a step's error is an interrupt (Ctrl-C): buildx shows such a
/// step `CANCELED`, not `ERROR`, and reports no output for it.
fn cancelled(error: &str) -> bool {
    error == "cancelled"
}

/// A step's name in every view: `[stage] TEXT`, the text's first line
/// (a heredoc's body is not part of it).
fn step_name(stage: &str, text: &str) -> String {
    format!("[{stage}] {}", text.lines().next().unwrap_or("").trim_end())
}

/// Seconds since a step started, as BuildKit prefixes its output lines:
/// three decimals under 10 s, two under 100 s, then one (`0.213`, `12.34`).
fn log_seconds(seconds: f64) -> String {
    let precision = if seconds < 10.0 {
        3
    } else if seconds < 100.0 {
        2
    } else {
        1
    };
    format!("{seconds:.precision$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_seconds_narrow_as_they_grow() {
        assert_eq!(log_seconds(0.2134), "0.213");
        assert_eq!(log_seconds(12.345), "12.35");
        assert_eq!(log_seconds(123.45), "123.5");
    }

    #[test]
    fn a_step_is_named_by_its_first_line() {
        assert_eq!(
            step_name("stage-0", "RUN <<EOF\necho hi\nEOF"),
            "[stage-0] RUN <<EOF"
        );
    }

    #[test]
    fn a_failed_step_says_its_error_without_the_line() {
        let e = BuildError::RunFailed {
            command: "/bin/sh -c false".into(),
            code: 1,
            tail: vec!["out".into()],
        }
        .at_step(
            hoist_engine::executor::SourceRange {
                line: 3,
                column: 1,
                end_line: 3,
            },
            "stage-0",
            "RUN false",
        );
        assert_eq!(
            step_error(&e),
            "process \"/bin/sh -c false\" did not complete successfully: exit code: 1"
        );
    }
}
