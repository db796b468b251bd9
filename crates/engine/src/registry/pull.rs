//! Pulling: manifests as verified raw bytes, blobs streamed into a
//! [`BlobSink`] that is finished only after the digest matched, with
//! resume after a broken connection.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::{ACCEPT, CONTENT_RANGE, CONTENT_TYPE, RANGE};
use tokio::io::AsyncWriteExt;

use super::auth::Scope;
use super::mirror::MirrorFailures;
use super::transport::{Backoff, Registry, http_error, status_error, transient};
use super::{
    BlobRef, Client, ManifestBytes, Progress, ProgressEvent, RegistryError, Result, media_types,
};
use crate::digest::{Digest, Hasher};
use crate::reference::{Reference, Repository};

/// The largest manifest accepted (distribution's own limit).
pub const MAX_MANIFEST_BYTES: usize = 4 << 20;

/// Where a blob's bytes go. `write` sees the bytes in order, once each
/// (after a `restart`, from the first byte again); then exactly one of
/// `finish` (size and digest matched) or `abort`.
pub trait BlobSink: Send {
    type Output: Send;
    fn write(&mut self, bytes: Bytes) -> impl Future<Output = io::Result<()>> + Send;
    /// Drop every byte written so far, to take the blob again from its
    /// first byte (after a digest mismatch). `false`: this sink cannot
    /// (its bytes are gone already), so the transfer fails instead.
    fn restart(&mut self) -> impl Future<Output = io::Result<bool>> + Send {
        async { Ok(false) }
    }
    fn finish(self) -> impl Future<Output = io::Result<Self::Output>> + Send;
    fn abort(self) -> impl Future<Output = ()> + Send;
}

/// Collects the blob in memory.
impl BlobSink for Vec<u8> {
    type Output = Vec<u8>;

    async fn write(&mut self, bytes: Bytes) -> io::Result<()> {
        self.extend_from_slice(&bytes);
        Ok(())
    }

    async fn restart(&mut self) -> io::Result<bool> {
        self.clear();
        Ok(true)
    }

    async fn finish(self) -> io::Result<Vec<u8>> {
        Ok(self)
    }

    async fn abort(self) {}
}

/// Writes a temp file next to `path` and renames it to `path` only once
/// verified; an aborted transfer leaves nothing at `path`.
pub struct FileSink {
    path: PathBuf,
    temp: tempfile::TempPath,
    file: tokio::fs::File,
}

impl FileSink {
    pub async fn create(path: impl AsRef<Path>) -> io::Result<FileSink> {
        let path = path.as_ref().to_path_buf();
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let named = tempfile::Builder::new()
            .prefix(".partial-")
            .tempfile_in(dir)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
        let (file, temp) = named.into_parts();
        Ok(FileSink {
            path,
            temp,
            file: tokio::fs::File::from_std(file),
        })
    }
}

impl BlobSink for FileSink {
    type Output = PathBuf;

    async fn write(&mut self, bytes: Bytes) -> io::Result<()> {
        let temp = self.temp.display().to_string();
        self.file
            .write_all(&bytes)
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("{temp}: {e}")))
    }

    async fn restart(&mut self) -> io::Result<bool> {
        use tokio::io::AsyncSeekExt;
        let temp = self.temp.display().to_string();
        let ctx = |e: io::Error| io::Error::new(e.kind(), format!("{temp}: {e}"));
        self.file.flush().await.map_err(ctx)?;
        self.file.set_len(0).await.map_err(ctx)?;
        self.file.seek(io::SeekFrom::Start(0)).await.map_err(ctx)?;
        Ok(true)
    }

    async fn finish(mut self) -> io::Result<PathBuf> {
        let ctx =
            |e: io::Error, p: &Path| io::Error::new(e.kind(), format!("{}: {e}", p.display()));
        self.file.flush().await.map_err(|e| ctx(e, &self.temp))?;
        self.file.sync_all().await.map_err(|e| ctx(e, &self.temp))?;
        self.temp
            .persist(&self.path)
            .map_err(|e| ctx(e.error, &self.path))?;
        Ok(self.path)
    }

    async fn abort(self) {
        // Dropping the TempPath removes the partial file.
    }
}

