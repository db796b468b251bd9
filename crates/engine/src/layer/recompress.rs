//! Changing a layer blob's compression (`-o ...,compression=zstd`): the
//! uncompressed tar, and so the diff_id, stays the same; the blob digest
//! changes. Both are computed while the bytes stream.

use std::io::{Read, Write};

use super::compression::{Decoder, Encoder, EncoderError};
use super::{Compression, LayerError};
use crate::digest::{Digest, HashingWriter};

/// What a recompression wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recompressed {
    pub digest: Digest,
    pub size: u64,
    /// The digest of the uncompressed tar (unchanged by recompression).
    pub diff_id: Digest,
}

/// Decompress `blob` (compressed with `from`) and compress it with `to`
/// at `level` into `out`. The caller verifies `blob` (a store blob reader does).
pub fn recompress<R: Read, W: Write>(
    blob: R,
    from: Compression,
    to: Compression,
    level: Option<i32>,
    out: W,
) -> Result<(Recompressed, W), LayerError> {
    let io_err = |source| LayerError::Output {
        path: "<recompressed layer>".into(),
        source,
    };
    let mut decoder = Decoder::new(blob, from).map_err(io_err)?;
    let encoder = Encoder::new(HashingWriter::new(out), to, level).map_err(|e| match e {
        EncoderError::Level(level) => LayerError::InvalidLevel {
            compression: to,
            level,
        },
        EncoderError::Io(source) => io_err(source),
    })?;
    let mut tar = HashingWriter::new(encoder);
    std::io::copy(&mut decoder, &mut tar).map_err(io_err)?;
    let (encoder, diff_id, _) = tar.finish();
    let (out, digest, size) = encoder.finish().map_err(io_err)?.finish();
    Ok((
        Recompressed {
            digest,
            size,
            diff_id,
        },
        out,
    ))
}
