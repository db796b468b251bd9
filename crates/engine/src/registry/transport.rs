//! The HTTP side: the rustls client, one [`Registry`] endpoint per domain
//! (scheme picked by pinging `/v2/`), retries with backoff, and answering
//! `401` challenges with credentials or bearer tokens.

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::{AUTHORIZATION, RETRY_AFTER};
use reqwest::{RequestBuilder, Response, StatusCode, Url};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use super::auth::{AuthState, Challenge, Scope, challenge_from};
use super::error::error_body_message;
use super::{Client, ClientOptions, Credentials, Endpoint, RegistryError, Result, RetryPolicy};

/// Makes one request (again for each retry, so bodies are re-created).
pub(crate) type BuildRequest<'a> =
    dyn FnMut(&reqwest::Client) -> Result<RequestBuilder> + Send + 'a;

/// One registry endpoint: where it is and how to authenticate to it.
pub(crate) struct Registry {
    /// The domain as references spell it (`docker.io`, `host:5000`).
    pub domain: String,
    /// `https://host/` or `http://host/`.
    pub base: Url,
    pub(crate) credentials: Option<Credentials>,
    /// The HTTP client for this registry (without certificate
    /// verification for one listed as insecure).
    pub(crate) http: reqwest::Client,
    auth: Mutex<AuthState>,
    /// The HTTP version the ping was answered with.
    version: reqwest::Version,
}

