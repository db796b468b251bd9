//! The `oci-layout` file at the root of an OCI image layout
//! (`{"imageLayoutVersion":"1.0.0"}`); the layout's `index.json` is an
//! [`super::Index`].

use serde::{Deserialize, Serialize};

use super::canonical::Document;
use super::serde_util::{self, Extra};

/// The version hoist writes.
pub const IMAGE_LAYOUT_VERSION: &str = "1.0.0";

/// Name of the file.
pub const OCI_LAYOUT_FILE: &str = "oci-layout";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OciLayout {
    #[serde(rename = "imageLayoutVersion")]
    pub image_layout_version: String,
    #[serde(flatten, serialize_with = "serde_util::extra")]
    pub extra: Extra,
}

impl Default for OciLayout {
    fn default() -> OciLayout {
        OciLayout {
            image_layout_version: IMAGE_LAYOUT_VERSION.to_string(),
            extra: Extra::new(),
        }
    }
}

impl Document for OciLayout {
    const KIND: &'static str = "oci-layout";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::canonical::to_canonical_json;

    #[test]
    fn image_oci_layout_bytes() {
        let bytes = to_canonical_json(&OciLayout::default()).unwrap();
        assert_eq!(bytes, br#"{"imageLayoutVersion":"1.0.0"}"#);
    }
}
