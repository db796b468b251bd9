//! hoist's engine: everything between a typed Dockerfile and an image on
//! disk or in a registry. See `ARCHITECTURE.md` for the codemap.
//!
//! - [`digest`]: content digests (`sha256:…`) and readers/writers that
//!   compute or verify them while the bytes stream.

pub mod digest;
pub mod layer;
pub mod export;
pub mod import;
pub mod reference;
pub mod registry;
pub mod store;
#[doc(hidden)]
pub mod testing;
pub mod image;
