//! Content digests (`sha256:<64 hex>`), and readers and writers that hash
//! bytes as they stream, so no blob is ever read twice to be hashed.
//!
//! **Invariant:** a blob read from a registry or from disk goes through a
//! [`VerifyingReader`]; the bytes are not trusted until it reports the
//! expected digest at end of stream.

use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

/// A `sha256:` content digest. Other algorithms are rejected on parse.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest {
    hex: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("invalid digest {0:?}: expected sha256:<64 lower-case hex digits>")]
    Invalid(String),
    #[error("digest mismatch: expected {expected}, got {actual}")]
    Mismatch { expected: Digest, actual: Digest },
    #[error("size mismatch for {digest}: expected {expected} bytes, got {actual}")]
    Size {
        digest: Digest,
        expected: u64,
        actual: u64,
    },
}

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest {
            hex: format!("{:x}", Sha256::digest(bytes)),
        }
    }

    /// The 64 hex digits, without the algorithm.
    pub fn hex(&self) -> &str {
        &self.hex
    }

    /// `"sha256"`.
    pub fn algorithm(&self) -> &'static str {
        "sha256"
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Digest, DigestError> {
        let hex = s
            .strip_prefix("sha256:")
            .filter(|h| h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .ok_or_else(|| DigestError::Invalid(s.to_string()))?;
        Ok(Digest {
            hex: hex.to_string(),
        })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An incremental sha256 with a byte count.
#[derive(Clone, Default)]
pub struct Hasher {
    inner: Sha256,
    len: u64,
}

impl Hasher {
    pub fn new() -> Hasher {
        Hasher::default()
    }

    pub fn update(&mut self, bytes: &[u8]) {
        self.inner.update(bytes);
        self.len += bytes.len() as u64;
    }

    /// Bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn finish(self) -> Digest {
        Digest {
            hex: format!("{:x}", self.inner.finalize()),
        }
    }
}

/// A writer that hashes everything written through it.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Hasher,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Hasher::new(),
        }
    }

    /// The inner writer, the digest and the byte count of what passed through.
    pub fn finish(self) -> (W, Digest, u64) {
        let len = self.hasher.len();
        (self.inner, self.hasher.finish(), len)
    }

    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that hashes what it reads and, at end of stream, fails with
/// `InvalidData` unless the content matched the expected digest (and size,
/// when known). Reading past the expected size fails at once.
pub struct VerifyingReader<R> {
    inner: R,
    hasher: Option<Hasher>,
    expected: Digest,
    size: Option<u64>,
}

impl<R: Read> VerifyingReader<R> {
    pub fn new(inner: R, expected: Digest, size: Option<u64>) -> Self {
        VerifyingReader {
            inner,
            hasher: Some(Hasher::new()),
            expected,
            size,
        }
    }

    fn fail(e: DigestError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let Some(hasher) = self.hasher.as_mut() else {
            return Ok(0);
        };
        let n = self.inner.read(buf)?;
        hasher.update(&buf[..n]);
        let seen = hasher.len();
        if let Some(size) = self.size
            && seen > size
        {
            return Err(Self::fail(DigestError::Size {
                digest: self.expected.clone(),
                expected: size,
                actual: seen,
            }));
        }
        if n == 0 && !buf.is_empty() {
            let hasher = self.hasher.take().expect("checked above");
            if let Some(size) = self.size
                && seen != size
            {
                return Err(Self::fail(DigestError::Size {
                    digest: self.expected.clone(),
                    expected: size,
                    actual: seen,
                }));
            }
            let actual = hasher.finish();
            if actual != self.expected {
                return Err(Self::fail(DigestError::Mismatch {
                    expected: self.expected.clone(),
                    actual,
                }));
            }
        }
        Ok(n)
    }
}

/// Like [`HashingWriter`], but the sha256 runs on a thread of its own: the
/// bytes are copied into 1 MiB chunks and handed over, so hashing overlaps
/// whatever the writing thread does next (compressing, reading files). A
/// layer write hashes twice (diff_id and digest); on two cores this takes
/// both hashes off the critical path. Where no thread can be started it
/// hashes inline.
pub struct OffloadHashingWriter<W> {
    inner: W,
    chunk: Vec<u8>,
    mode: Offload,
    len: u64,
}

enum Offload {
    Thread {
        tx: std::sync::mpsc::SyncSender<Vec<u8>>,
        worker: std::thread::JoinHandle<Hasher>,
    },
    Inline(Hasher),
}