impl Registry {
    pub fn url(&self, path: &str) -> Result<Url> {
        self.base.join(path).map_err(|e| RegistryError::Invalid {
            what: format!("registry {}", self.domain),
            message: format!("bad url path {path:?}: {e}"),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, AuthState> {
        self.auth
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The HTTP client; `verify: false` accepts any server certificate
/// (`insecure_tls`), for registries listed as insecure.
pub(crate) fn build_http(options: &ClientOptions, verify: bool) -> Result<reqwest::Client> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for err in &native.errors {
        tracing::debug!("loading system CA certificates: {err}");
    }
    let (_added, _ignored) = roots.add_parsable_certificates(native.certs);
    if let Some(path) = &options.extra_ca_file {
        let bad = |message: String| RegistryError::CaFile {
            path: path.clone(),
            message,
        };
        let pem = fs_err::read(path).map_err(|e| bad(e.to_string()))?;
        let mut count = 0;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| bad(format!("bad PEM: {e}")))?;
            roots
                .add(cert)
                .map_err(|e| bad(format!("bad certificate: {e}")))?;
            count += 1;
        }
        if count == 0 {
            return Err(bad("no certificates in the file".into()));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| RegistryError::Tls(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    if !verify {
        tls.dangerous()
            .set_certificate_verifier(Arc::new(super::insecure_tls::AnyCertificate(provider)));
    }
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .user_agent(options.user_agent.clone())
        .connect_timeout(options.connect_timeout)
        .pool_idle_timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| RegistryError::Tls(e.to_string()))
}

/// `localhost`, `127.0.0.0/8`, `::1`, or listed as insecure.
pub(crate) fn plain_http_allowed(domain: &str, insecure: &[String]) -> bool {
    let host = if domain.starts_with('[') {
        domain.split_inclusive(']').next().unwrap_or(domain)
    } else {
        domain.split(':').next().unwrap_or(domain)
    };
    host == "localhost"
        || host == "[::1]"
        || host
            .parse::<Ipv4Addr>()
            .is_ok_and(|ip| ip.octets()[0] == 127)
        || listed_insecure(domain, insecure)
}

/// `domain` (or its host without the port) is in the insecure list.
pub(crate) fn listed_insecure(domain: &str, insecure: &[String]) -> bool {
    let host = if domain.starts_with('[') {
        domain.split_inclusive(']').next().unwrap_or(domain)
    } else {
        domain.split(':').next().unwrap_or(domain)
    };
    insecure.iter().any(|i| i == domain || i == host)
}

/// Exponential backoff bounded by attempts and elapsed time.
pub(crate) struct Backoff {
    policy: RetryPolicy,
    start: Instant,
    failures: u32,
}

impl Backoff {
    pub fn new(policy: &RetryPolicy) -> Backoff {
        Backoff {
            policy: policy.clone(),
            start: Instant::now(),
            failures: 0,
        }
    }

    /// Measure `max_elapsed` from now (the attempt count stays): a
    /// transfer that made progress since its last break.
    pub fn restart_clock(&mut self) {
        self.start = Instant::now();
    }

    /// Attempts made so far (failures counted).
    pub fn attempts(&self) -> u32 {
        self.failures
    }

    /// After a failure: how long to wait before the next try, or `None`
    /// when the budget is spent. `hint` is a `Retry-After`.
    pub fn next_delay(&mut self, hint: Option<Duration>) -> Option<Duration> {
        self.failures += 1;
        if self.failures >= self.policy.max_attempts {
            return None;
        }
        let shift = (self.failures - 1).min(20);
        let exp = self.policy.initial_delay.saturating_mul(1 << shift);
        let delay = hint.unwrap_or(exp).min(self.policy.max_delay);
        (self.start.elapsed() + delay <= self.policy.max_elapsed).then_some(delay)
    }
}

fn retryable_status(s: StatusCode) -> bool {
    matches!(s.as_u16(), 408 | 429 | 500 | 502 | 503 | 504)
}

/// Errors worth another try: connecting, timeouts, broken connections.
pub(crate) fn transient(e: &reqwest::Error) -> bool {
    !(e.is_builder() || e.is_redirect() || e.is_status() || e.is_decode())
}

fn retry_after(resp: &Response) -> Option<Duration> {
    let secs: u64 = resp
        .headers()
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs))
}

/// Send, retrying retryable statuses and transient errors when `retry`.
/// The last retryable answer is returned as is when the budget runs out.
/// A request without a body whose answer does not start within `idle`
/// counts as a transient failure (a stalled registry).
pub(crate) async fn send_retrying(
    http: &reqwest::Client,
    policy: &RetryPolicy,
    idle: Duration,
    registry: &str,
    what: &str,
    retry: bool,
    build: &mut BuildRequest<'_>,
) -> Result<Response> {
    let mut backoff = Backoff::new(policy);
    loop {
        let failure = match build(http)?.build() {
            Err(e) => Failure::Http(e),
            Ok(request) => {
                let url = request.url().to_string();
                let bodiless = request.body().is_none();
                let sent = http.execute(request);
                let result = if bodiless {
                    match tokio::time::timeout(idle, sent).await {
                        Ok(result) => result.map_err(Failure::Http),
                        Err(_) => Err(Failure::Stalled(url)),
                    }
                } else {
                    sent.await.map_err(Failure::Http)
                };
                match result {
                    Ok(resp) if retry && retryable_status(resp.status()) => {
                        let Some(delay) = backoff.next_delay(retry_after(&resp)) else {
                            return Ok(resp);
                        };
                        tracing::warn!(
                            registry,
                            what,
                            status = resp.status().as_u16(),
                            ?delay,
                            "retrying"
                        );
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                    Ok(resp) => return Ok(resp),
                    Err(failure) => failure,
                }
            }
        };
        let delay = if retry && failure.transient() {
            backoff.next_delay(None)
        } else {
            None
        };
        let Some(delay) = delay else {
            return Err(failure.into_error(registry, what, idle));
        };
        tracing::warn!(registry, what, error = %failure, ?delay, "retrying");
        tokio::time::sleep(delay).await;
    }
}

/// Why one request got no answer.
enum Failure {
    Http(reqwest::Error),
    /// No answer within the idle timeout (the URL asked).
    Stalled(String),
}

impl Failure {
    fn transient(&self) -> bool {
        match self {
            Failure::Http(e) => transient(e),
            Failure::Stalled(_) => true,
        }
    }

    fn into_error(self, registry: &str, what: &str, idle: Duration) -> RegistryError {
        match self {
            Failure::Http(e) => http_error(registry, what, e),
            Failure::Stalled(url) => RegistryError::Stalled {
                registry: registry.to_string(),
                what: what.to_string(),
                url,
                idle,
            },
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Http(e) => e.fmt(f),
            Failure::Stalled(url) => write!(f, "no answer from {url} within the idle timeout"),
        }
    }
}

/// A request that failed: [`RegistryError::Closed`] when the registry
/// accepted the connection and closed it without an answer (so a plain
/// HTTP registry dropping connections is not mistaken for anything
/// else), else [`RegistryError::Http`].
pub(crate) fn http_error(registry: &str, what: &str, e: reqwest::Error) -> RegistryError {
    let url = e.url().map(Url::to_string).unwrap_or_default();
    if closed_by_peer(&e) {
        return RegistryError::Closed {
            registry: registry.to_string(),
            what: what.to_string(),
            plain_http: url.starts_with("http:"),
            url,
            https: None,
            source: e,
        };
    }
    RegistryError::Http {
        registry: registry.to_string(),
        what: what.to_string(),
        url,
        error: e,
    }
}

/// Why a request got no answer, in a user's words: the DNS lookup, a
/// refused connection, TLS, a timeout; else the innermost cause.
pub(crate) fn cause_text(e: &reqwest::Error) -> String {
    let all = causes(e);
    let innermost = all
        .last()
        .map(ToString::to_string)
        .unwrap_or_else(|| e.to_string());
    let host = e
        .url()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    if let Some(tls) = all.iter().find_map(|c| c.downcast_ref::<rustls::Error>()) {
        return format!("TLS: {tls}");
    }
    if all.iter().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
    }) {
        return "connection refused".to_string();
    }
    if all.iter().any(|c| {
        let t = c.to_string();
        t.contains("dns error") || t.contains("failed to lookup address")
    }) {
        return format!("DNS lookup of {host} failed: {innermost}");
    }
    if e.is_timeout() {
        return format!("timed out: {innermost}");
    }
    innermost
}

/// `e` and its causes, looking inside `io::Error`s too (their `source`
/// skips the error they wrap).
fn causes<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> Vec<&'a (dyn std::error::Error + 'static)> {
    let mut out = Vec::new();
    let mut next = Some(e);
    while let Some(cur) = next
        && out.len() < 32
    {
        out.push(cur);
        next = match cur
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => cur.source(),
        };
    }
    out
}

