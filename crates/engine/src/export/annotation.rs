//! OCI annotations as buildx and BuildKit's exporters take them:
//! `--annotation [TYPE[,TYPE][\[PLATFORM\]]:]KEY=VALUE` on the command line,
//! `annotation[-TYPE][\[PLATFORM\]].KEY=VALUE` in an `-o` spec. TYPE is
//! `manifest` (the default), `manifest-descriptor` (the manifest's
//! descriptor in an OCI layout's `index.json`), `index` or
//! `index-descriptor`. hoist makes single-platform images (a manifest, no
//! index), so index types are refused as BuildKit refuses them for a
//! single-platform export.

use std::collections::BTreeMap;

use crate::image::{Manifest, Raw};
use crate::store::Store;

/// An `--annotation` or `annotation.*=` value buildx would refuse, in its
/// words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnnotationError {
    /// `--annotation` without `=`.
    #[error("invalid annotation {0:?}, expected key=value")]
    NotKeyValue(String),
    /// An empty key, or one with white space.
    #[error("invalid annotation format, expected <type>:<key>=<value>, got {0:?}")]
    Format(String),
    /// A type list that does not parse.
    #[error("invalid annotation type in {0:?}")]
    TypeList(String),
    /// A type buildx does not know (`--annotation`).
    #[error("unknown annotation type {0:?}")]
    UnknownType(String),
    /// An `-o` attribute `annotation…` that does not parse.
    #[error("invalid annotation option {0:?}")]
    Option(String),
    /// A type buildx does not know (`-o annotation-TYPE.key=`).
    #[error("unrecognized annotation type {0}")]
    UnrecognizedType(String),
    /// `index` or `index-descriptor` for a one-platform image.
    #[error("index annotations not supported for single platform export")]
    IndexOnSinglePlatform,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    Manifest,
    ManifestDescriptor,
    Index,
    IndexDescriptor,
}

impl Kind {
    fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "" | "manifest" => Kind::Manifest,
            "manifest-descriptor" => Kind::ManifestDescriptor,
            "index" => Kind::Index,
            "index-descriptor" => Kind::IndexDescriptor,
            _ => return None,
        })
    }
}

/// One annotation: where it goes, for which platform, the pair.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Annotation {
    pub kind: Kind,
    /// `[os/arch[/variant]]`: only an image of that platform gets it.
    pub platform: Option<String>,
    pub key: String,
    pub value: String,
}

/// buildx's `--annotation` value.
pub fn parse_flag(spec: &str) -> Result<Vec<Annotation>, AnnotationError> {
    let (k, value) = spec
        .split_once('=')
        .ok_or_else(|| AnnotationError::NotKeyValue(spec.to_owned()))?;
    // `TYPES:KEY` unless what is before the first `:` is not a type list
    // (a key may hold `:` itself, as `org.example:thing`).
    let (types, key) = match k.split_once(':') {
        Some((types, key)) if types_and_platform(types).is_some() => (Some(types), key),
        _ => (None, k),
    };
    if key.is_empty() || key.chars().any(char::is_whitespace) {
        return Err(AnnotationError::Format(spec.to_owned()));
    }
    let typed = match types {
        None => vec![(Kind::Manifest, None)],
        Some(t) => {
            types_and_platform(t).ok_or_else(|| AnnotationError::TypeList(spec.to_owned()))??
        }
    };
    Ok(typed
        .into_iter()
        .map(|(kind, platform)| Annotation {
            kind,
            platform,
            key: key.to_string(),
            value: value.to_string(),
        })
        .collect())
}

/// `manifest`, `index,manifest`, `manifest[linux/amd64]`: `None` when it
/// does not look like a type list at all; `Some(Err)` for an unknown type.
#[allow(clippy::type_complexity)]
fn types_and_platform(s: &str) -> Option<Result<Vec<(Kind, Option<String>)>, AnnotationError>> {
    let mut out = Vec::new();
    for part in s.split(',') {
        let (name, platform) = match part.split_once('[') {
            Some((name, rest)) => (name, Some(rest.strip_suffix(']')?)),
            None => (part, None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_lowercase() || c == '-') {
            return None;
        }
        let Some(kind) = Kind::parse(name) else {
            return Some(Err(AnnotationError::UnknownType(name.to_owned())));
        };
        if let Some(p) = platform
            && (p.is_empty()
                || !p
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '/' | '-')))
        {
            return None;
        }
        out.push((kind, platform.map(str::to_string)));
    }
    Some(Ok(out))
}

/// An `-o` attribute `annotation[-TYPE][\[PLATFORM\]].KEY`; `None` when the
/// attribute is not an annotation.
pub fn parse_attr(attr: &str, value: &str) -> Option<Result<Annotation, AnnotationError>> {
    let rest = attr.strip_prefix("annotation")?;
    if !rest.starts_with(['.', '-', '[']) {
        return None;
    }
    let bad = || AnnotationError::Option(attr.to_owned());
    let (head, key) = match rest.find(['.']) {
        // The first `.` after any `[platform]`.
        _ if rest.contains('[') => {
            let close = rest.find(']')?;
            let dot = rest[close..].find('.').map(|i| close + i)?;
            (&rest[..dot], &rest[dot + 1..])
        }
        Some(dot) => (&rest[..dot], &rest[dot + 1..]),
        None => return Some(Err(bad())),
    };
    let head = head.strip_prefix('-').unwrap_or(head);
    let (name, platform) = match head.split_once('[') {
        Some((n, p)) => match p.strip_suffix(']') {
            Some(p) => (n, Some(p.to_string())),
            None => return Some(Err(bad())),
        },
        None => (head, None),
    };
    let Some(kind) = Kind::parse(name) else {
        return Some(Err(AnnotationError::UnrecognizedType(name.to_owned())));
    };
    if key.is_empty() {
        return Some(Err(bad()));
    }
    Some(Ok(Annotation {
        kind,
        platform,
        key: key.to_string(),
        value: value.to_string(),
    }))
}

