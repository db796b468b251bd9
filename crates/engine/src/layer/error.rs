//! The layer module's error type: every variant names the file or entry
//! path it concerns and, when unpacking, the digest of the layer.

use std::io;
use std::path::PathBuf;

use crate::digest::{Digest, DigestError};

use super::Compression;

#[derive(Debug, thiserror::Error)]
pub enum LayerError {
    // ---- writing ----
    #[error("reading {path}: {source}")]
    Source {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("writing layer entry {path:?}: {source}")]
    Output {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("invalid layer entry path {path:?}: {reason}")]
    InvalidPath { path: PathBuf, reason: &'static str },
    #[error("{path:?}: {what} cannot be written to a layer")]
    Unsupported { path: PathBuf, what: String },
    #[error("{path:?}: host {kind} {id} has no mapping in the id map")]
    UnmappedId {
        path: PathBuf,
        kind: &'static str,
        id: u32,
    },
    #[error("{path:?}: file changed while it was written to the layer (expected {expected} bytes)")]
    SizeChanged { path: PathBuf, expected: u64 },
    #[error("invalid {compression:?} compression level {level}")]
    InvalidLevel {
        compression: Compression,
        level: i32,
    },

    // ---- unpacking ----
    #[error("opening target root {path}: {source}")]
    Root {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("layer {digest}: reading blob: {source}")]
    Read {
        digest: Digest,
        #[source]
        source: io::Error,
    },
    #[error("layer {digest}: blob failed verification: {source}")]
    Verify {
        digest: Digest,
        #[source]
        source: DigestError,
    },
    #[error("layer {digest}: diff_id mismatch: expected {expected}, got {actual}")]
    DiffId {
        digest: Digest,
        expected: Digest,
        actual: Digest,
    },
    #[error("layer {digest}: unsupported compression ({what})")]
    UnknownCompression { digest: Digest, what: &'static str },
    #[error("layer {digest}: corrupt tar at byte {offset} (entry {path:?}): {reason}")]
    Corrupt {
        digest: Digest,
        offset: u64,
        path: PathBuf,
        reason: String,
    },
    #[error("layer {digest}: refusing entry {path:?}: {reason}")]
    Unsafe {
        digest: Digest,
        path: PathBuf,
        reason: String,
    },
    #[error("layer {digest}: {op} {path:?}: {source}")]
    Apply {
        digest: Digest,
        path: PathBuf,
        op: &'static str,
        #[source]
        source: io::Error,
    },
}

impl LayerError {
    /// An `io::Error` met while reading a blob: a digest or size mismatch
    /// reported by the `VerifyingReader` underneath becomes [`LayerError::Verify`].
    pub(crate) fn from_read(digest: &Digest, source: io::Error) -> LayerError {
        let mut cause: Option<&(dyn std::error::Error + 'static)> =
            source.get_ref().map(|e| e as _);
        while let Some(e) = cause {
            if let Some(d) = e.downcast_ref::<DigestError>() {
                return LayerError::Verify {
                    digest: digest.clone(),
                    source: d.clone(),
                };
            }
            if let Some(io) = e.downcast_ref::<io::Error>()
                && let Some(inner) = io.get_ref()
            {
                cause = Some(inner as _);
                continue;
            }
            cause = e.source();
        }
        LayerError::Read {
            digest: digest.clone(),
            source,
        }
    }
}