/// A verified blob as an `AsyncRead`: bytes arrive as they stream, and
/// end of stream comes only after the digest matched; a mismatch or a
/// failed transfer is an `io::Error` instead of EOF. Read to the end.
pub type BlobReader = tokio_util::io::StreamReader<
    futures_util::stream::BoxStream<'static, io::Result<Bytes>>,
    Bytes,
>;

/// Hands bytes to a [`BlobReader`]; they are read as they come, so it
/// cannot start over (no `restart`).
struct ChannelSink(tokio::sync::mpsc::Sender<io::Result<Bytes>>);

impl BlobSink for ChannelSink {
    type Output = ();

    async fn write(&mut self, bytes: Bytes) -> io::Result<()> {
        self.0
            .send(Ok(bytes))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "blob reader dropped"))
    }

    async fn finish(self) -> io::Result<()> {
        Ok(())
    }

    async fn abort(self) {}
}

fn blob_what(repo: &Repository, digest: &Digest) -> String {
    format!("blob {digest} in {repo}")
}

/// The blob, the registry (or mirror) that served it, and how many times
/// it was fetched from the start.
fn blob_source_what(repo: &Repository, digest: &Digest, host: &str, attempt: u32) -> String {
    format!("{} {}", blob_what(repo, digest), source_note(host, attempt))
}

fn source_note(host: &str, attempt: u32) -> String {
    if attempt > 1 {
        format!("(from registry {host}, fetched {attempt} times from the start)")
    } else {
        format!("(from registry {host})")
    }
}

/// A size mismatch from [`Client::blob_from`], naming the host and attempt.
fn with_source(e: RegistryError, host: &str, attempt: u32) -> RegistryError {
    match e {
        RegistryError::SizeMismatch {
            what,
            expected,
            actual,
        } => RegistryError::SizeMismatch {
            what: format!("{what} {}", source_note(host, attempt)),
            expected,
            actual,
        },
        other => other,
    }
}

impl Client {
    /// Fetch a manifest or index by tag or digest, accepting every OCI
    /// and Docker v2 type. A digest in `reference` must match the bytes;
    /// else the bytes are hashed and checked against
    /// `Docker-Content-Digest` when present. The registry's mirrors are
    /// tried first.
    pub async fn get_manifest(&self, reference: &Reference) -> Result<ManifestBytes> {
        let mut failures = MirrorFailures::default();
        for mirror in self.mirrors_of(reference.domain()) {
            let result = match self.mirror_endpoint(&mirror).await {
                Ok(registry) => self.manifest_from(&registry, reference).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(manifest) => return Ok(manifest),
                Err(e) => failures.push(&mirror, &e),
            }
        }
        let result = match self.registry(reference.domain()).await {
            Ok(registry) => self.manifest_from(&registry, reference).await,
            Err(e) => Err(e),
        };
        result.map_err(|e| failures.wrap(reference.domain(), e))
    }