/// The connection was made, then closed or reset by the other side before
/// a whole answer came.
pub(crate) fn closed_by_peer(e: &reqwest::Error) -> bool {
    use std::io::ErrorKind;
    causes(e).into_iter().any(|c| {
        c.downcast_ref::<hyper::Error>()
            .is_some_and(hyper::Error::is_incomplete_message)
            || c.downcast_ref::<std::io::Error>().is_some_and(|io| {
                matches!(
                    io.kind(),
                    ErrorKind::ConnectionReset
                        | ErrorKind::ConnectionAborted
                        | ErrorKind::UnexpectedEof
                        | ErrorKind::BrokenPipe
                )
            })
    })
}

/// The server answered in TLS (a certificate or protocol complaint from
/// rustls other than "this is not TLS at all").
fn server_spoke_tls(e: &RegistryError) -> bool {
    let source = match e {
        RegistryError::Http { error: source, .. } | RegistryError::Closed { source, .. } => source,
        _ => return false,
    };
    causes(source).into_iter().any(|c| {
        c.downcast_ref::<rustls::Error>()
            .is_some_and(|t| !matches!(t, rustls::Error::InvalidMessage(_)))
    })
}

/// Read at most 64 KiB of an error body and make it one line.
pub(crate) async fn body_message(resp: Response) -> String {
    let mut resp = resp;
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() > 64 << 10 {
            break;
        }
    }
    error_body_message(&body)
}

/// The error for an unexpected answer, by status.
pub(crate) async fn status_error(registry: &Registry, what: &str, resp: Response) -> RegistryError {
    let status = resp.status().as_u16();
    let message = body_message(resp).await;
    let (registry, what) = (registry.domain.clone(), what.to_string());
    match status {
        404 => RegistryError::NotFound {
            registry,
            what,
            status,
            message,
        },
        403 => RegistryError::Denied {
            registry,
            what,
            status,
            message,
        },
        _ => RegistryError::Status {
            registry,
            what,
            status,
            message,
        },
    }
}

impl Client {
    /// The endpoint for `domain`, pinged on first use.
    pub(crate) async fn registry(&self, domain: &str) -> Result<Arc<Registry>> {
        let mut map = self.inner.registries.lock().await;
        if let Some(r) = map.get(domain) {
            return Ok(r.clone());
        }
        let credentials = self.inner.options.credentials.get(domain).await?;
        let registry = Arc::new(self.connect(domain, credentials).await?);
        map.insert(domain.to_string(), registry.clone());
        Ok(registry)
    }

