//! Canonical JSON and [`Raw`] documents.
//!
//! [`to_canonical_json`] is the one way hoist turns an image document into
//! bytes: compact, struct fields in declaration order, map keys sorted (all
//! maps in these types are `BTreeMap`, and unknown fields are written with
//! sorted keys at every depth), strings escaped only where JSON requires
//! (`"`, `\` and control characters; `<`, `>`, `&` and non-ASCII are
//! written as they are, unlike Go's `json.Marshal`).
//!
//! [`Raw`] pairs a parsed value with the exact bytes it came from and their
//! digest: a manifest pulled from a registry keeps the digest the registry
//! served even if hoist would have written it differently.

use std::ops::Deref;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::ImageError;
use super::descriptor::Descriptor;
use crate::digest::Digest;

/// A JSON document type of the image model, named in error messages.
pub trait Document: Serialize + DeserializeOwned {
    /// What it is, lower-case (`"manifest"`, `"image config"`).
    const KIND: &'static str;
}

impl Document for serde_json::Value {
    const KIND: &'static str = "json document";
}

/// Serialise `value` to canonical JSON bytes (see the module docs).
/// Fails only if `value`'s `Serialize` does (none of this module's types do).
///
/// The output is only as canonical as `T`'s maps are ordered: the image
/// types use `BTreeMap` and sort their unknown fields; a bare
/// `serde_json::Value` keeps `serde_json::Map`'s order (sorted unless the
/// `preserve_order` feature is on somewhere in the build).
pub fn to_canonical_json<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, ImageError> {
    serde_json::to_vec(value).map_err(|source| ImageError::Serialise {
        kind: std::any::type_name::<T>(),
        source,
    })
}

/// A parsed document with the bytes it was parsed from and their digest.
/// It cannot be changed in place (that would part value from bytes):
/// take the value out with [`Raw::into_value`] and make a new `Raw`.
#[derive(Debug, Clone, PartialEq)]
pub struct Raw<T> {
    bytes: Vec<u8>,
    digest: Digest,
    value: T,
}

impl<T: Document> Raw<T> {
    /// Parse `bytes`, keeping them exactly as given.
    pub fn parse(bytes: impl Into<Vec<u8>>) -> Result<Raw<T>, ImageError> {
        let bytes = bytes.into();
        let digest = Digest::of(&bytes);
        match serde_json::from_slice(&bytes) {
            Ok(value) => Ok(Raw {
                bytes,
                digest,
                value,
            }),
            Err(source) => Err(ImageError::Parse {
                kind: T::KIND,
                digest,
                source,
            }),
        }
    }

    /// Parse bytes fetched by digest, failing unless they have that digest.
    pub fn parse_verified(
        bytes: impl Into<Vec<u8>>,
        expected: &Digest,
    ) -> Result<Raw<T>, ImageError> {
        let bytes = bytes.into();
        let actual = Digest::of(&bytes);
        if actual != *expected {
            return Err(ImageError::DigestMismatch {
                kind: T::KIND,
                expected: expected.clone(),
                actual,
            });
        }
        Raw::parse(bytes)
    }

    /// Parse the bytes a descriptor points at, checking digest and size.
    pub fn parse_for(
        bytes: impl Into<Vec<u8>>,
        descriptor: &Descriptor,
    ) -> Result<Raw<T>, ImageError> {
        let bytes = bytes.into();
        let actual = bytes.len() as u64;
        if actual != descriptor.size {
            return Err(ImageError::SizeMismatch {
                kind: T::KIND,
                digest: descriptor.digest.clone(),
                expected: descriptor.size,
                actual,
            });
        }
        Raw::parse_verified(bytes, &descriptor.digest)
    }

    /// Serialise `value` canonically and keep those bytes.
    pub fn from_value(value: T) -> Result<Raw<T>, ImageError> {
        let bytes = to_canonical_json(&value).map_err(|e| match e {
            ImageError::Serialise { source, .. } => ImageError::Serialise {
                kind: T::KIND,
                source,
            },
            other => other,
        })?;
        Ok(Raw {
            digest: Digest::of(&bytes),
            bytes,
            value,
        })
    }
}

impl<T> Raw<T> {
    /// The exact bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The digest of [`Raw::bytes`].
    pub fn digest(&self) -> &Digest {
        &self.digest
    }

    /// The length of [`Raw::bytes`].
    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    pub fn value(&self) -> &T {
        &self.value
    }

    pub fn into_value(self) -> T {
        self.value
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// A descriptor of these bytes with the given media type.
    pub fn descriptor(&self, media_type: impl Into<String>) -> Descriptor {
        Descriptor::new(media_type, self.digest.clone(), self.size())
    }
}

impl<T> Deref for Raw<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn image_raw_keeps_odd_bytes_and_their_digest() {
        let text = b"{ \"b\" :\t1,\r\n  \"a\": [ 1 , 2 ]  }\n\n";
        let raw = Raw::<Value>::parse(&text[..]).unwrap();
        assert_eq!(raw.bytes(), &text[..]);
        assert_eq!(*raw.digest(), Digest::of(text));
        assert_eq!(raw.size(), text.len() as u64);
        assert_eq!(raw.value(), &json!({"a": [1, 2], "b": 1}));
        let d = raw.descriptor("application/json");
        assert_eq!((d.digest, d.size), (Digest::of(text), text.len() as u64));
        let again = Raw::from_value(raw.clone().into_value()).unwrap();
        assert_eq!(again.bytes(), br#"{"a":[1,2],"b":1}"#);
        assert_ne!(again.digest(), raw.digest());
    }

    #[test]
    fn image_raw_verifies_digest_and_size() {
        let text = br#"{"a":1}"#;
        let good = Digest::of(text);
        assert!(Raw::<Value>::parse_verified(&text[..], &good).is_ok());
        let err = Raw::<Value>::parse_verified(&b"{\"a\":2}"[..], &good).unwrap_err();
        assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
        assert!(err.to_string().contains(&good.to_string()), "{err}");
        let desc = Descriptor::new("application/json", good.clone(), 8);
        let err = Raw::<Value>::parse_for(&text[..], &desc).unwrap_err();
        assert!(err.to_string().contains("is 7 bytes, expected 8"), "{err}");
        let desc = Descriptor::new("application/json", good, 7);
        assert!(Raw::<Value>::parse_for(&text[..], &desc).is_ok());
    }

    #[test]
    fn image_raw_parse_error_names_kind_and_digest() {
        let err = Raw::<Value>::parse(&b"{nope"[..]).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.starts_with("cannot parse json document sha256:"),
            "{msg}"
        );
        assert!(msg.contains(&Digest::of(b"{nope").to_string()), "{msg}");
    }

    #[test]
    fn image_canonical_json_has_no_html_escaping_and_is_compact() {
        let v = json!({"z": "<a&b>", "a": "é\u{2028}\n\u{1}"});
        let bytes = to_canonical_json(&v).unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            "{\"a\":\"é\u{2028}\\n\\u0001\",\"z\":\"<a&b>\"}"
        );
    }
}
