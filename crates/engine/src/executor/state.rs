//! What a build step produces: the image so far (its layers and config)
//! and the cache key of the chain of steps that made it.

use crate::digest::Digest;
use crate::image::{Descriptor, ImageConfig};

/// One layer of an image being built.
#[derive(Debug, Clone, PartialEq)]
pub struct Layer {
    pub descriptor: Descriptor,
    pub diff_id: Digest,
}

/// The image after a step.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageState {
    pub layers: Vec<Layer>,
    pub config: ImageConfig,
    /// The cache key of everything that made this state.
    pub key: Digest,
}

impl ImageState {
    /// The diff_ids, bottom first.
    pub fn diff_ids(&self) -> Vec<Digest> {
        self.layers.iter().map(|l| l.diff_id.clone()).collect()
    }
}
