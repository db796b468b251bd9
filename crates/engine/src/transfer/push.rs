//! `hoist push`: an image from the store to a registry. Blobs the
//! repository has are skipped (`HEAD`); blobs of an image that came from
//! another repository of the same registry are mounted; the rest upload
//! from the store's files. Manifests go last, children before an index.

use super::{Result, TransferError};
use crate::digest::Digest;
use crate::image::{AnyManifest, Manifest, Raw};
use crate::reference::{Reference, Repository};
use crate::registry::{BlobRef, BlobSource, Client, Progress, PushOutcome};
use crate::store::Store;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushReport {
    /// The digest of the top manifest or index as pushed.
    pub digest: Digest,
    pub uploaded: Vec<Digest>,
    pub skipped: Vec<Digest>,
    pub mounted: Vec<Digest>,
}

/// Push the store image named `source` (a full store name) to `dest`.
/// `mount_from`: a repository on the same registry that has the blobs.
pub async fn push(
    client: &Client,
    store: &Store,
    source: &str,
    dest: &Reference,
    progress: &Progress,
) -> Result<PushReport> {
    let _lease = store.lease()?;
    let record = store
        .resolve(source)
        .map_err(|_| TransferError::NotInStore(source.to_string()))?;
    let mount_from = Reference::parse(source)
        .ok()
        .map(|r| r.repository().clone())
        .filter(|r| r.domain() == dest.domain() && r != dest.repository());
    push_digest(
        client,
        store,
        &record.digest,
        &record.media_type,
        mount_from.as_ref(),
        dest,
        progress,
    )
    .await
}

/// Push the stored manifest or index `digest` to `dest`. Its layers need
/// not all be in the store: one an imported cache knows is mounted from
/// the cache's repository (same registry) or fetched.
pub async fn push_digest(
    client: &Client,
    store: &Store,
    digest: &Digest,
    media_type: &str,
    mount_from: Option<&Repository>,
    dest: &Reference,
    progress: &Progress,
) -> Result<PushReport> {
    let _lease = store.lease()?;
    let repo = dest.repository();
    let mut report = PushReport {
        digest: digest.clone(),
        uploaded: Vec::new(),
        skipped: Vec::new(),
        mounted: Vec::new(),
    };
    let bytes = store.read_blob_verified(digest)?;
    // The single-platform manifests to push before the top document.
    let manifests = match AnyManifest::parse(bytes.clone(), Some(media_type))? {
        AnyManifest::Manifest(m) => vec![*m],
        AnyManifest::Index(index) => {
            let children = &index.value().manifests;
            let missing = children
                .iter()
                .filter(|d| !store.has_blob(&d.digest).unwrap_or(false))
                .count();
            if missing > 0 {
                return Err(TransferError::IncompleteIndex {
                    index: digest.clone(),
                    missing,
                });
            }
            let mut out = Vec::new();
            for desc in children {
                match AnyManifest::parse(
                    store.read_blob_verified(&desc.digest)?,
                    Some(&desc.media_type),
                )? {
                    AnyManifest::Manifest(m) => out.push(*m),
                    AnyManifest::Index(_) => {
                        return Err(TransferError::NestedIndex(desc.digest.clone()));
                    }
                }
            }
            out
        }
    };
    for m in &manifests {
        push_manifest_blobs(client, store, repo, m, mount_from, progress, &mut report).await?;
    }
    let pushed = client.put_manifest(dest, media_type, &bytes).await?;
    report.digest = pushed;
    Ok(report)
}

async fn push_manifest_blobs(
    client: &Client,
    store: &Store,
    repo: &Repository,
    manifest: &Raw<Manifest>,
    mount_from: Option<&Repository>,
    progress: &Progress,
    report: &mut PushReport,
) -> Result<()> {
    let m = manifest.value();
    let blobs = std::iter::once(&m.config).chain(m.layers.iter().filter(|l| l.urls.is_empty()));
    for desc in blobs {
        let blob = BlobRef::new(desc.digest.clone(), desc.size);
        match push_store_blob(client, store, repo, &blob, mount_from, progress).await? {
            PushOutcome::Exists => report.skipped.push(blob.digest),
            PushOutcome::Mounted => report.mounted.push(blob.digest),
            PushOutcome::Uploaded => report.uploaded.push(blob.digest),
        }
    }
    let media_type = m.media_type().to_string();
    let by_digest = Reference::parse(&format!("{}@{}", repo, manifest.digest())).map_err(|e| {
        TransferError::Io {
            what: format!("reference for {repo}"),
            source: std::io::Error::other(e),
        }
    })?;
    client
        .put_manifest(&by_digest, &media_type, manifest.bytes())
        .await?;
    Ok(())
}

/// Push one blob of the store: skipped when the repository has it;
/// mounted from the repository of an imported cache that holds it (same
/// registry), else from `mount_from`; else uploaded, fetched first when
/// the store has not fetched it yet.
pub(crate) async fn push_store_blob(
    client: &Client,
    store: &Store,
    repo: &Repository,
    blob: &BlobRef,
    mount_from: Option<&Repository>,
    progress: &Progress,
) -> Result<PushOutcome> {
    let origin = store
        .blob_origin(&blob.digest)
        .and_then(|o| Repository::parse(&o).ok())
        .filter(|o| o.domain() == repo.domain() && o != repo);
    let from = origin.as_ref().or(mount_from);
    let source = BlobSource::File(store.blob_path(&blob.digest));
    if store.has_blob(&blob.digest)? {
        return Ok(client
            .push_blob(repo, blob, &source, from, progress)
            .await?);
    }
    // Not fetched yet: fetch it only if the registry can neither skip nor
    // mount it.
    if client.blob_exists(repo, &blob.digest).await?.is_some() {
        return Ok(PushOutcome::Exists);
    }
    if let Some(from) = from
        && client.mount_blob(repo, from, &blob.digest).await?
    {
        return Ok(PushOutcome::Mounted);
    }
    let (store2, digest) = (store.clone(), blob.digest.clone());
    let fetched = tokio::task::spawn_blocking(move || store2.ensure_blob(&digest))
        .await
        .map_err(|e| TransferError::Io {
            what: format!("fetching blob {}", blob.digest),
            source: std::io::Error::other(e),
        })??;
    if !fetched {
        return Err(crate::store::StoreError::BlobNotFound(blob.digest.clone()).into());
    }
    client.upload_blob(repo, blob, &source, progress).await?;
    Ok(PushOutcome::Uploaded)
}
