//! The index files of a `docker save` tarball, which `docker load` reads:
//! `manifest.json` (`[{"Config": ..., "RepoTags": [...], "Layers": [...]}]`,
//! paths inside the tarball) and the legacy `repositories`
//! (`{"name": {"tag": "<top layer id>"}}`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ImageError;
use super::canonical::Document;
use super::descriptor::Descriptor;
use super::serde_util::{self, Extra, nullable};
use crate::digest::Digest;

/// `manifest.json`: one entry per image in the tarball.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ArchiveManifest(pub Vec<ArchiveEntry>);

impl Document for ArchiveManifest {
    const KIND: &'static str = "docker archive manifest.json";
}

/// One image of a `docker save` tarball.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ArchiveEntry {
    /// Path of the config blob in the tarball (`blobs/sha256/<hex>` or,
    /// from older Docker, `<hex>.json`).
    #[serde(rename = "Config")]
    pub config: String,
    /// `name:tag` references; written as `[]` when untagged (Docker writes
    /// `null`; both load).
    #[serde(rename = "RepoTags", default, deserialize_with = "nullable")]
    pub repo_tags: Vec<String>,
    /// Paths of the layer tarballs, bottom first.
    #[serde(rename = "Layers", default, deserialize_with = "nullable")]
    pub layers: Vec<String>,
    /// Image id of the parent (classic builder images only).
    #[serde(rename = "Parent", default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// Descriptors of foreign layers, by diff id.
    #[serde(
        rename = "LayerSources",
        default,
        deserialize_with = "nullable",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub layer_sources: BTreeMap<Digest, Descriptor>,
    #[serde(flatten, serialize_with = "serde_util::extra")]
    pub extra: Extra,
}

/// The legacy `repositories` file: repository name → tag → top layer id.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Repositories(pub BTreeMap<String, BTreeMap<String, String>>);

impl Document for Repositories {
    const KIND: &'static str = "docker archive repositories";
}

impl Repositories {
    /// Record `repo_tag` (`name:tag`, the name may hold a registry port)
    /// as pointing at `layer_id`.
    pub fn insert(
        &mut self,
        repo_tag: &str,
        layer_id: impl Into<String>,
    ) -> Result<(), ImageError> {
        let (name, tag) = split_repo_tag(repo_tag)
            .ok_or_else(|| ImageError::InvalidRepoTag(repo_tag.to_string()))?;
        self.0
            .entry(name.to_string())
            .or_default()
            .insert(tag.to_string(), layer_id.into());
        Ok(())
    }
}

/// `("localhost:5000/app", "1")` from `"localhost:5000/app:1"`; `None`
/// without a tag or with a digest.
pub fn split_repo_tag(repo_tag: &str) -> Option<(&str, &str)> {
    if repo_tag.contains('@') {
        return None;
    }
    let (name, tag) = repo_tag.rsplit_once(':')?;
    if tag.contains('/') || name.is_empty() || tag.is_empty() {
        return None;
    }
    Some((name, tag))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::canonical::{Raw, to_canonical_json};

    const SAVED: &str = r#"[{"Config":"blobs/sha256/5d0da3dc976460b72c77d94c8a1ad043720b0416bfc16c52c45d4847e53fadb6",
        "RepoTags":["alpine:3.20","localhost:5000/team/app:v1"],
        "Layers":["blobs/sha256/94e5f06ff8e3d4441dc3cd8b090ff38dc911bfa8ebdb0dc28395bc98f82f983f"],
        "LayerSources":{"sha256:94e5f06ff8e3d4441dc3cd8b090ff38dc911bfa8ebdb0dc28395bc98f82f983f":
          {"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","size":10,
           "digest":"sha256:a3ed95caeb02ffe68cdd9fd84406680ae93d633cb16422d00e8a7c22955b46d4",
           "urls":["https://example.com/layer"]}}},
        {"Config":"0123.json","RepoTags":null,"Layers":["abc/layer.tar"],"Parent":"sha256:0000","X":1}]"#;

    #[test]
    fn image_docker_archive_manifest_round_trips() {
        let raw = Raw::<ArchiveManifest>::parse(SAVED.as_bytes()).unwrap();
        let entries = &raw.value().0;
        assert_eq!(entries.len(), 2);
        assert_eq!(
            entries[0].repo_tags,
            ["alpine:3.20", "localhost:5000/team/app:v1"]
        );
        assert_eq!(entries[0].layer_sources.len(), 1);
        assert!(entries[1].repo_tags.is_empty());
        assert_eq!(entries[1].parent.as_deref(), Some("sha256:0000"));
        let out = String::from_utf8(to_canonical_json(raw.value()).unwrap()).unwrap();
        assert!(out.starts_with(r#"[{"Config":"blobs/sha256/5d0d"#), "{out}");
        assert!(
            out.contains(
                r#""RepoTags":[],"Layers":["abc/layer.tar"],"Parent":"sha256:0000","X":1}"#
            ),
            "{out}"
        );
        let back = Raw::<ArchiveManifest>::parse(out.into_bytes()).unwrap();
        assert_eq!(back.value(), raw.value());
    }

    #[test]
    fn image_docker_archive_repositories() {
        let mut r = Repositories::default();
        r.insert("alpine:3.20", "94e5").unwrap();
        r.insert("localhost:5000/team/app:v1", "94e5").unwrap();
        r.insert("alpine:latest", "94e5").unwrap();
        let out = String::from_utf8(to_canonical_json(&r).unwrap()).unwrap();
        assert_eq!(
            out,
            r#"{"alpine":{"3.20":"94e5","latest":"94e5"},"localhost:5000/team/app":{"v1":"94e5"}}"#
        );
        assert_eq!(
            Raw::<Repositories>::parse(out.into_bytes())
                .unwrap()
                .value(),
            &r
        );
        for bad in ["alpine", "localhost:5000/app", "a@sha256:00", ":x", "a:"] {
            let err = r.insert(bad, "x").unwrap_err();
            assert!(err.to_string().contains(bad), "{err}");
        }
    }
}