    async fn manifest_from(
        &self,
        registry: &Registry,
        reference: &Reference,
    ) -> Result<ManifestBytes> {
        let scope = Scope::pull(reference.repository());
        let what = format!("manifest {reference}");
        let url = registry.url(&format!(
            "v2/{}/manifests/{}",
            reference.path(),
            reference.api_reference()
        ))?;
        let accept = media_types::MANIFEST_ACCEPT.join(", ");
        let mut backoff = Backoff::new(&self.inner.options.retry);
        let (resp, bytes) = loop {
            let mut build =
                |http: &reqwest::Client| Ok(http.get(url.clone()).header(ACCEPT, &accept));
            let resp = self.send(registry, &scope, &what, true, &mut build).await?;
            if !resp.status().is_success() {
                return Err(status_error(registry, &what, resp).await);
            }
            let headers = resp.headers().clone();
            match read_limited(registry, &what, resp, self.inner.options.idle_timeout).await {
                Ok(bytes) => break (headers, bytes),
                Err(ReadError::Fatal(e)) => return Err(e),
                Err(ReadError::Transient(e)) => match backoff.next_delay(None) {
                    Some(delay) => tokio::time::sleep(delay).await,
                    None => return Err(e),
                },
            }
        };
        let actual = Digest::of(&bytes);
        let header_digest = resp
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<Digest>().ok());
        if let Some(expected) = reference.digest().or(header_digest.as_ref())
            && *expected != actual
        {
            return Err(RegistryError::DigestMismatch {
                what,
                expected: expected.clone(),
                actual,
            });
        }
        let media_type = resp
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or(v).trim().to_string())
            .filter(|v| !v.is_empty() && v != "application/json" && v != "text/plain")
            .or_else(|| media_type_in_body(&bytes))
            .ok_or_else(|| RegistryError::Protocol {
                registry: registry.domain.clone(),
                what: what.clone(),
                message: "no Content-Type and no mediaType field".into(),
            })?;
        Ok(ManifestBytes {
            media_type,
            digest: actual,
            bytes,
        })
    }

    /// Stream a blob into `sink`, verifying size and digest as it goes;
    /// `sink.finish()` only when both match, `sink.abort()` otherwise.
    /// After a broken connection the transfer resumes with `Range` (or
    /// skips the bytes it has when the registry answers the whole blob).
    pub async fn get_blob<S: BlobSink>(
        &self,
        repo: &Repository,
        blob: &BlobRef,
        mut sink: S,
        progress: &Progress,
    ) -> Result<S::Output> {
        match self.fetch_blob_into(repo, blob, &mut sink, progress).await {
            Ok(()) => match sink.finish().await {
                Ok(out) => {
                    progress.emit(|| ProgressEvent::Done {
                        digest: blob.digest.clone(),
                    });
                    Ok(out)
                }
                Err(source) => Err(RegistryError::Io {
                    what: blob_what(repo, &blob.digest),
                    source,
                }),
            },
            Err(e) => {
                sink.abort().await;
                Err(e)
            }
        }
    }

    /// A blob as a verifying `AsyncRead` (see [`BlobReader`]). The
    /// transfer runs as a task, so call this inside a Tokio runtime;
    /// dropping the reader stops the transfer.
    pub fn blob_reader(
        &self,
        repo: &Repository,
        blob: &BlobRef,
        progress: &Progress,
    ) -> BlobReader {
        let (tx, rx) = tokio::sync::mpsc::channel::<io::Result<Bytes>>(16);
        let (client, repo, blob, progress) =
            (self.clone(), repo.clone(), blob.clone(), progress.clone());
        tokio::spawn(async move {
            let errors = tx.clone();
            if let Err(e) = client
                .get_blob(&repo, &blob, ChannelSink(tx), &progress)
                .await
            {
                let kind = if e.is_verification() {
                    io::ErrorKind::InvalidData
                } else {
                    io::ErrorKind::Other
                };
                let _ = errors.send(Err(io::Error::new(kind, e))).await;
            }
        });
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        tokio_util::io::StreamReader::new(stream.boxed())
    }

    /// The blob, verified; one whose bytes fail their digest (or overrun
    /// their size) is fetched once more from the start when `sink` can
    /// start over, then the error names the host that served it.
    async fn fetch_blob_into<S: BlobSink>(
        &self,
        repo: &Repository,
        blob: &BlobRef,
        sink: &mut S,
        progress: &Progress,
    ) -> Result<()> {
        let first = match self.fetch_blob_once(repo, blob, sink, progress, 1).await {
            Err(e) if e.is_verification() => e,
            other => return other,
        };
        let restarted = sink.restart().await.map_err(|source| RegistryError::Io {
            what: blob_what(repo, &blob.digest),
            source,
        })?;
        if !restarted {
            return Err(first);
        }
        tracing::warn!(error = %first, "blob failed verification; fetching it again from the start");
        progress.emit(|| ProgressEvent::Bytes {
            digest: blob.digest.clone(),
            done: 0,
            total: blob.size,
        });
        self.fetch_blob_once(repo, blob, sink, progress, 2).await
    }

    /// The blob from the registry's mirrors in order, then the registry; a
    /// transfer a host broke off resumes on the next one. `attempt` counts
    /// the fetches from the start, for the error.
    async fn fetch_blob_once<S: BlobSink>(
        &self,
        repo: &Repository,
        blob: &BlobRef,
        sink: &mut S,
        progress: &Progress,
        attempt: u32,
    ) -> Result<()> {
        let mut hasher = Hasher::new();
        let mut failures = MirrorFailures::default();
        let mut fetched = false;
        // The host that sent the last bytes.
        let mut served_by = repo.domain().to_string();
        for mirror in self.mirrors_of(repo.domain()) {
            let result = match self.mirror_endpoint(&mirror).await {
                Ok(registry) => {
                    let before = hasher.len();
                    let result = self
                        .blob_from(&registry, repo, blob, sink, &mut hasher, progress)
                        .await;
                    if hasher.len() > before {
                        served_by.clone_from(&mirror);
                    }
                    result
                }
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => {
                    fetched = true;
                    break;
                }
                Err(e) if e.is_verification() => {
                    return Err(with_source(e, &mirror, attempt));
                }
                Err(e) => failures.push(&mirror, &e),
            }
        }
        if !fetched {
            let result = match self.registry(repo.domain()).await {
                Ok(registry) => {
                    let before = hasher.len();
                    let result = self
                        .blob_from(&registry, repo, blob, sink, &mut hasher, progress)
                        .await;
                    if hasher.len() > before {
                        served_by = repo.domain().to_string();
                    }
                    result
                }
                Err(e) => Err(e),
            };
            result.map_err(|e| {
                if e.is_verification() {
                    with_source(e, repo.domain(), attempt)
                } else {
                    failures.wrap(repo.domain(), e)
                }
            })?;
        }
        let actual = hasher.finish();
        if actual != blob.digest {
            return Err(RegistryError::DigestMismatch {
                what: blob_source_what(repo, &blob.digest, &served_by, attempt),
                expected: blob.digest.clone(),
                actual,
            });
        }
        Ok(())
    }

    /// Stream the rest of the blob (past what `hasher` has seen) from
    /// `registry` into `sink`, resuming with `Range` after a break.
    async fn blob_from<S: BlobSink>(
        &self,
        registry: &Registry,
        repo: &Repository,
        blob: &BlobRef,
        sink: &mut S,
        hasher: &mut Hasher,
        progress: &Progress,
    ) -> Result<()> {
        let scope = Scope::pull(repo);
        let what = blob_what(repo, &blob.digest);
        let url = registry.url(&format!("v2/{}/blobs/{}", repo.path(), blob.digest))?;
        let mut backoff = Backoff::new(&self.inner.options.retry);
        loop {
            let done = hasher.len();
            let mut build = |http: &reqwest::Client| {
                let request = http.get(url.clone());
                Ok(if done > 0 {
                    request.header(RANGE, format!("bytes={done}-"))
                } else {
                    request
                })
            };
            let resp = self.send(registry, &scope, &what, true, &mut build).await?;
            let mut skip = match resp.status().as_u16() {
                200 => done,
                206 => match range_start(&resp) {
                    Some(start) if start <= done => done - start,
                    _ => {
                        return Err(protocol(
                            registry,
                            &what,
                            "206 with a Content-Range past what was asked",
                        ));
                    }
                },
                _ => return Err(status_error(registry, &what, resp).await),
            };
            let mut stream = resp.bytes_stream();
            let idle = self.inner.options.idle_timeout;
            let failure = loop {
                let next = match tokio::time::timeout(idle, stream.next()).await {
                    Ok(next) => next,
                    Err(_) => {
                        break Some(format!(
                            "no bytes for {}s (the idle timeout)",
                            idle.as_secs_f64()
                        ));
                    }
                };
                match next {
                    None => break None,
                    Some(Err(e)) => break Some(e.to_string()),
                    Some(Ok(mut chunk)) => {
                        if skip > 0 {
                            let n = skip.min(chunk.len() as u64);
                            skip -= n;
                            chunk = chunk.slice(n as usize..);
                        }
                        if chunk.is_empty() {
                            continue;
                        }
                        if hasher.len() + chunk.len() as u64 > blob.size {
                            return Err(RegistryError::SizeMismatch {
                                what,
                                expected: blob.size,
                                actual: hasher.len() + chunk.len() as u64,
                            });
                        }
                        hasher.update(&chunk);
                        sink.write(chunk)
                            .await
                            .map_err(|source| RegistryError::Io {
                                what: what.clone(),
                                source,
                            })?;
                        progress.emit(|| ProgressEvent::Bytes {
                            digest: blob.digest.clone(),
                            done: hasher.len(),
                            total: blob.size,
                        });
                    }
                }
            };
            let message = match failure {
                None if hasher.len() == blob.size => break,
                None => format!("body ended at {} of {} bytes", hasher.len(), blob.size),
                Some(message) => message,
            };
            if hasher.len() > done {
                // Bytes came since the last break: a long download may
                // resume however long it has run (the count still bounds).
                backoff.restart_clock();
            }
            let Some(delay) = backoff.next_delay(None) else {
                return Err(RegistryError::Interrupted {
                    what,
                    done: hasher.len(),
                    total: blob.size,
                    attempts: backoff.attempts(),
                    message,
                });
            };
            tracing::warn!(%what, done = hasher.len(), %message, ?delay, "blob download broke; resuming");
            tokio::time::sleep(delay).await;
        }
        Ok(())
    }
}

