//! Bringing images into the store from outside a registry:
//! [`archive`] loads an OCI layout tarball or a `docker save` tarball
//! (`hoist load`).

pub mod archive;
