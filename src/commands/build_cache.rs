//! `hoist build --cache-to/--cache-from`: parse the specs, import before
//! the build (a cache that cannot be read is a warning, as with buildx),
//! fetch what a local output needs, export after the outputs.

use std::sync::Arc;

use anyhow::Result;
use hoist_engine::cache::{CacheSpec, ImportedCache, Location};
use hoist_engine::executor::BuildResult;
use hoist_engine::image::Platform;
use hoist_engine::registry::Client;
use hoist_engine::store::Store;

/// The parsed `--cache-to` values; `inline` when one is `type=inline`.
pub struct Exports {
    pub specs: Vec<CacheSpec>,
    pub inline: bool,
}

pub fn exports(values: &[String]) -> Result<Exports> {
    let mut specs = Vec::new();
    let mut inline = false;
    for v in values {
        let spec = CacheSpec::parse(v, true)?;
        if spec.location == Location::Inline {
            inline = true;
        } else {
            specs.push(spec);
        }
    }
    Ok(Exports { specs, inline })
}

/// Read every `--cache-from`; one that cannot be read is skipped with a
/// warning (a first CI run has no cache yet).
pub fn import_all(
    store: &Store,
    client: &Client,
    values: &[String],
    platform: &Platform,
    quiet: bool,
) -> Result<Vec<Arc<ImportedCache>>> {
    let mut out = Vec::new();
    let runtime = super::registry::runtime()?.handle();
    for v in values {
        let spec = CacheSpec::parse(v, false)?;
        match hoist_engine::cache::import(store, client, &spec, platform, runtime) {
            Ok(cache) => {
                if !quiet {
                    eprintln!(
                        "importing cache {}: {} step records",
                        cache.name,
                        cache.len()
                    );
                }
                out.push(Arc::new(cache));
            }
            Err(e) => eprintln!("warning: {e} (building without it)"),
        }
    }
    Ok(out)
}

/// Fetch the image's layers that only an imported cache has, so the
/// image can be named in (or exported from) the store.
pub fn fetch_layers(store: &Store, result: &BuildResult) -> Result<()> {
    for layer in &result.manifest.value().layers {
        if !store.ensure_blob(&layer.digest)? {
            anyhow::bail!("layer {} is not in the store", layer.digest);
        }
    }
    Ok(())
}

pub fn export_all(
    store: &Store,
    client: &Client,
    exports: &Exports,
    result: &BuildResult,
    quiet: bool,
) -> Result<()> {
    let runtime = super::registry::runtime()?.handle();
    for spec in &exports.specs {
        let report = hoist_engine::cache::export(store, client, spec, &result.cache, runtime)?;
        if !quiet {
            eprintln!(
                "exporting cache {}: {} step records, {} layers, {} cache mounts done",
                spec.describe(),
                report.steps,
                report.layers,
                report.mounts
            );
        }
    }
    Ok(())
}

/// What the imported caches gave: steps answered, and what was fetched.
pub fn summary(imports: &[Arc<ImportedCache>], result: &BuildResult) -> Option<String> {
    if imports.is_empty() {
        return None;
    }
    let (mut blobs, mut bytes) = (0, 0);
    for c in imports {
        blobs += c
            .fetcher
            .fetched_blobs
            .load(std::sync::atomic::Ordering::SeqCst);
        bytes += c
            .fetcher
            .fetched_bytes
            .load(std::sync::atomic::Ordering::SeqCst);
    }
    Some(format!(
        "imported cache: {} steps hit, {blobs} blobs fetched ({bytes} bytes)",
        result.imported
    ))
}

/// How many of the image's layers the store has not fetched.
pub fn unfetched(store: &Store, result: &BuildResult) -> Result<usize> {
    let mut n = 0;
    for layer in &result.manifest.value().layers {
        if !store.has_blob(&layer.digest)? {
            n += 1;
        }
    }
    Ok(n)
}

/// `--push` of an image whose layers are partly only in an imported
/// cache: pushed from the store's manifest without fetching them (a layer
/// is mounted from the cache's repository on the same registry, else
/// fetched and uploaded). The tags are not set in the local store, which
/// never names an image it lacks layers of (as `buildx --push` with a
/// container driver loads nothing locally).
pub fn push_lazily(
    store: &Store,
    client: &Client,
    manifest: &hoist_engine::image::Raw<hoist_engine::image::Manifest>,
    tags: &[String],
    quiet: bool,
) -> Result<()> {
    let rt = super::registry::runtime()?;
    for tag in tags {
        let full = super::images::store_name(tag)?;
        let dest = hoist_engine::reference::Reference::parse(&full)?;
        let report = rt.block_on(hoist_engine::transfer::push_digest(
            client,
            store,
            manifest.digest(),
            hoist_engine::image::media_types::OCI_MANIFEST,
            None,
            &dest,
            &hoist_engine::registry::Progress::none(),
        ))?;
        if !quiet {
            eprintln!(
                "pushed {full} {} ({} blobs uploaded, {} mounted, {} already there; not named in the local store: its layers stay in the registry)",
                report.digest,
                report.uploaded.len(),
                report.mounted.len(),
                report.skipped.len()
            );
        }
    }
    Ok(())
}
