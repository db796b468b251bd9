//! `--cache-from` and `--cache-to` around a build: import before (a cache
//! that cannot be read is a notice, as buildx warns and builds without
//! it), fetch the layers a local name or output needs, export after the
//! outputs.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{Notice, Report, RequestError};
use crate::cache::{CacheSpec, ImportedCache};
use crate::image::{Manifest, Platform, Raw};
use crate::registry::Client;
use crate::store::Store;

/// Read every `--cache-from`; one that cannot be read is skipped (a first
/// CI run has no cache yet) with a notice.
pub fn import_all(
    store: &Store,
    client: &Client,
    specs: &[CacheSpec],
    platform: &Platform,
    runtime: &crate::runtime::Handle,
    report: &dyn Report,
) -> Vec<Arc<ImportedCache>> {
    let mut out = Vec::new();
    for spec in specs {
        match crate::cache::import(store, client, spec, platform, runtime) {
            Ok(cache) => {
                report.notice(Notice::CacheImported {
                    name: cache.name.clone(),
                    records: cache.len(),
                });
                out.push(Arc::new(cache));
            }
            Err(e) => report.notice(Notice::CacheUnreadable(e)),
        }
    }
    out
}

/// Fetch the image's layers that only an imported cache has, so the
/// image can be named in (or exported from) the store.
pub fn fetch_layers(store: &Store, manifest: &Raw<Manifest>) -> Result<(), RequestError> {
    for layer in &manifest.value().layers {
        if !store.ensure_blob(&layer.digest)? {
            return Err(RequestError::LayerMissing(layer.digest.clone()));
        }
    }
    Ok(())
}

/// How many of the image's layers the store has not fetched.
pub fn unfetched(store: &Store, manifest: &Raw<Manifest>) -> Result<usize, RequestError> {
    let mut n = 0;
    for layer in &manifest.value().layers {
        if !store.has_blob(&layer.digest)? {
            n += 1;
        }
    }
    Ok(n)
}

/// Export the build's cache records to every `--cache-to` (but inline).
pub fn export_all(
    store: &Store,
    client: &Client,
    specs: &[CacheSpec],
    cache: &crate::cache::BuildCache,
    runtime: &crate::runtime::Handle,
    report: &dyn Report,
) -> Result<(), RequestError> {
    for spec in specs {
        let exported = crate::cache::export(store, client, spec, cache, runtime)?;
        report.notice(Notice::CacheExported {
            cache: spec.describe(),
            report: exported,
        });
    }
    Ok(())
}

/// What the imported caches fetched: blobs and bytes.
pub fn fetched(imports: &[Arc<ImportedCache>]) -> (u64, u64) {
    let (mut blobs, mut bytes) = (0, 0);
    for c in imports {
        blobs += c.fetcher.fetched_blobs.load(Ordering::SeqCst) as u64;
        bytes += c.fetcher.fetched_bytes.load(Ordering::SeqCst);
    }
    (blobs, bytes)
}
