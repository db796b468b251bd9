//! The build half of the engine: turning a typed Dockerfile into an image.
//!
//! - [`config`]: what metadata instructions do to the image config and history.
//! - [`key`]: cache keys (versioned canonical encoding).
//! - [`state`]: the image after each step.

pub mod config;
pub mod key;
pub mod state;
