//! hoist's engine: everything between a typed Dockerfile and an image on
//! disk or in a registry. See `ARCHITECTURE.md` for the codemap.
//!
//! - [`digest`]: content digests (`sha256:…`) and readers/writers that
//!   compute or verify them while the bytes stream.
//! - [`image`]: OCI/Docker documents, canonical JSON, raw-byte documents.
//! - [`layer`]: layer tars in (contained unpacker) and out (writer).
//! - [`store`]: the local store.
//! - [`reference`], [`registry`]: image names and the registry client.
//! - [`transfer`]: pull and push between registry and store.
//! - [`export`], [`import`]: outputs (`-o`) and `hoist load`.
//! - [`plan`] (Dockerfile → step graph), [`solve`] (schedules a step
//!   graph, knows no Dockerfile), [`executor`] (executes the steps' ops).

// Only the CLI prints: library code reports through values (errors,
// progress events, notices). Checked by clippy (`-D warnings`).
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod cache;
pub mod config_file;
pub mod context;
pub mod digest;
pub mod executor;
pub mod export;
pub(crate) mod gomatch;
pub mod image;
pub mod import;
pub mod inventory;
pub mod layer;
pub mod ops;
pub mod plan;
pub mod reference;
pub mod registry;
pub mod request;
pub mod runtime;
pub mod solve;
pub mod store;
#[doc(hidden)]
pub mod testing;
pub mod transfer;
