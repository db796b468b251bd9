//! hoist's Dockerfile front end: text → [`Ast`] → typed [`Dockerfile`] →
//! [`StageGraph`]. Pure: no I/O, no knowledge of images or Linux.
//!
//! The pipeline, one module per step:
//! - [`directive`]: parser directives at the top (`syntax`, `escape`, `check`);
//! - [`parser`] with [`heredoc`] and [`line_parsers`]: BuildKit's
//!   line-oriented parser, producing an untyped [`Ast`];
//! - [`expand`]: BuildKit's shell-word expansion (`${V:-x}` and friends);
//! - [`instruction`] with [`flags`]: typed instructions with spans;
//! - [`stage`]: stages, `ARG` scoping and the predefined platform args;
//! - [`graph`]: the stage DAG, `--target` selection, cycles;
//! - [`outline`]: what `--call=outline|targets` reports (args, secrets, stages);
//! - [`limits`]: the bounds on what a hostile Dockerfile can make it do.

// Only the CLI prints: library code reports through values (errors,
// progress events, notices). Checked by clippy (`-D warnings`).
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod ast;
pub mod directive;
pub mod duration;
pub mod error;
pub mod expand;
pub mod flags;
pub mod graph;
pub mod heredoc;
pub mod instruction;
pub mod limits;
pub mod line_parsers;
pub mod mount;
pub mod outline;
pub mod parser;
pub mod platform;
pub mod stage;
pub mod vars;

pub use ast::{Ast, Heredoc, Node, Pos, Span, Warning};
pub use error::{Error, Result};
pub use graph::StageGraph;
pub use instruction::{Command, Instruction};
pub use parser::parse;
pub use platform::Platform;
pub use stage::{BuildOptions, Dockerfile, GlobalScope, Stage, StageScope};

/// Parse and type a Dockerfile: [`parse`] then [`Dockerfile::from_ast`].
pub fn load(text: &str) -> Result<Dockerfile> {
    Dockerfile::from_ast(&parse(text)?)
}
