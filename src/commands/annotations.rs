//! `--annotation` and `-o …,annotation…=` (buildx's syntax, parsed in
//! `hoist_engine::export::annotation`): what they do to an image this
//! command writes.

use std::collections::BTreeMap;

use anyhow::Result;
use hoist_engine::export::annotation::{self, Annotation, Kind};
use hoist_engine::image::{Manifest, Raw};
use hoist_engine::store::Store;

/// `--annotation` values.
pub fn parse_flags(values: &[String]) -> Result<Vec<Annotation>> {
    let mut out = Vec::new();
    for v in values {
        out.extend(annotation::parse_flag(v).map_err(anyhow::Error::msg)?);
    }
    annotation::check_single_platform(&out).map_err(anyhow::Error::msg)?;
    Ok(out)
}

/// The manifest with its annotations added (stored when that changes it),
/// whether it changed, and the annotations for its descriptor.
pub fn apply(
    store: &Store,
    manifest: Raw<Manifest>,
    annotations: &[Annotation],
) -> Result<(Raw<Manifest>, bool, BTreeMap<String, String>)> {
    if annotations.is_empty() {
        return Ok((manifest, false, BTreeMap::new()));
    }
    annotation::check_single_platform(annotations).map_err(anyhow::Error::msg)?;
    let platform = platform_of(store, &manifest)?;
    let on_manifest = annotation::select(annotations, Kind::Manifest, &platform);
    let annotated = annotation::annotate_manifest(store, &manifest, &on_manifest)?;
    let changed = annotated.digest() != manifest.digest();
    let on_descriptor = annotation::select(annotations, Kind::ManifestDescriptor, &platform);
    Ok((annotated, changed, on_descriptor))
}

/// `os/arch[/variant]` from the image's config.
fn platform_of(store: &Store, manifest: &Raw<Manifest>) -> Result<String> {
    let config: serde_json::Value =
        serde_json::from_slice(&store.read_blob_verified(&manifest.value().config.digest)?)?;
    let field = |k: &str| config.get(k).and_then(|v| v.as_str()).unwrap_or("");
    let mut p = format!("{}/{}", field("os"), field("architecture"));
    if !field("variant").is_empty() {
        p.push('/');
        p.push_str(field("variant"));
    }
    Ok(p)
}
