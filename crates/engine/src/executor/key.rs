//! Cache keys: a stable, versioned, canonical encoding of what a step is
//! and what it reads. Every field is written as its name and a
//! length-prefixed value into one sha256, so no two different field lists
//! give the same bytes; `std::hash` and map iteration order are never used.
//!
//! **Invariant:** changing what a key covers means bumping [`KEY_VERSION`],
//! so old cache records are simply never found again.

use crate::digest::{Digest, Hasher};

/// The encoding's version; part of every key.
pub const KEY_VERSION: &str = "hoist-cache-key-v2";

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

    /// Keys of `COPY`/`ADD`/`USER` pinned to fixed values. A change here
    /// drops every user's cache: it must come with a new [`KEY_VERSION`]
    /// and a CHANGELOG line. The keys are made from the instruction's
    /// fields by name, so a field the parser gains does not move them.
    #[test]
    fn pinned_file_op_keys() {
        let parent = crate::digest::Digest::of(b"parent");
        let content = crate::digest::Digest::of(b"content");
        let key = |line: &str| {
            let op = crate::plan::lower::testing::file_op(line);
            super::super::file_op::copy_key(&parent, &op, "/app", &content).to_string()
        };
        let pinned = [
            ("COPY a b /dest/", PIN_COPY),
            (
                "COPY --from=x --chown=1:2 --chmod=755 --link --parents --exclude=*.md a /d",
                PIN_COPY_FLAGS,
            ),
            (
                "ADD --checksum=sha256:00 --unpack=false https://e.test/f /f",
                PIN_ADD,
            ),
            ("COPY <<EOF /f\nbody\nEOF", PIN_HEREDOC),
        ];
        for (line, want) in pinned {
            assert_eq!(key(line), want, "{line}");
        }
        // Every field moves the key.
        let all: std::collections::BTreeSet<String> = pinned.iter().map(|(l, _)| key(l)).collect();
        assert_eq!(all.len(), pinned.len());
    }

    const PIN_COPY: &str =
        "sha256:22092c92cec38c4f2c3d0a01df4f02f0637abad3305d55506a23f9f0a83ef761";
    const PIN_COPY_FLAGS: &str =
        "sha256:6f53719653fda2113c69a11f15b6c1b7f0bf5f7d3a087c7ff71955f493d064a5";
    const PIN_ADD: &str = "sha256:f64c29d08d1c05bd1396e574762bb1c713a4b2ddaf21036ea2f7d3a58434b46b";
    const PIN_HEREDOC: &str =
        "sha256:b7b501467d0725be039ef107440c291c5df69efb5f95dbac036734546c9366c5";
}