    async fn connect(&self, domain: &str, credentials: Option<Credentials>) -> Result<Registry> {
        let api_host = if domain == crate::reference::DEFAULT_DOMAIN {
            "registry-1.docker.io"
        } else {
            domain
        };
        let what = "ping /v2/";
        let opts = &self.inner.options;
        let http = match &self.inner.http_insecure {
            Some(insecure) if listed_insecure(domain, &opts.insecure_registries) => insecure,
            _ => &self.inner.http,
        };
        let https =
            Url::parse(&format!("https://{api_host}/")).map_err(|e| RegistryError::Invalid {
                what: format!("registry {domain}"),
                message: e.to_string(),
            })?;
        let ping = |base: &Url, retry: bool| {
            let url = base.join("v2/");
            async move {
                let url = url.map_err(|e| RegistryError::Invalid {
                    what: format!("registry {domain}"),
                    message: e.to_string(),
                })?;
                let mut build = |http: &reqwest::Client| Ok(http.get(url.clone()));
                send_retrying(
                    http,
                    &opts.retry,
                    opts.idle_timeout,
                    domain,
                    what,
                    retry,
                    &mut build,
                )
                .await
            }
        };
        let (base, resp) = if plain_http_allowed(domain, &opts.insecure_registries) {
            match ping(&https, false).await {
                Ok(resp) => (https, resp),
                Err(https_error) => {
                    tracing::debug!(domain, error = %https_error, "https failed; trying plain http");
                    let mut http_base = https.clone();
                    http_base
                        .set_scheme("http")
                        .map_err(|()| RegistryError::Invalid {
                            what: format!("registry {domain}"),
                            message: "cannot use http".into(),
                        })?;
                    // A registry answers 200 or 401; anything else (a TLS
                    // port saying "HTTP to HTTPS server") means the https
                    // error is the one that matters.
                    match ping(&http_base, true).await {
                        Ok(resp)
                            if resp.status().is_success()
                                || resp.status() == StatusCode::UNAUTHORIZED =>
                        {
                            (http_base, resp)
                        }
                        // The port takes connections and closes them, in
                        // plain HTTP as over TLS: that is what to report,
                        // not the TLS handshake that could not happen.
                        Err(RegistryError::Closed {
                            registry,
                            what,
                            url,
                            plain_http,
                            source,
                            ..
                        }) if !server_spoke_tls(&https_error) => {
                            return Err(RegistryError::Closed {
                                registry,
                                what,
                                url,
                                plain_http,
                                https: Some(https_summary(&https_error)),
                                source,
                            });
                        }
                        _ => return Err(https_error),
                    }
                }
            }
        } else {
            let resp = ping(&https, true).await?;
            (https, resp)
        };
        let registry = Registry {
            domain: domain.to_string(),
            base,
            credentials,
            http: http.clone(),
            auth: Mutex::new(AuthState::default()),
            version: resp.version(),
        };
        match resp.status().as_u16() {
            200..=299 => {}
            401 => {
                let challenge = challenge_from(resp.headers());
                if challenge.is_none() {
                    return Err(RegistryError::Protocol {
                        registry: domain.to_string(),
                        what: what.to_string(),
                        message: "401 without a Basic or Bearer WWW-Authenticate challenge".into(),
                    });
                }
                registry.state().challenge = challenge;
            }
            _ => return Err(status_error(&registry, what, resp).await),
        }
        Ok(registry)
    }

    /// Send with retries (when `retry`) and authentication: a `401` is
    /// answered once with fresh credentials or a fresh token.
    pub(crate) async fn send(
        &self,
        registry: &Registry,
        scope: &Scope,
        what: &str,
        retry: bool,
        build: &mut BuildRequest<'_>,
    ) -> Result<Response> {
        let mut answered = false;
        loop {
            let auth = self.authorization(registry, scope).await?;
            let mut with_auth = |http: &reqwest::Client| {
                let request = build(http)?;
                Ok(match &auth {
                    Some(value) => request.header(AUTHORIZATION, value),
                    None => request,
                })
            };
            let resp = send_retrying(
                &registry.http,
                &self.inner.options.retry,
                self.inner.options.idle_timeout,
                &registry.domain,
                what,
                retry,
                &mut with_auth,
            )
            .await?;
            if resp.status() != StatusCode::UNAUTHORIZED {
                return Ok(resp);
            }
            let challenge = challenge_from(resp.headers());
            if !answered && let Some(challenge) = challenge {
                let worth_it = match &challenge {
                    Challenge::Bearer { .. } => true,
                    Challenge::Basic => auth.is_none() && registry.credentials.is_some(),
                };
                let mut state = registry.state();
                state.tokens.remove(&scope.key());
                state.challenge = Some(challenge);
                drop(state);
                if worth_it {
                    answered = true;
                    continue;
                }
            }
            return Err(RegistryError::Unauthorized {
                registry: registry.domain.clone(),
                what: what.to_string(),
                status: 401,
                with_credentials: registry.credentials.is_some(),
                message: body_message(resp).await,
            });
        }
    }

