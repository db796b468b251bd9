//! `--metadata-file`: what buildx writes for a single-platform image.

use std::collections::BTreeMap;

use crate::digest::Digest;
use crate::image::{Manifest, Raw, media_types};

/// `containerimage.digest`, `containerimage.config.digest`,
/// `containerimage.descriptor` (with its descriptor annotations) and,
/// when the build named the image, `image.name` (the names, comma-separated).
pub fn value(
    manifest: &Raw<Manifest>,
    config: &Digest,
    descriptor_annotations: BTreeMap<String, String>,
    names: &[String],
) -> serde_json::Value {
    let mut descriptor = manifest.descriptor(media_types::OCI_MANIFEST);
    descriptor.annotations.extend(descriptor_annotations);
    let mut meta = serde_json::json!({
        "containerimage.digest": manifest.digest().to_string(),
        "containerimage.config.digest": config.to_string(),
        "containerimage.descriptor": serde_json::to_value(descriptor)
            .unwrap_or(serde_json::Value::Null),
    });
    if !names.is_empty() {
        meta["image.name"] = serde_json::Value::String(names.join(","));
    }
    meta
}
