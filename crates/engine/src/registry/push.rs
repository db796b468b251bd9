//! Pushing: `HEAD` to skip blobs the registry has, cross-repository
//! mounts, uploads (one streamed `PUT` for a known size; `PATCH` chunks
//! when forced or when the registry refuses the single `PUT`), and
//! manifests by tag or digest.
//!
//! A failed upload attempt is never continued: the next attempt opens a
//! new upload session and sends the blob again from its start.

use std::io::SeekFrom;
use std::path::PathBuf;

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use reqwest::{Response, StatusCode, Url};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::auth::Scope;
use super::transport::{Backoff, Registry, body_message, status_error};
use super::{BlobRef, Client, Progress, ProgressEvent, RegistryError, Result};
use crate::digest::Digest;
use crate::reference::{Reference, Repository};

const OCTET_STREAM: &str = "application/octet-stream";

/// Where an upload reads the blob from (re-opened on each attempt).
#[derive(Debug, Clone)]
pub enum BlobSource {
    Bytes(Bytes),
    File(PathBuf),
}

/// What `push_blob` had to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    /// The registry already had the blob in the repository.
    Exists,
    /// Mounted from another repository of the same registry.
    Mounted,
    Uploaded,
}

/// Why one upload attempt failed.
enum Attempt {
    /// Try again with a fresh session (after a backoff).
    Retry(RegistryError),
    /// The registry refused the one-`PUT` upload: use chunks.
    NeedsChunks(RegistryError),
    Fatal(RegistryError),
}

impl BlobSource {
    fn io_error(&self, e: std::io::Error) -> RegistryError {
        let what = match self {
            BlobSource::Bytes(_) => "blob source (memory)".to_string(),
            BlobSource::File(p) => format!("blob source {}", p.display()),
        };
        RegistryError::Io { what, source: e }
    }

    /// The whole blob as a body that reports progress.
    fn body(&self, blob: &BlobRef, progress: &Progress) -> Result<reqwest::Body> {
        let stream = match self {
            BlobSource::Bytes(b) => {
                futures_util::stream::iter([Ok::<_, std::io::Error>(b.clone())]).boxed()
            }
            BlobSource::File(p) => {
                let file = std::fs::File::open(p).map_err(|e| self.io_error(e))?;
                tokio_util::io::ReaderStream::with_capacity(
                    tokio::fs::File::from_std(file),
                    256 << 10,
                )
                .boxed()
            }
        };
        let (digest, total, progress) = (blob.digest.clone(), blob.size, progress.clone());
        let mut done = 0u64;
        let counted = stream.inspect(move |chunk| {
            if let Ok(chunk) = chunk {
                done += chunk.len() as u64;
                progress.emit(|| ProgressEvent::Bytes {
                    digest: digest.clone(),
                    done,
                    total,
                });
            }
        });
        Ok(reqwest::Body::wrap_stream(counted))
    }

    async fn len(&self) -> Result<u64> {
        match self {
            BlobSource::Bytes(b) => Ok(b.len() as u64),
            BlobSource::File(p) => Ok(tokio::fs::metadata(p)
                .await
                .map_err(|e| self.io_error(e))?
                .len()),
        }
    }

    /// Bytes `[offset, offset + len)`.
    async fn read_at(&self, offset: u64, len: usize) -> Result<Bytes> {
        match self {
            BlobSource::Bytes(b) => {
                let start = (offset as usize).min(b.len());
                Ok(b.slice(start..(start + len).min(b.len())))
            }
            BlobSource::File(p) => {
                let mut file = tokio::fs::File::open(p)
                    .await
                    .map_err(|e| self.io_error(e))?;
                file.seek(SeekFrom::Start(offset))
                    .await
                    .map_err(|e| self.io_error(e))?;
                let mut buf = vec![0; len];
                file.read_exact(&mut buf)
                    .await
                    .map_err(|e| self.io_error(e))?;
                Ok(Bytes::from(buf))
            }
        }
    }
}

