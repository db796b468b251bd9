//! Exporters: where a built or stored image goes. [`spec`] parses
//! `-o/--output` in `docker buildx` syntax.

pub mod annotation;
pub mod archive;
pub mod daemon;
pub mod filesystem;
pub mod recompress;
pub mod spec;

pub use spec::{Compression, Dest, OutputKind, OutputSpec};
