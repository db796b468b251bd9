//! One module per subcommand.

pub mod graph;
pub mod input;
pub mod parse;