    /// The `Authorization` value for `scope`, fetching a token if needed.
    async fn authorization(&self, registry: &Registry, scope: &Scope) -> Result<Option<String>> {
        let challenge = {
            let state = registry.state();
            if let Some(token) = state.tokens.get(&scope.key())
                && token.is_fresh()
            {
                return Ok(Some(format!("Bearer {}", token.value)));
            }
            state.challenge.clone()
        };
        match challenge {
            None => Ok(None),
            Some(Challenge::Basic) => Ok(match &registry.credentials {
                Some(Credentials::Basic { username, password }) => {
                    Some(basic_header(username, password))
                }
                Some(Credentials::IdentityToken { .. }) | None => None,
            }),
            Some(Challenge::Bearer { realm, service }) => {
                let token = self
                    .fetch_token(registry, &realm, service.as_deref(), scope)
                    .await?;
                let value = format!("Bearer {}", token.value);
                registry.state().tokens.insert(scope.key(), token);
                Ok(Some(value))
            }
        }
    }

    /// How `domain` is reached: URL, HTTP/2 or not, and the auth scheme.
    pub async fn endpoint(&self, domain: &str) -> Result<Endpoint> {
        let registry = self.registry(domain).await?;
        let auth = match registry.state().challenge {
            None => None,
            Some(Challenge::Basic) => Some("basic"),
            Some(Challenge::Bearer { .. }) => Some("bearer"),
        };
        Ok(Endpoint {
            url: registry.base.to_string(),
            http2: registry.version == reqwest::Version::HTTP_2,
            auth,
        })
    }

    /// `GET /v2/` with `credentials` must succeed (used by `login`).
    pub(crate) async fn check_credentials(
        &self,
        domain: &str,
        credentials: Credentials,
    ) -> Result<()> {
        let probe = self.connect(domain, Some(credentials)).await?;
        let url = probe.url("v2/")?;
        let what = "login check /v2/";
        let mut build = |http: &reqwest::Client| Ok(http.get(url.clone()));
        let resp = self
            .send(&probe, &Scope::none(), what, true, &mut build)
            .await?;
        if !resp.status().is_success() {
            return Err(status_error(&probe, what, resp).await);
        }
        // A registry that allows anonymous /v2/ never checked them.
        if probe.state().challenge.is_none() {
            tracing::debug!(
                domain,
                "registry accepts anonymous /v2/; credentials not verified"
            );
        }
        Ok(())
    }
}

/// The innermost cause of an https failure, for the note on a plain
/// HTTP one.
fn https_summary(e: &RegistryError) -> String {
    if let RegistryError::Http { url, error, .. } = e {
        return format!("{url}: {}", cause_text(error));
    }
    let last = causes(e).into_iter().last().map(ToString::to_string);
    match (e, last) {
        (RegistryError::Http { url, .. } | RegistryError::Closed { url, .. }, Some(cause)) => {
            format!("{url}: {cause}")
        }
        (_, Some(cause)) => cause,
        (_, None) => e.to_string(),
    }
}

pub(crate) fn basic_header(username: &str, password: &str) -> String {
    use base64::Engine as _;
    let encoded =
        base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
    format!("Basic {encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_for_loopback_and_listed() {
        let none: Vec<String> = Vec::new();
        for d in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
            "[::1]",
        ] {
            assert!(plain_http_allowed(d, &none), "{d}");
        }
        for d in [
            "docker.io",
            "128.0.0.1:5000",
            "[::2]:5000",
            "localhost.example.com",
            "10.0.0.1",
        ] {
            assert!(!plain_http_allowed(d, &none), "{d}");
        }
        let listed = vec!["reg.lan:5000".to_string(), "other.lan".to_string()];
        assert!(plain_http_allowed("reg.lan:5000", &listed));
        assert!(!plain_http_allowed("reg.lan:5001", &listed));
        assert!(plain_http_allowed("other.lan:443", &listed));
    }

    #[test]
    fn backoff_doubles_and_stops() {
        let policy = RetryPolicy {
            max_attempts: 4,
            initial_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(25),
            max_elapsed: Duration::from_secs(60),
        };
        let mut b = Backoff::new(&policy);
        assert_eq!(b.next_delay(None), Some(Duration::from_millis(10)));
        assert_eq!(b.next_delay(None), Some(Duration::from_millis(20)));
        assert_eq!(
            b.next_delay(Some(Duration::from_secs(9))),
            Some(Duration::from_millis(25))
        );
        assert_eq!(b.next_delay(None), None);
        let mut short = Backoff::new(&RetryPolicy {
            max_elapsed: Duration::from_millis(5),
            ..policy
        });
        assert_eq!(short.next_delay(None), None, "over the time budget");
    }
}
