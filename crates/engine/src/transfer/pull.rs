//! `hoist pull`: a manifest (or an index and the manifest for the wanted
//! platform), its config and its layers into the store, the layers
//! downloaded concurrently, each verified as it streams.

use futures_util::{StreamExt, TryStreamExt};

use super::{Result, TransferError};
use crate::digest::Digest;
use crate::image::{AnyManifest, Descriptor, Platform};
use crate::reference::Reference;
use crate::registry::{BlobRef, BlobSink, Client, Progress};
use crate::store::{BlobWriter, Store};

/// How many blobs download at once.
pub const CONCURRENT_BLOBS: usize = 4;

#[derive(Debug, Clone)]
pub struct PullOptions {
    /// The platform to pick from an index.
    pub platform: Platform,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullReport {
    /// The name set in the store (`docker.io/library/busybox:latest`).
    pub name: String,
    /// What the name points at (an index when the registry served one).
    pub digest: Digest,
    /// The single-platform manifest chosen.
    pub manifest: Digest,
    /// Blobs downloaded (others were already in the store).
    pub downloaded: Vec<Digest>,
}

/// Pull `reference` into `store` and name it.
pub async fn pull(
    client: &Client,
    store: &Store,
    reference: &Reference,
    opts: &PullOptions,
    progress: &Progress,
) -> Result<PullReport> {
    let _lease = store.lease()?;
    let repo = reference.repository();
    let top = client.get_manifest(reference).await?;
    let top_digest = top.digest.clone();
    let top_media_type = top.media_type.clone();
    let mut documents = vec![top.bytes.clone()];
    let manifest = match AnyManifest::parse(top.bytes, Some(&top.media_type))? {
        AnyManifest::Manifest(m) => *m,
        AnyManifest::Index(index) => {
            let desc = index.value().select(&opts.platform)?;
            let child = client
                .get_manifest(&reference.with_digest(desc.digest.clone()))
                .await?;
            documents.push(child.bytes.clone());
            match AnyManifest::parse(child.bytes, Some(&desc.media_type))? {
                AnyManifest::Manifest(m) => *m,
                AnyManifest::Index(_) => {
                    return Err(TransferError::NestedIndex(desc.digest.clone()));
                }
            }
        }
    };
    let mut wanted: Vec<&Descriptor> = vec![&manifest.value().config];
    wanted.extend(manifest.value().layers.iter().filter(|l| l.urls.is_empty()));
    let mut missing = Vec::new();
    for d in wanted {
        if !store.has_blob(&d.digest)? && !missing.iter().any(|m: &BlobRef| m.digest == d.digest) {
            missing.push(BlobRef::new(d.digest.clone(), d.size));
        }
    }
    let downloaded: Vec<Digest> = futures_util::stream::iter(missing.into_iter().map(|blob| {
        let (client, store, repo, progress) = (
            client.clone(),
            store.clone(),
            repo.clone(),
            progress.clone(),
        );
        async move {
            let sink = StoreSink::new(&store, &blob)?;
            client.get_blob(&repo, &blob, sink, &progress).await?;
            Ok::<Digest, TransferError>(blob.digest)
        }
    }))
    .buffer_unordered(CONCURRENT_BLOBS)
    .try_collect()
    .await?;
    // Child first, then the top document: a ref never sees a missing child.
    for doc in documents.iter().rev() {
        store.put_blob_bytes(doc)?;
    }
    let name = reference.to_string();
    store.set_ref(&name, &top_digest, Some(&top_media_type))?;
    Ok(PullReport {
        name,
        digest: top_digest,
        manifest: manifest.digest().clone(),
        downloaded,
    })
}

/// A registry blob streaming into the store; committed only when the
/// client has verified it (and verified again by the store's own hash).
struct StoreSink {
    writer: BlobWriter,
    blob: BlobRef,
}

impl StoreSink {
    fn new(store: &Store, blob: &BlobRef) -> Result<StoreSink> {
        Ok(StoreSink {
            writer: store.blob_writer()?,
            blob: blob.clone(),
        })
    }
}

impl BlobSink for StoreSink {
    type Output = ();

    async fn write(&mut self, bytes: bytes::Bytes) -> std::io::Result<()> {
        tokio::task::block_in_place(|| std::io::Write::write_all(&mut self.writer, &bytes))
    }

    async fn finish(self) -> std::io::Result<()> {
        let StoreSink { writer, blob } = self;
        tokio::task::block_in_place(|| writer.commit(Some(&blob.digest), Some(blob.size)))
            .map(|_| ())
            .map_err(std::io::Error::other)
    }

    async fn abort(self) {
        // Dropping the uncommitted writer deletes its temp file.
    }
}
