//! An OCI distribution (registry v2) client: pull and push manifests and
//! blobs, with Docker's authentication.
//!
//! - Manifests move as raw bytes with their media type and digest
//!   ([`ManifestBytes`]); the caller parses them. A manifest pulled by
//!   digest is checked against it; one pulled by tag is checked against
//!   `Docker-Content-Digest` when the registry sends it.
//! - Blobs stream into a [`BlobSink`] that is hashed as it goes; the sink
//!   is `finish`ed only when size and digest match, else `abort`ed, so no
//!   unverified bytes become final. A broken download resumes with a
//!   `Range` request (or skips what it already has when the registry
//!   ignores the range); so does one that stalls, no byte arriving for
//!   [`ClientOptions::idle_timeout`]. A blob whose bytes do not match its
//!   digest is fetched once more from the start (into a sink that can
//!   start over) before the pull fails.
//! - Requests are retried with exponential backoff on 408/429/5xx and on
//!   connection failures, bounded by [`RetryPolicy`] in count and time.
//! - Authentication (`transport`, `auth`): `/v2/` is pinged once per
//!   registry; a `Basic` challenge sends the stored credentials, a
//!   `Bearer` one fetches a token for `repository:NAME:pull[,push]` from
//!   the realm (cached per scope until it expires). Credentials come from
//!   Docker's config and helpers ([`credentials`]).
//! - TLS is rustls (ring) with the system roots plus an optional extra CA
//!   file; HTTP/2 by ALPN. Plain HTTP is tried only for `localhost`,
//!   `127.0.0.0/8`, `::1` and registries listed as insecure, and only
//!   after HTTPS failed; HTTPS to a registry listed as insecure does not
//!   verify its certificate (`insecure_tls`).
//! - Pulls of a registry with mirrors ([`ClientOptions::mirrors`]) try
//!   each mirror in order, then the registry itself (`mirror`).
//!
//! Files: `transport` (connection, retries, auth), `auth` (challenges and
//! tokens), `pull`, `push`, `list` (tags, catalog), `mirror`,
//! `credentials`, `error`.

mod auth;
pub mod credentials;
mod error;
mod insecure_tls;
mod list;
mod mirror;
mod pull;
mod push;
mod transport;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::digest::Digest;

pub use credentials::{CredentialError, CredentialStore, Credentials};
pub use error::RegistryError;
pub use pull::{BlobReader, BlobSink, FileSink};
pub use push::{BlobSource, PushOutcome};

pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

/// Media types a manifest request accepts.
pub mod media_types {
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    /// Everything [`super::Client::get_manifest`] asks for.
    pub const MANIFEST_ACCEPT: [&str; 4] = [
        OCI_MANIFEST,
        OCI_INDEX,
        DOCKER_MANIFEST,
        DOCKER_MANIFEST_LIST,
    ];
}

/// A manifest or index as the registry sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestBytes {
    pub media_type: String,
    pub digest: Digest,
    pub bytes: Vec<u8>,
}

/// The part of a descriptor a blob transfer needs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BlobRef {
    pub digest: Digest,
    pub size: u64,
}

impl BlobRef {
    pub fn new(digest: Digest, size: u64) -> BlobRef {
        BlobRef { digest, size }
    }

    /// The digest and size of `bytes`.
    pub fn of(bytes: &[u8]) -> BlobRef {
        BlobRef {
            digest: Digest::of(bytes),
            size: bytes.len() as u64,
        }
    }
}

/// How often and how long to retry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = never retry).
    pub max_attempts: u32,
    /// The first pause; each next one doubles, up to `max_delay`.
    pub initial_delay: Duration,
    pub max_delay: Duration,
    /// No retry starts once this much time has passed since the first try.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
            max_elapsed: Duration::from_secs(120),
        }
    }
}

