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
    let Resolved {
        top_digest,
        top_media_type,
        documents,
        manifest,
    } = resolve(client, reference, &opts.platform).await?;
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

/// A reference resolved to one platform's manifest.
struct Resolved {
    top_digest: Digest,
    top_media_type: String,
    /// The documents as served: the top one, then the chosen child of an
    /// index.
    documents: Vec<Vec<u8>>,
    manifest: crate::image::Raw<crate::image::Manifest>,
}

/// The manifest of `reference` for `platform` (through an index when the
/// registry serves one).
async fn resolve(client: &Client, reference: &Reference, platform: &Platform) -> Result<Resolved> {
    let top = client.get_manifest(reference).await?;
    let mut documents = vec![top.bytes.clone()];
    let manifest = match AnyManifest::parse(top.bytes, Some(&top.media_type))? {
        AnyManifest::Manifest(m) => *m,
        AnyManifest::Index(index) => {
            let desc = index.value().select(platform)?;
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
    Ok(Resolved {
        top_digest: top.digest,
        top_media_type: top.media_type,
        documents,
        manifest,
    })
}

/// Resolve `reference` without its layers: the manifest (and the index
/// above it), and the config, into the store; no name is set (a ref only
/// names images whose layers are stored). Returns the top document's
/// digest and media type and the chosen manifest's layers, for a fetcher
/// to fetch when something reads them.
pub async fn resolve_manifest(
    client: &Client,
    store: &Store,
    reference: &Reference,
    platform: &Platform,
) -> Result<(Digest, String, Vec<Descriptor>)> {
    let _lease = store.lease()?;
    let Resolved {
        top_digest,
        top_media_type,
        documents,
        manifest,
    } = resolve(client, reference, platform).await?;
    let config = &manifest.value().config;
    if !store.has_blob(&config.digest)? {
        fetch_blob(
            client,
            store,
            reference.repository(),
            &BlobRef::new(config.digest.clone(), config.size),
        )
        .await?;
    }
    for doc in documents.iter().rev() {
        store.put_blob_bytes(doc)?;
    }
    Ok((top_digest, top_media_type, manifest.value().layers.clone()))
}

/// Download one blob of `repo` into the store, verified.
pub(crate) async fn fetch_blob(
    client: &Client,
    store: &Store,
    repo: &crate::reference::Repository,
    blob: &BlobRef,
) -> Result<()> {
    let sink = StoreSink::new(store, blob)?;
    client.get_blob(repo, blob, sink, &Progress::none()).await?;
    Ok(())
}

/// A registry blob streaming into the store; committed only when the
/// client has verified it (and verified again by the store's own hash).
/// The store side (disk write and its hash) runs on its own thread, so
/// it overlaps the client's download and hash instead of adding to them.
struct StoreSink {
    tx: Option<tokio::sync::mpsc::Sender<bytes::Bytes>>,
    worker: Option<Worker>,
    blob: BlobRef,
    store: Store,
}

/// The thread writing a [`StoreSink`]'s temp blob.
type Worker = std::thread::JoinHandle<std::io::Result<BlobWriter>>;

impl StoreSink {
    fn new(store: &Store, blob: &BlobRef) -> Result<StoreSink> {
        let (tx, worker) = Self::start(store)?;
        Ok(StoreSink {
            tx: Some(tx),
            worker: Some(worker),
            blob: blob.clone(),
            store: store.clone(),
        })
    }

    /// A fresh temp blob and the thread that writes it.
    fn start(store: &Store) -> Result<(tokio::sync::mpsc::Sender<bytes::Bytes>, Worker)> {
        let mut writer = store.blob_writer()?;
        let (tx, mut rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(32);
        let worker = std::thread::Builder::new()
            .name("hoist-blob-writer".into())
            .spawn(move || {
                while let Some(chunk) = rx.blocking_recv() {
                    std::io::Write::write_all(&mut writer, &chunk)?;
                }
                Ok(writer)
            })
            .map_err(|source| TransferError::Io {
                what: "starting the blob writer thread".into(),
                source,
            })?;
        Ok((tx, worker))
    }

    /// Close the channel and wait for the writer thread.
    async fn join(&mut self) -> std::io::Result<BlobWriter> {
        self.tx = None;
        let worker = self
            .worker
            .take()
            .ok_or_else(|| std::io::Error::other("blob writer already joined"))?;
        tokio::task::spawn_blocking(move || worker.join())
            .await
            .map_err(std::io::Error::other)?
            .map_err(|_| std::io::Error::other("blob writer thread panicked"))?
    }
}

impl BlobSink for StoreSink {
    type Output = ();

    async fn write(&mut self, bytes: bytes::Bytes) -> std::io::Result<()> {
        let tx = self
            .tx
            .as_ref()
            .ok_or_else(|| std::io::Error::other("blob writer closed"))?;
        if tx.send(bytes).await.is_err() {
            // The thread stopped early: its error is the one to report.
            return Err(self
                .join()
                .await
                .err()
                .unwrap_or_else(|| std::io::Error::other("blob writer stopped")));
        }
        Ok(())
    }

    async fn restart(&mut self) -> std::io::Result<bool> {
        // The old writer's temp file goes when it is dropped.
        let _ = self.join().await;
        let (tx, worker) = Self::start(&self.store).map_err(std::io::Error::other)?;
        self.tx = Some(tx);
        self.worker = Some(worker);
        Ok(true)
    }

    async fn finish(mut self) -> std::io::Result<()> {
        let writer = self.join().await?;
        let blob = self.blob.clone();
        tokio::task::spawn_blocking(move || writer.commit(Some(&blob.digest), Some(blob.size)))
            .await
            .map_err(std::io::Error::other)?
            .map(|_| ())
            .map_err(std::io::Error::other)
    }

    async fn abort(mut self) {
        // The uncommitted writer deletes its temp file when dropped.
        let _ = self.join().await;
    }
}
