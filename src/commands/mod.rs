//! One module per subcommand (or family of subcommands).

pub mod annotations;
pub mod archive;
pub mod build;
pub mod build_cache;
pub mod build_flags;
pub mod build_input;
pub mod call;
pub mod completion;
pub mod docs_reference;
pub mod export;
pub mod graph;
pub mod images;
pub mod input;
pub mod notices;
pub mod parse;
pub mod progress;
pub mod registry;
pub mod store;
