//! `hoist build --cache-to/--cache-from`: the specs (buildx syntax) and the
//! summary line; importing, fetching and exporting are the engine's
//! (`hoist_engine::request::cache`).

use anyhow::Result;
use hoist_engine::cache::CacheSpec;

/// The parsed `--cache-to` values (`type=inline` among them).
pub fn exports(values: &[String]) -> Result<Vec<CacheSpec>> {
    Ok(values
        .iter()
        .map(|v| CacheSpec::parse(v, true))
        .collect::<Result<_, _>>()?)
}

/// The parsed `--cache-from` values.
pub fn imports(values: &[String]) -> Result<Vec<CacheSpec>> {
    Ok(values
        .iter()
        .map(|v| CacheSpec::parse(v, false))
        .collect::<Result<_, _>>()?)
}

/// What the imported caches gave: steps answered, and what was fetched.
pub fn summary(result: &hoist_engine::request::BuildResult) -> Option<String> {
    let (blobs, bytes) = result.fetched?;
    Some(format!(
        "imported cache: {} steps hit, {blobs} blobs fetched ({bytes} bytes)",
        result.imported
    ))
}
