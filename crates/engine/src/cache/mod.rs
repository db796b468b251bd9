//! The build cache shared between machines: `--cache-to` writes the
//! build's step records and the layers they name to a registry or a
//! directory ([`export`]); `--cache-from` reads them back ([`import`]) so
//! the solver answers steps from them, fetching a layer's bytes only when
//! something reads them ([`fetch`], through the store's lazy blobs). The
//! format is versioned ([`format`]) and documented in `docs/cache.md`.

pub mod export;
pub mod fetch;
pub mod format;
pub mod import;
pub mod spec;

pub use export::{BuildCache, ExportReport, ExportStep, export, inline_config};
pub use import::{ImportedCache, ImportedStep, import};
pub use spec::{CacheSpec, Location, Mode};

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("invalid cache spec {spec:?}: {reason}")]
    Spec { spec: String, reason: String },
    #[error("importing cache {cache}: {source}")]
    Import {
        cache: String,
        #[source]
        source: Box<import::ImportError>,
    },
    #[error("exporting cache {cache}: {source}")]
    Export {
        cache: String,
        #[source]
        source: Box<export::ExportError>,
    },
}