/// [`ClientOptions::idle_timeout`] unless set otherwise.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// Client settings.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Registries (`host` or `host:port`) that may be spoken to over
    /// plain HTTP (besides `localhost`, `127.0.0.0/8` and `::1`) and over
    /// TLS without verifying the certificate.
    pub insecure_registries: Vec<String>,
    /// Pull mirrors by registry domain: `host[:port]` of each, tried in
    /// order before the registry itself.
    pub mirrors: BTreeMap<String, Vec<String>>,
    /// A PEM file of CA certificates trusted besides the system roots.
    pub extra_ca_file: Option<PathBuf>,
    /// Where credentials come from (default: `$DOCKER_CONFIG`).
    pub credentials: CredentialStore,
    pub retry: RetryPolicy,
    /// Always upload blobs in `PATCH` chunks instead of one `PUT`.
    pub force_chunked_upload: bool,
    /// Chunk size for chunked uploads.
    pub chunk_size: usize,
    pub connect_timeout: Duration,
    /// The longest a pull waits for the next byte (response headers of a
    /// request without a body, a manifest or a blob body) before it gives
    /// up on that connection: a stalled blob resumes with `Range` from
    /// what arrived, within [`RetryPolicy`]'s attempts.
    pub idle_timeout: Duration,
    pub user_agent: String,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            insecure_registries: Vec::new(),
            mirrors: BTreeMap::new(),
            extra_ca_file: None,
            credentials: CredentialStore::from_env(),
            retry: RetryPolicy::default(),
            force_chunked_upload: false,
            chunk_size: 8 << 20,
            connect_timeout: Duration::from_secs(30),
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            user_agent: concat!("hoist/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}

/// What a transfer reports as it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProgressEvent {
    /// `done` of `total` bytes of the blob have moved.
    Bytes {
        digest: Digest,
        done: u64,
        total: u64,
    },
    /// The registry already had the blob; nothing was uploaded.
    Exists { digest: Digest },
    /// The blob was mounted from another repository.
    Mounted { digest: Digest, from: String },
    /// The blob arrived (pull: verified) or was committed (push).
    Done { digest: Digest },
}

/// A progress callback; cheap to clone, `Progress::none()` ignores all.
#[derive(Clone, Default)]
pub struct Progress(Option<Arc<dyn Fn(ProgressEvent) + Send + Sync>>);

impl Progress {
    pub fn new(f: impl Fn(ProgressEvent) + Send + Sync + 'static) -> Progress {
        Progress(Some(Arc::new(f)))
    }

    pub fn none() -> Progress {
        Progress(None)
    }

    pub(crate) fn emit(&self, event: impl FnOnce() -> ProgressEvent) {
        if let Some(f) = &self.0 {
            f(event());
        }
    }
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Progress(fn)"
        } else {
            "Progress(none)"
        })
    }
}

/// How a registry is reached, as found by the first `/v2/` ping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `https://host/` or `http://host/`.
    pub url: String,
    /// Whether the connection speaks HTTP/2 (by ALPN).
    pub http2: bool,
    /// `"basic"`, `"bearer"`, or `None` for an open registry.
    pub auth: Option<&'static str>,
}

/// A registry client. Clones share connections, endpoints and tokens.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    /// For registries listed as insecure: certificates not verified.
    http_insecure: Option<reqwest::Client>,
    options: ClientOptions,
    registries: tokio::sync::Mutex<HashMap<String, Arc<transport::Registry>>>,
    /// Mirrors whose `/v2/` could not be reached; skipped from then on.
    unreachable_mirrors: std::sync::Mutex<HashSet<String>>,
}

impl Client {
    pub fn new(options: ClientOptions) -> Result<Client> {
        let http = transport::build_http(&options, true)?;
        let http_insecure = if options.insecure_registries.is_empty() {
            None
        } else {
            Some(transport::build_http(&options, false)?)
        };
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                http_insecure,
                options,
                registries: tokio::sync::Mutex::new(HashMap::new()),
                unreachable_mirrors: std::sync::Mutex::new(HashSet::new()),
            }),
        })
    }

    pub fn options(&self) -> &ClientOptions {
        &self.inner.options
    }

    /// Check `credentials` against the registry `domain` (a `/v2/`
    /// request that needs them), then store them as `docker login` does.
    pub async fn login(&self, domain: &str, credentials: Credentials) -> Result<()> {
        self.check_credentials(domain, credentials.clone()).await?;
        self.inner
            .options
            .credentials
            .login(domain, &credentials)
            .await?;
        self.inner.registries.lock().await.remove(domain);
        Ok(())
    }

    /// Forget stored credentials for `domain`; true if there were any.
    pub async fn logout(&self, domain: &str) -> Result<bool> {
        let removed = self.inner.options.credentials.logout(domain).await?;
        self.inner.registries.lock().await.remove(domain);
        Ok(removed)
    }
}