const OFFLOAD_CHUNK: usize = 1 << 20;

impl<W: Write> OffloadHashingWriter<W> {
    pub fn new(inner: W) -> Self {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
        let spawned = std::thread::Builder::new()
            .name("hoist-sha256".into())
            .spawn(move || {
                let mut hasher = Hasher::new();
                while let Ok(chunk) = rx.recv() {
                    hasher.update(&chunk);
                }
                hasher
            });
        let mode = match spawned {
            Ok(worker) => Offload::Thread { tx, worker },
            Err(_) => Offload::Inline(Hasher::new()),
        };
        OffloadHashingWriter {
            inner,
            chunk: Vec::with_capacity(OFFLOAD_CHUNK),
            mode,
            len: 0,
        }
    }

    fn hand_over(&mut self) {
        if self.chunk.is_empty() {
            return;
        }
        match &mut self.mode {
            Offload::Inline(h) => {
                h.update(&self.chunk);
                self.chunk.clear();
            }
            Offload::Thread { tx, .. } => {
                let full = std::mem::replace(&mut self.chunk, Vec::with_capacity(OFFLOAD_CHUNK));
                if let Err(std::sync::mpsc::SendError(full)) = tx.send(full) {
                    // The worker is gone (it only stops on a panic): hash the
                    // rest here so the digest stays right or the join reports it.
                    self.chunk = full;
                }
            }
        }
    }

    /// The inner writer, the digest and the byte count.
    pub fn finish(mut self) -> (W, Digest, u64) {
        self.hand_over();
        let hasher = match self.mode {
            Offload::Inline(h) => h,
            Offload::Thread { tx, worker } => {
                drop(tx);
                match worker.join() {
                    Ok(h) => h,
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
        };
        (self.inner, hasher.finish(), self.len)
    }
}

impl<W: Write> Write for OffloadHashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        let mut rest = &buf[..n];
        while !rest.is_empty() {
            let room = OFFLOAD_CHUNK - self.chunk.len();
            let take = room.min(rest.len());
            self.chunk.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.chunk.len() == OFFLOAD_CHUNK {
                self.hand_over();
            }
        }
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn parses_and_prints() {
        let d: Digest = EMPTY.parse().unwrap();
        assert_eq!(d.to_string(), EMPTY);
        assert_eq!(Digest::of(b""), d);
        assert!("sha512:abc".parse::<Digest>().is_err());
        assert!("sha256:E3B0".parse::<Digest>().is_err());
        assert_eq!(serde_json::to_string(&d).unwrap(), format!("\"{EMPTY}\""));
    }

    #[test]
    fn verifying_reader_accepts_good_and_rejects_bad() {
        let good = Digest::of(b"hello");
        let mut out = Vec::new();
        VerifyingReader::new(&b"hello"[..], good.clone(), Some(5))
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out, b"hello");
        let err = VerifyingReader::new(&b"hellO"[..], good.clone(), None)
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("digest mismatch"), "{err}");
        let err = VerifyingReader::new(&b"hello!"[..], good.clone(), Some(5))
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(err.to_string().contains("size mismatch"), "{err}");
        let err = VerifyingReader::new(&b"hell"[..], good, Some(5))
            .read_to_end(&mut Vec::new())
            .unwrap_err();
        assert!(err.to_string().contains("size mismatch"), "{err}");
    }

    #[test]
    fn offload_hashing_writer_matches_inline() {
        let data: Vec<u8> = (0..(3 * OFFLOAD_CHUNK + 12345))
            .map(|i| (i % 251) as u8)
            .collect();
        let mut w = OffloadHashingWriter::new(Vec::new());
        for piece in data.chunks(70_001) {
            w.write_all(piece).unwrap();
        }
        let (buf, d, n) = w.finish();
        assert_eq!(buf, data);
        assert_eq!(n, data.len() as u64);
        assert_eq!(d, Digest::of(&data));
        let (_, empty, zero) = OffloadHashingWriter::new(Vec::new()).finish();
        assert_eq!((empty, zero), (Digest::of(b""), 0));
    }

    #[test]
    fn hashing_writer_counts_and_hashes() {
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"hel").unwrap();
        w.write_all(b"lo").unwrap();
        let (buf, d, n) = w.finish();
        assert_eq!((buf.as_slice(), n), (&b"hello"[..], 5));
        assert_eq!(d, Digest::of(b"hello"));
    }
}