impl Client {
    /// `HEAD` the blob: its size if the repository has it.
    pub async fn blob_exists(&self, repo: &Repository, digest: &Digest) -> Result<Option<u64>> {
        let registry = self.registry(repo.domain()).await?;
        let what = format!("blob {digest} in {repo}");
        let url = registry.url(&format!("v2/{}/blobs/{digest}", repo.path()))?;
        let mut build = |http: &reqwest::Client| Ok(http.head(url.clone()));
        let resp = self
            .send(&registry, &Scope::pull(repo), &what, true, &mut build)
            .await?;
        match resp.status() {
            // Not `content_length()`: a HEAD answer has no body.
            s if s.is_success() => Ok(Some(
                resp.headers()
                    .get(CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
            )),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(status_error(&registry, &what, resp).await),
        }
    }

    /// Mount `digest` from `from` into `repo` (same registry). True when
    /// mounted; on `202` the registry opened an upload instead, which is
    /// cancelled, and the answer is false.
    pub async fn mount_blob(
        &self,
        repo: &Repository,
        from: &Repository,
        digest: &Digest,
    ) -> Result<bool> {
        if repo.domain() != from.domain() {
            return Ok(false);
        }
        let registry = self.registry(repo.domain()).await?;
        let what = format!("mount of blob {digest} from {from} into {repo}");
        let mut url = registry.url(&format!("v2/{}/blobs/uploads/", repo.path()))?;
        url.query_pairs_mut()
            .append_pair("mount", &digest.to_string())
            .append_pair("from", from.path());
        let mut build =
            |http: &reqwest::Client| Ok(http.post(url.clone()).header(CONTENT_LENGTH, "0"));
        let scope = Scope::mount(repo, from);
        let resp = self
            .send(&registry, &scope, &what, true, &mut build)
            .await?;
        match resp.status() {
            StatusCode::CREATED => Ok(true),
            StatusCode::ACCEPTED => {
                let session = location(&registry, &what, &resp)?;
                self.cancel_upload(&registry, &scope, &session).await;
                Ok(false)
            }
            _ => Err(status_error(&registry, &what, resp).await),
        }
    }

    /// Push a blob unless the repository has it: `HEAD`, then a mount
    /// from `mount_from` if given, then an upload.
    pub async fn push_blob(
        &self,
        repo: &Repository,
        blob: &BlobRef,
        source: &BlobSource,
        mount_from: Option<&Repository>,
        progress: &Progress,
    ) -> Result<PushOutcome> {
        if self.blob_exists(repo, &blob.digest).await?.is_some() {
            progress.emit(|| ProgressEvent::Exists {
                digest: blob.digest.clone(),
            });
            return Ok(PushOutcome::Exists);
        }
        if let Some(from) = mount_from
            && self.mount_blob(repo, from, &blob.digest).await?
        {
            progress.emit(|| ProgressEvent::Mounted {
                digest: blob.digest.clone(),
                from: from.to_string(),
            });
            return Ok(PushOutcome::Mounted);
        }
        self.upload_blob(repo, blob, source, progress).await?;
        Ok(PushOutcome::Uploaded)
    }

    /// Upload a blob of known size: one streamed `PUT ?digest=`, or
    /// `PATCH` chunks when forced or when the registry refuses the `PUT`.
    /// Each failed attempt starts over with a new session.
    pub async fn upload_blob(
        &self,
        repo: &Repository,
        blob: &BlobRef,
        source: &BlobSource,
        progress: &Progress,
    ) -> Result<()> {
        let registry = self.registry(repo.domain()).await?;
        let scope = Scope::push(repo);
        let what = format!("upload of blob {} to {repo}", blob.digest);
        let actual = source.len().await?;
        if actual != blob.size {
            return Err(RegistryError::SizeMismatch {
                what: format!("{what}: the source"),
                expected: blob.size,
                actual,
            });
        }
        let mut chunked = self.inner.options.force_chunked_upload;
        let mut backoff = Backoff::new(&self.inner.options.retry);
        loop {
            let attempt = self
                .upload_attempt(
                    &registry, &scope, &what, repo, blob, source, progress, chunked,
                )
                .await;
            let err = match attempt {
                Ok(()) => break,
                Err(Attempt::Fatal(e)) => return Err(e),
                Err(Attempt::NeedsChunks(e)) if !chunked => {
                    tracing::info!(%what, error = %e, "single PUT refused; uploading in chunks");
                    chunked = true;
                    continue;
                }
                Err(Attempt::NeedsChunks(e) | Attempt::Retry(e)) => e,
            };
            let Some(delay) = backoff.next_delay(None) else {
                return Err(err);
            };
            tracing::warn!(%what, error = %err, ?delay, "upload failed; starting over");
            tokio::time::sleep(delay).await;
        }
        progress.emit(|| ProgressEvent::Done {
            digest: blob.digest.clone(),
        });
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn upload_attempt(
        &self,
        registry: &Registry,
        scope: &Scope,
        what: &str,
        repo: &Repository,
        blob: &BlobRef,
        source: &BlobSource,
        progress: &Progress,
        chunked: bool,
    ) -> Result<(), Attempt> {
        let start = registry
            .url(&format!("v2/{}/blobs/uploads/", repo.path()))
            .map_err(Attempt::Fatal)?;
        let mut build =
            |http: &reqwest::Client| Ok(http.post(start.clone()).header(CONTENT_LENGTH, "0"));
        let resp = self
            .send(registry, scope, what, true, &mut build)
            .await
            .map_err(Attempt::Fatal)?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(Attempt::Fatal(status_error(registry, what, resp).await));
        }
        let mut session = location(registry, what, &resp).map_err(Attempt::Fatal)?;
        if chunked && blob.size > 0 {
            session = self
                .send_chunks(registry, scope, what, session, blob, source, progress)
                .await?;
        }
        let mut put_url = session.clone();
        put_url
            .query_pairs_mut()
            .append_pair("digest", &blob.digest.to_string());
        let with_body = !chunked && blob.size > 0;
        let mut build = |http: &reqwest::Client| {
            let request = http.put(put_url.clone()).header(CONTENT_TYPE, OCTET_STREAM);
            Ok(if with_body {
                request
                    .header(CONTENT_LENGTH, blob.size)
                    .body(source.body(blob, progress)?)
            } else {
                request.header(CONTENT_LENGTH, "0")
            })
        };
        let resp = match self.send(registry, scope, what, false, &mut build).await {
            Ok(resp) => resp,
            Err(e @ RegistryError::Http { .. }) => {
                self.cancel_upload(registry, scope, &session).await;
                return Err(Attempt::Retry(e));
            }
            Err(e) => return Err(Attempt::Fatal(e)),
        };
        let status = resp.status();
        if status == StatusCode::CREATED || status == StatusCode::NO_CONTENT {
            return check_digest_header(&resp, &blob.digest, what).map_err(Attempt::Fatal);
        }
        let code = status.as_u16();
        let err = status_error(registry, what, resp).await;
        self.cancel_upload(registry, scope, &session).await;
        let message = err.to_string();
        Err(match code {
            408 | 429 | 500..=599 if code != 501 => Attempt::Retry(err),
            400 if message.contains("DIGEST_INVALID") || message.contains("SIZE_INVALID") => {
                Attempt::Fatal(err)
            }
            401 | 403 | 404 => Attempt::Fatal(err),
            _ if with_body => Attempt::NeedsChunks(err),
            _ => Attempt::Fatal(err),
        })
    }

    /// `PATCH` the blob in chunks; the session URL to `PUT` to after.
    #[allow(clippy::too_many_arguments)]
    async fn send_chunks(
        &self,
        registry: &Registry,
        scope: &Scope,
        what: &str,
        mut session: Url,
        blob: &BlobRef,
        source: &BlobSource,
        progress: &Progress,
    ) -> Result<Url, Attempt> {
        let chunk_size = self.inner.options.chunk_size.max(1) as u64;
        let mut offset = 0u64;
        while offset < blob.size {
            let len = chunk_size.min(blob.size - offset);
            let chunk = source
                .read_at(offset, len as usize)
                .await
                .map_err(Attempt::Fatal)?;
            let url = session.clone();
            let range = format!("{}-{}", offset, offset + len - 1);
            let mut build = |http: &reqwest::Client| {
                Ok(http
                    .patch(url.clone())
                    .header(CONTENT_TYPE, OCTET_STREAM)
                    .header("content-range", &range)
                    .header(CONTENT_LENGTH, len)
                    .body(chunk.clone()))
            };
            let resp = match self.send(registry, scope, what, false, &mut build).await {
                Ok(resp) => resp,
                Err(e @ RegistryError::Http { .. }) => return Err(Attempt::Retry(e)),
                Err(e) => return Err(Attempt::Fatal(e)),
            };
            if resp.status() != StatusCode::ACCEPTED {
                let retry = resp.status().is_server_error()
                    || resp.status() == StatusCode::TOO_MANY_REQUESTS;
                let err = status_error(registry, what, resp).await;
                self.cancel_upload(registry, scope, &session).await;
                return Err(if retry {
                    Attempt::Retry(err)
                } else {
                    Attempt::Fatal(err)
                });
            }
            session = location(registry, what, &resp).map_err(Attempt::Fatal)?;
            offset += len;
            progress.emit(|| ProgressEvent::Bytes {
                digest: blob.digest.clone(),
                done: offset,
                total: blob.size,
            });
        }
        Ok(session)
    }

    /// Best effort `DELETE` of an upload session.
    async fn cancel_upload(&self, registry: &Registry, scope: &Scope, session: &Url) {
        let mut build = |http: &reqwest::Client| Ok(http.delete(session.clone()));
        let what = "cancel upload session";
        match self.send(registry, scope, what, false, &mut build).await {
            Ok(resp) if resp.status().is_success() || resp.status() == StatusCode::NOT_FOUND => {}
            Ok(resp) => {
                let status = resp.status().as_u16();
                tracing::debug!(status, "{what}: {}", body_message(resp).await);
            }
            Err(e) => tracing::debug!("{what}: {e}"),
        }
    }

    /// `PUT` a manifest by the reference's tag, or by its digest when it
    /// has no tag. The digest of `bytes` is returned; a digest in the
    /// reference must match it, and so must `Docker-Content-Digest`.
    pub async fn put_manifest(
        &self,
        reference: &Reference,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<Digest> {
        let digest = Digest::of(bytes);
        let what = format!("manifest push {reference}");
        if let Some(expected) = reference.digest()
            && *expected != digest
        {
            return Err(RegistryError::DigestMismatch {
                what,
                expected: expected.clone(),
                actual: digest,
            });
        }
        let target = match reference.tag() {
            Some(tag) => tag.to_string(),
            None => digest.to_string(),
        };
        let registry = self.registry(reference.domain()).await?;
        let url = registry.url(&format!("v2/{}/manifests/{target}", reference.path()))?;
        let body = Bytes::copy_from_slice(bytes);
        let mut build = |http: &reqwest::Client| {
            Ok(http
                .put(url.clone())
                .header(CONTENT_TYPE, media_type)
                .body(body.clone()))
        };
        let scope = Scope::push(reference.repository());
        let resp = self
            .send(&registry, &scope, &what, true, &mut build)
            .await?;
        if !resp.status().is_success() {
            return Err(status_error(&registry, &what, resp).await);
        }
        check_digest_header(&resp, &digest, &what)?;
        Ok(digest)
    }
}

/// The upload session URL from `Location`, resolved against the request.
fn location(registry: &Registry, what: &str, resp: &Response) -> Result<Url> {
    let value = resp
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| RegistryError::Protocol {
            registry: registry.domain.clone(),
            what: what.to_string(),
            message: format!("http {} without a Location header", resp.status().as_u16()),
        })?;
    resp.url().join(value).map_err(|e| RegistryError::Protocol {
        registry: registry.domain.clone(),
        what: what.to_string(),
        message: format!("bad Location {value:?}: {e}"),
    })
}

fn check_digest_header(resp: &Response, expected: &Digest, what: &str) -> Result<()> {
    let header = resp
        .headers()
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<Digest>().ok());
    match header {
        Some(actual) if actual != *expected => Err(RegistryError::DigestMismatch {
            what: what.to_string(),
            expected: expected.clone(),
            actual,
        }),
        _ => Ok(()),
    }
}
