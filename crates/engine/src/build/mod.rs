//! The build half of the engine: turning a typed Dockerfile into an image.
//! [`config`]: what metadata instructions do to the image config and history.

pub mod config;
