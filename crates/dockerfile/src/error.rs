//! The front end's one error type: every error names the line and column
//! it comes from, so the CLI can print `file:line:col` and a caret.

use crate::ast::Pos;

/// An error in the Dockerfile or in what it asks for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    /// Lower-case message naming the offending instruction, flag or word.
    pub message: String,
    /// Where it is; `line == 0` when the error concerns the file as a whole
    /// (an empty file, an unknown `--target`).
    pub pos: Pos,
}

impl Error {
    pub fn new(message: impl Into<String>, pos: Pos) -> Self {
        Error {
            message: message.into(),
            pos,
        }
    }

    pub fn at_line(message: impl Into<String>, line: usize) -> Self {
        Error::new(message, Pos { line, column: 1 })
    }

    pub fn whole_file(message: impl Into<String>) -> Self {
        Error::new(message, Pos::default())
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
