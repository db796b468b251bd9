//! Pull mirrors, as buildkitd's `[registry."docker.io"] mirrors` and
//! containerd's hosts: a pull from a registry with mirrors tries each
//! mirror in order, then the registry itself, with the same repository
//! path, and each host's own credentials and scheme (a mirror elsewhere
//! than loopback needs its own `insecure` entry for plain HTTP).
//!
//! - Only pulls (`get_manifest`, `get_blob`) use mirrors; pushes, tag
//!   lists and `login` go to the registry, as containerd gives mirrors
//!   only the pull and resolve capabilities.
//! - A mirror that answers with an error (404, 401, 5xx, a manifest
//!   that does not match its digest) is passed over for that request. A
//!   mirror whose `/v2/` cannot be reached at all is skipped for the rest
//!   of the client's life, so a dead mirror costs one connection attempt.
//! - A blob a mirror broke off halfway (or stalled) resumes on the next
//!   host with a `Range` request; a blob whose bytes did not match is
//!   fetched once more from the start (mirrors first again) when its sink
//!   can start over, and the error names the host that served it.
//! - When every host fails, the error is the registry's own, with what
//!   each mirror answered first ([`RegistryError::AfterMirrors`]).

use std::error::Error as _;
use std::sync::Arc;

use super::transport::Registry;
use super::{Client, RegistryError, Result};

impl Client {
    /// The mirrors a pull from `domain` tries first, in order (those found
    /// unreachable left out).
    pub(crate) fn mirrors_of(&self, domain: &str) -> Vec<String> {
        let Some(mirrors) = self.inner.options.mirrors.get(domain) else {
            return Vec::new();
        };
        let dead = self
            .inner
            .unreachable_mirrors
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        mirrors
            .iter()
            .filter(|m| !dead.contains(*m))
            .cloned()
            .collect()
    }

    /// The endpoint of `mirror`; one that cannot be reached is remembered.
    pub(crate) async fn mirror_endpoint(&self, mirror: &str) -> Result<Arc<Registry>> {
        let result = self.registry(mirror).await;
        if result.is_err() {
            self.inner
                .unreachable_mirrors
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .insert(mirror.to_string());
        }
        result
    }
}

/// What the mirrors tried so far answered.
#[derive(Default)]
pub(crate) struct MirrorFailures(Vec<(String, String)>);

impl MirrorFailures {
    pub fn push(&mut self, mirror: &str, error: &RegistryError) {
        let mut message = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            let text = cause.to_string();
            if !message.contains(&text) {
                message = format!("{message}: {text}");
            }
            source = cause.source();
        }
        tracing::info!(mirror, error = %message, "mirror failed; trying the next host");
        self.0.push((mirror.to_string(), message));
    }

    /// The error of `registry` itself, `last`, with its mirrors' when
    /// there were any.
    pub fn wrap(self, registry: &str, last: RegistryError) -> RegistryError {
        if self.0.is_empty() {
            last
        } else {
            RegistryError::AfterMirrors {
                registry: registry.to_string(),
                failures: self.0,
                last: Box::new(last),
            }
        }
    }
}