/// BuildKit's refusal for an image without an index.
pub fn check_single_platform(annotations: &[Annotation]) -> Result<(), AnnotationError> {
    if annotations
        .iter()
        .any(|a| matches!(a.kind, Kind::Index | Kind::IndexDescriptor))
    {
        return Err(AnnotationError::IndexOnSinglePlatform);
    }
    Ok(())
}

/// The annotations of `kind` that apply to an image of `platform`
/// (`os/arch[/variant]`): unqualified ones and those naming it.
pub fn select(annotations: &[Annotation], kind: Kind, platform: &str) -> BTreeMap<String, String> {
    let norm = |p: &str| {
        hoist_dockerfile::Platform::parse(p)
            .map(|p| p.to_string())
            .unwrap_or_else(|_| p.to_string())
    };
    let ours = norm(platform);
    annotations
        .iter()
        .filter(|a| a.kind == kind)
        .filter(|a| a.platform.as_deref().is_none_or(|p| norm(p) == ours))
        .map(|a| (a.key.clone(), a.value.clone()))
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum AnnotateError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Image(#[from] crate::image::ImageError),
}

/// `manifest` with `annotations` added to its own (a new blob in the
/// store when that changes it; the same manifest otherwise).
pub fn annotate_manifest(
    store: &Store,
    manifest: &Raw<Manifest>,
    annotations: &BTreeMap<String, String>,
) -> Result<Raw<Manifest>, AnnotateError> {
    let mut value = manifest.value().clone();
    let before = value.annotations.clone();
    value.annotations.extend(annotations.clone());
    if value.annotations == before {
        return Ok(manifest.clone());
    }
    let raw = Raw::from_value(value)?;
    store.put_blob_bytes(raw.bytes())?;
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(kind: Kind, platform: Option<&str>, key: &str, value: &str) -> Annotation {
        Annotation {
            kind,
            platform: platform.map(str::to_string),
            key: key.into(),
            value: value.into(),
        }
    }

    #[test]
    fn flags_as_buildx_parses_them() {
        assert_eq!(
            parse_flag("org.opencontainers.image.title=app").unwrap(),
            [one(
                Kind::Manifest,
                None,
                "org.opencontainers.image.title",
                "app"
            )]
        );
        assert_eq!(
            parse_flag("manifest-descriptor:k=v=w").unwrap(),
            [one(Kind::ManifestDescriptor, None, "k", "v=w")]
        );
        assert_eq!(
            parse_flag("index,manifest[linux/amd64]:k=").unwrap(),
            [
                one(Kind::Index, None, "k", ""),
                one(Kind::Manifest, Some("linux/amd64"), "k", "")
            ]
        );
        // A key with a colon that is not a type list.
        assert_eq!(
            parse_flag("com.example:thing=1").unwrap(),
            [one(Kind::Manifest, None, "com.example:thing", "1")]
        );
        assert!(parse_flag("novalue").is_err());
        assert_eq!(
            parse_flag("manifests:k=v").unwrap_err().to_string(),
            "unknown annotation type \"manifests\""
        );
    }

    #[test]
    fn output_attributes_as_buildkit_parses_them() {
        let a = |k: &str| parse_attr(k, "v");
        assert_eq!(a("name"), None);
        assert_eq!(a("annotationx"), None);
        assert_eq!(
            a("annotation.k").unwrap().unwrap(),
            one(Kind::Manifest, None, "k", "v")
        );
        assert_eq!(
            a("annotation-manifest-descriptor.org.k").unwrap().unwrap(),
            one(Kind::ManifestDescriptor, None, "org.k", "v")
        );
        assert_eq!(
            a("annotation-manifest[linux/arm64/v8].k").unwrap().unwrap(),
            one(Kind::Manifest, Some("linux/arm64/v8"), "k", "v")
        );
        assert!(a("annotation-bogus.k").unwrap().is_err());
    }

    #[test]
    fn index_annotations_are_refused_and_platforms_select() {
        let anns = vec![
            one(Kind::Manifest, None, "all", "1"),
            one(Kind::Manifest, Some("linux/amd64"), "amd", "1"),
            one(Kind::Manifest, Some("linux/arm64"), "arm", "1"),
            one(Kind::ManifestDescriptor, None, "desc", "1"),
        ];
        assert!(check_single_platform(&anns).is_ok());
        let m = select(&anns, Kind::Manifest, "linux/amd64");
        assert_eq!(m.keys().collect::<Vec<_>>(), ["all", "amd"]);
        assert!(check_single_platform(&[one(Kind::Index, None, "k", "v")]).is_err());
    }
}
