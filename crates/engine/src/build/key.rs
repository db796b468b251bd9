//! Cache keys: a stable, versioned, canonical encoding of what a step is
//! and what it reads. Every field is written as its name and a
//! length-prefixed value into one sha256, so no two different field lists
//! give the same bytes; `std::hash` and map iteration order are never used.
//!
//! **Invariant:** changing what a key covers means bumping [`KEY_VERSION`],
//! so old cache records are simply never found again.

use crate::digest::{Digest, Hasher};

/// The encoding's version; part of every key.
pub const KEY_VERSION: &str = "hoist-cache-key-v1";

/// Builds one key.
pub struct KeyBuilder {
    hasher: Hasher,
}

impl KeyBuilder {
    /// A key for an operation of kind `op` (`"copy"`, `"meta"`, `"from"` ...).
    pub fn new(op: &str) -> KeyBuilder {
        let mut k = KeyBuilder {
            hasher: Hasher::new(),
        };
        k.raw(KEY_VERSION.as_bytes());
        k.raw(op.as_bytes());
        k
    }

    fn raw(&mut self, bytes: &[u8]) {
        self.hasher.update(&(bytes.len() as u64).to_be_bytes());
        self.hasher.update(bytes);
    }

    /// A named byte field.
    pub fn bytes(mut self, name: &str, value: &[u8]) -> KeyBuilder {
        self.raw(name.as_bytes());
        self.raw(value);
        self
    }

    pub fn str(self, name: &str, value: &str) -> KeyBuilder {
        self.bytes(name, value.as_bytes())
    }

    pub fn opt(self, name: &str, value: Option<&str>) -> KeyBuilder {
        match value {
            Some(v) => self.str(name, v).str("some", ""),
            None => self.str(name, "").str("none", ""),
        }
    }

    pub fn digest(self, name: &str, value: &Digest) -> KeyBuilder {
        self.str(name, &value.to_string())
    }

    pub fn strs(mut self, name: &str, values: &[String]) -> KeyBuilder {
        self = self.str(name, &values.len().to_string());
        for v in values {
            self = self.str("item", v);
        }
        self
    }

    /// A field holding any serialisable value, as canonical JSON.
    pub fn json<T: serde::Serialize>(self, name: &str, value: &T) -> KeyBuilder {
        let bytes = crate::image::to_canonical_json(value).unwrap_or_default();
        self.bytes(name, &bytes)
    }

    pub fn finish(self) -> Digest {
        self.hasher.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_cannot_run_together() {
        let a = KeyBuilder::new("x").str("a", "bc").finish();
        let b = KeyBuilder::new("x").str("ab", "c").finish();
        assert_ne!(a, b);
        assert_ne!(
            KeyBuilder::new("x").opt("v", None).finish(),
            KeyBuilder::new("x").opt("v", Some("")).finish()
        );
        assert_ne!(
            KeyBuilder::new("x")
                .strs("l", &["a".into(), "b".into()])
                .finish(),
            KeyBuilder::new("x").strs("l", &["ab".into()]).finish()
        );
    }

    #[test]
    fn keys_are_stable_across_runs() {
        // A fixed value: if this changes, KEY_VERSION must change too.
        let k = KeyBuilder::new("copy").str("dest", "/app").finish();
        assert_eq!(
            k.to_string(),
            KeyBuilder::new("copy")
                .str("dest", "/app")
                .finish()
                .to_string()
        );
        assert_eq!(
            k.to_string(),
            "sha256:".to_string()
                + &{
                    let mut h = crate::digest::Hasher::new();
                    for part in [KEY_VERSION, "copy", "dest", "/app"] {
                        h.update(&(part.len() as u64).to_be_bytes());
                        h.update(part.as_bytes());
                    }
                    h.finish().hex().to_string()
                }
        );
    }
}
