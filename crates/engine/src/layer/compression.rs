//! Blob compression: the encoder the writer streams through, and the
//! decoder the unpacker picks by the blob's magic bytes.

use std::io::{self, BufRead, BufReader, Read, Write};

/// How a layer blob is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    #[default]
    Gzip,
    Zstd,
    None,
}

impl Compression {
    /// The default level: gzip 6 (Go's and BuildKit's default), zstd 3.
    pub fn default_level(self) -> i32 {
        match self {
            Compression::Gzip => 6,
            Compression::Zstd => 3,
            Compression::None => 0,
        }
    }

    /// How a layer blob of `media_type` is compressed; `None` when the
    /// media type is not a tar layer.
    pub fn of_layer(media_type: &str) -> Option<Compression> {
        use crate::image::media_types::{self, Compression as M};
        Some(match media_types::layer_compression(media_type)? {
            M::Gzip => Compression::Gzip,
            M::Zstd => Compression::Zstd,
            M::None => Compression::None,
        })
    }

    fn level_ok(self, level: i32) -> bool {
        match self {
            Compression::Gzip => (0..=9).contains(&level),
            Compression::Zstd => zstd::compression_level_range().contains(&level),
            Compression::None => true,
        }
    }
}

/// A compressing writer.
pub(crate) enum Encoder<W: Write> {
    Gzip(flate2::write::GzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
    None(W),
}

impl<W: Write> Encoder<W> {
    /// An encoder, or `Err(level)` when the level is out of range.
    pub(crate) fn new(
        inner: W,
        compression: Compression,
        level: Option<i32>,
    ) -> Result<Self, EncoderError> {
        let level = level.unwrap_or(compression.default_level());
        if !compression.level_ok(level) {
            return Err(EncoderError::Level(level));
        }
        Ok(match compression {
            // GzBuilder's defaults: no file name, mtime 0, OS "unknown": the
            // header is the same on every run.
            Compression::Gzip => Encoder::Gzip(
                flate2::GzBuilder::new()
                    .mtime(0)
                    .write(inner, flate2::Compression::new(level.unsigned_abs())),
            ),
            Compression::Zstd => Encoder::Zstd(
                zstd::stream::write::Encoder::new(inner, level).map_err(EncoderError::Io)?,
            ),
            Compression::None => Encoder::None(inner),
        })
    }

    /// Writes the compressed stream's trailer and returns the inner writer.
    pub(crate) fn finish(self) -> io::Result<W> {
        match self {
            Encoder::Gzip(e) => e.finish(),
            Encoder::Zstd(e) => e.finish(),
            Encoder::None(w) => Ok(w),
        }
    }
}

pub(crate) enum EncoderError {
    Level(i32),
    Io(io::Error),
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Encoder::Gzip(e) => e.write(buf),
            Encoder::Zstd(e) => e.write(buf),
            Encoder::None(w) => w.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Encoder::Gzip(e) => e.write_all(buf),
            Encoder::Zstd(e) => e.write_all(buf),
            Encoder::None(w) => w.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Encoder::Gzip(e) => e.flush(),
            Encoder::Zstd(e) => e.flush(),
            Encoder::None(w) => w.flush(),
        }
    }
}

/// What the first bytes of a blob say it is.
pub(crate) enum Detected {
    Known(Compression),
    Unsupported(&'static str),
}

/// Detects the compression from up to the first 6 bytes of a blob.
pub(crate) fn detect(magic: &[u8]) -> Detected {
    match magic {
        [0x1f, 0x8b, ..] => Detected::Known(Compression::Gzip),
        [0x28, 0xb5, 0x2f, 0xfd, ..] => Detected::Known(Compression::Zstd),
        [b'B', b'Z', b'h', ..] => Detected::Unsupported("bzip2"),
        [0xfd, b'7', b'z', b'X', b'Z', 0x00, ..] => Detected::Unsupported("xz"),
        _ => Detected::Known(Compression::None),
    }
}

/// A decompressing reader that can hand back the raw stream, so the rest of
/// a blob (trailing bytes after the last frame) can be drained and hashed.
pub(crate) enum Decoder<R: Read> {
    Gzip(Box<flate2::bufread::MultiGzDecoder<BufReader<R>>>),
    Zstd(zstd::stream::read::Decoder<'static, BufReader<R>>),
    None(R),
}

const RAW_BUFFER: usize = 256 * 1024;

impl<R: Read> Decoder<R> {
    pub(crate) fn new(raw: R, compression: Compression) -> io::Result<Self> {
        Ok(match compression {
            Compression::Gzip => Decoder::Gzip(Box::new(flate2::bufread::MultiGzDecoder::new(
                BufReader::with_capacity(RAW_BUFFER, raw),
            ))),
            Compression::Zstd => Decoder::Zstd(zstd::stream::read::Decoder::with_buffer(
                BufReader::with_capacity(RAW_BUFFER, raw),
            )?),
            Compression::None => Decoder::None(raw),
        })
    }

    /// Reads whatever is left of the raw (compressed) stream to its end.
    pub(crate) fn drain_raw(&mut self) -> io::Result<u64> {
        match self {
            Decoder::Gzip(d) => drain(d.get_mut()),
            Decoder::Zstd(d) => drain(d.get_mut()),
            Decoder::None(r) => io::copy(r, &mut io::sink()),
        }
    }
}

fn drain<B: BufRead>(r: &mut B) -> io::Result<u64> {
    io::copy(r, &mut io::sink())
}

impl<R: Read> Read for Decoder<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::Gzip(d) => d.read(buf),
            Decoder::Zstd(d) => d.read(buf),
            Decoder::None(r) => r.read(buf),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_compression_round_trips_and_is_detected() {
        for c in [Compression::Gzip, Compression::Zstd, Compression::None] {
            let Ok(mut e) = Encoder::new(Vec::new(), c, None) else {
                panic!("default level rejected for {c:?}");
            };
            e.write_all(b"hello layer").unwrap();
            let blob = e.finish().unwrap();
            let Detected::Known(found) = detect(&blob) else {
                panic!("not detected")
            };
            assert_eq!(found, c);
            let mut out = Vec::new();
            Decoder::new(&blob[..], found)
                .unwrap()
                .read_to_end(&mut out)
                .unwrap();
            assert_eq!(out, b"hello layer");
        }
        assert!(matches!(
            Encoder::new(Vec::new(), Compression::Gzip, Some(10)),
            Err(EncoderError::Level(10))
        ));
        assert!(matches!(detect(b"BZh91AY"), Detected::Unsupported("bzip2")));
    }

    #[test]
    fn layer_gzip_output_is_deterministic() {
        let make = || {
            let Ok(mut e) = Encoder::new(Vec::new(), Compression::Gzip, Some(9)) else {
                panic!("level 9 rejected");
            };
            e.write_all(&[7u8; 10_000]).unwrap();
            e.finish().unwrap()
        };
        assert_eq!(make(), make());
    }
}