enum ReadError {
    Transient(RegistryError),
    Fatal(RegistryError),
}

/// Read a manifest body, refusing more than [`MAX_MANIFEST_BYTES`].
async fn read_limited(
    registry: &Registry,
    what: &str,
    resp: reqwest::Response,
    idle: std::time::Duration,
) -> Result<Vec<u8>, ReadError> {
    let too_large = || {
        ReadError::Fatal(RegistryError::ManifestTooLarge {
            registry: registry.domain.clone(),
            what: what.to_string(),
            limit: MAX_MANIFEST_BYTES,
        })
    };
    if resp
        .content_length()
        .is_some_and(|n| n > MAX_MANIFEST_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut resp = resp;
    let mut body = Vec::new();
    loop {
        let Ok(next) = tokio::time::timeout(idle, resp.chunk()).await else {
            return Err(ReadError::Transient(RegistryError::Stalled {
                registry: registry.domain.clone(),
                what: what.to_string(),
                url: resp.url().to_string(),
                idle,
            }));
        };
        match next {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_MANIFEST_BYTES {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => {
                let transient_error = transient(&e);
                let err = http_error(&registry.domain, what, e);
                return Err(if transient_error {
                    ReadError::Transient(err)
                } else {
                    ReadError::Fatal(err)
                });
            }
        }
    }
}

/// `Content-Range: bytes START-END/TOTAL` → START.
fn range_start(resp: &reqwest::Response) -> Option<u64> {
    let v = resp.headers().get(CONTENT_RANGE)?.to_str().ok()?;
    let v = v.trim().strip_prefix("bytes")?.trim_start();
    v.split('-').next()?.trim().parse().ok()
}

fn media_type_in_body(bytes: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Probe {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
    }
    serde_json::from_slice::<Probe>(bytes).ok()?.media_type
}

fn protocol(registry: &Registry, what: &str, message: &str) -> RegistryError {
    RegistryError::Protocol {
        registry: registry.domain.clone(),
        what: what.to_string(),
        message: message.to_string(),
    }
}
