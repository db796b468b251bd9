//! How errors and warnings look on stderr: `file:line:col: error: ...`,
//! the offending line, and a caret under the column.

use std::fmt;

use hoist_dockerfile::{Pos, Warning};

/// An error located in a Dockerfile.
#[derive(Debug)]
pub struct SourceError {
    pub file: String,
    pub pos: Pos,
    pub message: String,
    pub line_text: Option<String>,
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.pos.line == 0 {
            return write!(f, "{}: {}", self.file, self.message);
        }
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.pos.line, self.pos.column, self.message
        )
    }
}

impl std::error::Error for SourceError {}

/// Print an error, with the source line and a caret when it has one.
pub fn error(err: &anyhow::Error) {
    if let Some(se) = err.downcast_ref::<SourceError>() {
        eprintln!("error: {se}");
        if let Some(text) = &se.line_text {
            let gutter = se.pos.line.to_string();
            eprintln!("{} |", " ".repeat(gutter.len()));
            eprintln!("{gutter} | {text}");
            let pad: String = text
                .chars()
                .take(se.pos.column.saturating_sub(1))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            eprintln!("{} | {pad}^", " ".repeat(gutter.len()));
        }
        return;
    }
    eprintln!("error: {}", chain_text(err));
}

/// The error and its causes joined with `: `, as `{:#}` does, but a cause
/// whose text the cause before it already holds is left out: an error whose `Display`
/// includes its source (`io::Error` wrapped with the path, reqwest's
/// errors) would otherwise print the source twice.
pub fn chain_text(err: &anyhow::Error) -> String {
    let mut line = String::new();
    let mut previous = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if text.is_empty() || previous.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
        previous = text;
    }
    line
}

/// Print a warning; warnings never change the exit code.
pub fn warning(file: &str, w: &Warning) {
    if w.line == 0 {
        eprintln!("warning: {file}: {} [{}]", w.message, w.rule);
    } else {
        eprintln!("warning: {file}:{}: {} [{}]", w.line, w.message, w.rule);
    }
}

/// Write to stdout. A reader that went away (`hoist images | head -1`)
/// ends hoist quietly with 141 (128 + SIGPIPE), as a process killed by
/// SIGPIPE would, instead of a panic.
pub fn stdout(args: fmt::Arguments<'_>, newline: bool) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let written = out
        .write_fmt(args)
        .and_then(|()| {
            if newline {
                out.write_all(b"\n")
            } else {
                Ok(())
            }
        })
        .and_then(|()| out.flush());
    match written {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(141),
        Err(e) => {
            eprintln!("hoist: writing to stdout: {e}");
            std::process::exit(1);
        }
    }
}

/// `println!` through [`stdout`].
macro_rules! outln {
    ($($arg:tt)*) => { $crate::report::stdout(format_args!($($arg)*), true) };
}

/// `print!` through [`stdout`].
macro_rules! out {
    ($($arg:tt)*) => { $crate::report::stdout(format_args!($($arg)*), false) };
}

pub(crate) use {out, outln};
