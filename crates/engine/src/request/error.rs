//! Why a build request failed: the build itself, or what it did with the
//! image after (outputs, names, pushes, caches).

use crate::executor::BuildError;

#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The build's steps failed (or its Dockerfile did not plan).
    #[error(transparent)]
    Build(#[from] BuildError),
    /// `--push` with no name to push to (buildx's words).
    #[error("tag is needed when pushing to registry")]
    TagNeeded,
    /// A tag or output name that is no image reference.
    #[error("invalid image reference {name:?}")]
    Name {
        name: String,
        #[source]
        source: crate::reference::ReferenceError,
    },
    /// `--load` (or `-o type=docker`): no engine to load into, asked before the build.
    #[error("--load")]
    Load(#[source] Box<RequestError>),
    /// One output failed; `output` is its spec as given.
    #[error("exporting to {output}")]
    Output {
        output: String,
        #[source]
        source: Box<RequestError>,
    },
    /// An image output's `compression-level=` without `compression=`.
    #[error("compression-level= needs compression= (or force-compression=true)")]
    LevelWithoutCompression,
    /// An OCI layout directory needs a directory.
    #[error("tar=false needs a directory")]
    LayoutNeedsDir,
    /// A push was asked for with no registry client.
    #[error("pushing {0}: no registry client")]
    NoClient(String),
    #[error(transparent)]
    Annotation(#[from] crate::export::annotation::AnnotationError),
    /// The image config is not JSON.
    #[error("image config {digest}")]
    Config {
        digest: crate::digest::Digest,
        #[source]
        source: serde_json::Error,
    },
    /// An output spec hoist made itself did not parse.
    #[error("{0}")]
    Spec(String),
    #[error(transparent)]
    Annotate(#[from] crate::export::annotation::AnnotateError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Recompress(#[from] crate::export::recompress::RecompressError),
    #[error(transparent)]
    Archive(#[from] crate::export::archive::ArchiveError),
    #[error(transparent)]
    Filesystem(#[from] crate::export::filesystem::FilesystemError),
    #[error(transparent)]
    Daemon(#[from] crate::export::daemon::DaemonError),
    #[error(transparent)]
    Transfer(#[from] crate::transfer::TransferError),
    #[error(transparent)]
    Cache(#[from] crate::cache::CacheError),
    #[error(transparent)]
    Image(#[from] crate::image::ImageError),
    #[error("writing the image for the engine")]
    LoadArchive(#[source] Box<RequestError>),
    #[error("{what} {path}")]
    Io {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// Writing to the front end's standard output failed or was refused.
    #[error("{0}")]
    Stdout(std::io::Error),
    #[error("layer {0} is not in the store")]
    LayerMissing(crate::digest::Digest),
}
