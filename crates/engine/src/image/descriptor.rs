//! Content descriptors (`mediaType`, `digest`, `size`, ...) and the
//! platform an index entry is for, with the OCI JSON names (`os.version`,
//! `os.features`). Fields are written in the order of the OCI Go structs.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::ImageError;
use super::serde_util::{self, Extra, nullable};
use crate::digest::Digest;

/// A reference to content by digest, with its size and media type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub urls: Vec<String>,
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub annotations: BTreeMap<String, String>,
    /// Embedded content, base64, as the spec has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    #[serde(
        rename = "artifactType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub artifact_type: Option<String>,
    /// Fields this type does not know, written back as they were.
    #[serde(flatten, serialize_with = "serde_util::extra")]
    pub extra: Extra,
}

impl Descriptor {
    pub fn new(media_type: impl Into<String>, digest: Digest, size: u64) -> Descriptor {
        Descriptor {
            media_type: media_type.into(),
            digest,
            size,
            urls: Vec::new(),
            annotations: BTreeMap::new(),
            data: None,
            platform: None,
            artifact_type: None,
            extra: Extra::new(),
        }
    }

    pub fn with_platform(mut self, platform: Platform) -> Descriptor {
        self.platform = Some(platform);
        self
    }

    pub fn with_annotation(
        mut self,
        key: impl Into<String>,
        value: impl Into<String>,
    ) -> Descriptor {
        self.annotations.insert(key.into(), value.into());
        self
    }
}

/// The platform an image is built for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(
        rename = "os.features",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub os_features: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Docker manifest lists' (and early OCI's) CPU `features`.
    #[serde(
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub features: Vec<String>,
    #[serde(flatten, serialize_with = "serde_util::extra")]
    pub extra: Extra,
}

impl Platform {
    /// `os/architecture[/variant]`, as given (not normalised).
    pub fn new(os: &str, architecture: &str, variant: Option<&str>) -> Platform {
        Platform {
            architecture: architecture.to_string(),
            os: os.to_string(),
            variant: variant.filter(|v| !v.is_empty()).map(str::to_string),
            ..Platform::default()
        }
    }

    /// The variant, `""` when unset.
    pub fn variant_str(&self) -> &str {
        self.variant.as_deref().unwrap_or("")
    }
}

/// `os/arch[/variant]`, each part non-empty; no host defaults are guessed.
impl FromStr for Platform {
    type Err = ImageError;

    fn from_str(s: &str) -> Result<Platform, ImageError> {
        let parts: Vec<&str> = s.split('/').collect();
        if parts.iter().any(|p| p.is_empty()) {
            return Err(ImageError::InvalidPlatform(s.to_string()));
        }
        match parts.as_slice() {
            [os, arch] => Ok(Platform::new(os, arch, None)),
            [os, arch, variant] => Ok(Platform::new(os, arch, Some(variant))),
            _ => Err(ImageError::InvalidPlatform(s.to_string())),
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = self.variant.as_deref().filter(|v| !v.is_empty()) {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn image_descriptor_uses_oci_names_and_keeps_unknown_fields() {
        let text = r#"{"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "digest":"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "size":0,"platform":{"architecture":"amd64","os":"windows",
            "os.version":"10.0.17763.1","os.features":["win32k"],"x-cpu":{"z":1,"a":2}},
            "x-extra":[{"b":1,"a":2}],"annotations":null}"#;
        let d: Descriptor = serde_json::from_str(text).unwrap();
        let p = d.platform.as_ref().unwrap();
        assert_eq!(p.os_version.as_deref(), Some("10.0.17763.1"));
        assert_eq!(p.os_features, ["win32k"]);
        assert!(d.annotations.is_empty());
        let out = serde_json::to_string(&d).unwrap();
        assert!(
            out.contains(r#""os.version":"10.0.17763.1","os.features":["win32k"]"#),
            "{out}"
        );
        // unknown fields survive, with nested keys sorted
        assert!(out.contains(r#""x-cpu":{"a":2,"z":1}"#), "{out}");
        assert!(out.contains(r#""x-extra":[{"a":2,"b":1}]"#), "{out}");
        assert!(!out.contains("annotations"), "{out}");
        let back: Descriptor = serde_json::from_str(&out).unwrap();
        assert_eq!(back, d);
    }

    #[test]
    fn image_descriptor_field_order_follows_the_spec() {
        let d = Descriptor::new("a/b", Digest::of(b"x"), 1)
            .with_annotation("k", "v")
            .with_platform(Platform::new("linux", "arm", Some("v7")));
        let v = serde_json::to_value(&d).unwrap();
        assert_eq!(
            v["platform"],
            json!({"architecture": "arm", "os": "linux", "variant": "v7"})
        );
        let s = serde_json::to_string(&d).unwrap();
        let order: Vec<usize> = ["mediaType", "digest", "size", "annotations", "platform"]
            .iter()
            .map(|k| s.find(&format!("\"{k}\"")).unwrap())
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{s}");
    }

    #[test]
    fn image_platform_parses_and_prints() {
        let p: Platform = "linux/arm64/v8".parse().unwrap();
        assert_eq!(
            (p.os.as_str(), p.architecture.as_str(), p.variant_str()),
            ("linux", "arm64", "v8")
        );
        assert_eq!(p.to_string(), "linux/arm64/v8");
        assert_eq!(
            "linux/amd64".parse::<Platform>().unwrap().to_string(),
            "linux/amd64"
        );
        for bad in ["", "linux", "linux//amd64", "a/b/c/d", "linux/amd64/"] {
            assert!(bad.parse::<Platform>().is_err(), "{bad}");
        }
    }
}
