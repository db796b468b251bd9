//! Moving images between a registry and the local store: [`pull`] (also
//! what `FROM` uses) and [`push`]. The registry client moves bytes and
//! verifies digests; this module decides which bytes, in what order, and
//! when a name may point at them.
//!
//! **Invariant:** a name is set only after every blob it needs is in the
//! store, verified (the store's `set_ref` checks it too).

pub mod pull;
pub mod push;

pub use pull::{PullOptions, PullReport, pull};
pub use push::{PushReport, push, push_digest};

use crate::digest::Digest;

#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error(transparent)]
    Registry(#[from] crate::registry::RegistryError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Image(#[from] crate::image::ImageError),
    #[error("no image {0:?} in the store")]
    NotInStore(String),
    #[error(
        "index {index} lists {missing} platform(s) that are not in the store; push one platform by its manifest digest instead"
    )]
    IncompleteIndex { index: Digest, missing: usize },
    #[error("index entry {0} is itself an index; hoist handles one level")]
    NestedIndex(Digest),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = TransferError> = std::result::Result<T, E>;
