//! `hoist build --load`: the image into a local Docker or Podman engine
//! through its API socket (the Docker Engine API, which podman serves
//! too): `GET /version` says which engine answers, `POST /images/load`
//! takes the `docker save` archive hoist writes for `-o type=docker`,
//! streamed as it is written (never a whole copy in memory or on disk).
//!
//! [`discover`] lists the sockets in the order tried; [`find`] asks each;
//! [`body_channel`] is the writer the archive goes into; [`load`] sends it.

pub mod discover;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, StreamBody};
use hyper::body::Frame;

pub use discover::{Candidate, candidates};

/// How long an engine has to answer `GET /version`.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes per body chunk sent to the engine.
const CHUNK: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// No candidate answered: each one and why.
    #[error("no Docker or Podman engine answered; tried:{}\nstart one (or point DOCKER_HOST=unix://PATH at one), or write an archive with -o type=docker,dest=FILE and load it with docker load / podman load", tried_text(.tried))]
    NoEngine { tried: Vec<(Candidate, String)> },
    #[error("{engine} at {address}: {reason}")]
    Load {
        engine: String,
        address: String,
        reason: String,
    },
}

fn tried_text(tried: &[(Candidate, String)]) -> String {
    tried
        .iter()
        .map(|(c, why)| format!("\n  {} ({}): {why}", c.address, c.origin))
        .collect()
}

/// An engine that answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Engine {
    /// `docker` or `podman`.
    pub kind: String,
    /// Its version (`28.2.2`, `4.3.1`), if it said.
    pub version: Option<String>,
    pub socket: PathBuf,
    pub address: String,
    /// What named the socket (see [`Candidate::origin`]).
    pub origin: String,
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.kind)?;
        if let Some(v) = &self.version {
            write!(f, " {v}")?;
        }
        write!(f, " at {}", self.address)
    }
}

/// The first candidate that answers `GET /version`, or every one and why
/// it did not.
pub async fn find(candidates: &[Candidate]) -> Result<Engine, DaemonError> {
    let mut tried = Vec::new();
    for c in candidates {
        let Some(socket) = &c.socket else {
            tried.push((
                c.clone(),
                "not a unix socket (hoist --load speaks to local engines only)".to_string(),
            ));
            continue;
        };
        match tokio::time::timeout(PROBE_TIMEOUT, version(socket)).await {
            Ok(Ok(v)) => {
                return Ok(Engine {
                    kind: engine_kind(&v).to_string(),
                    version: v
                        .get("Version")
                        .and_then(|v| v.as_str())
                        .map(str::to_string),
                    socket: socket.clone(),
                    address: c.address.clone(),
                    origin: c.origin.clone(),
                });
            }
            Ok(Err(why)) => tried.push((c.clone(), why.to_string())),
            Err(_) => tried.push((
                c.clone(),
                format!("no answer in {}s", PROBE_TIMEOUT.as_secs()),
            )),
        }
    }
    Err(DaemonError::NoEngine { tried })
}

/// podman's compat API names a `Podman Engine` component; docker's is `Engine`.
fn engine_kind(version: &serde_json::Value) -> &'static str {
    let podman = version
        .get("Components")
        .and_then(|c| c.as_array())
        .is_some_and(|cs| {
            cs.iter().any(|c| {
                c.get("Name")
                    .and_then(|n| n.as_str())
                    .is_some_and(|n| n.to_ascii_lowercase().contains("podman"))
            })
        });
    if podman { "podman" } else { "docker" }
}

/// Why one request to an engine's API failed.
#[derive(Debug, thiserror::Error)]
enum RequestError {
    /// The socket could not be connected to.
    #[error(transparent)]
    Connect(std::io::Error),
    /// The HTTP/1.1 handshake failed.
    #[error(transparent)]
    Handshake(hyper::Error),
    /// The request could not be built.
    #[error(transparent)]
    Build(#[from] hyper::http::Error),
    /// The request could not be sent or had no answer.
    #[error("{method} {path}: {}", error_chain(.source))]
    Send {
        method: String,
        path: String,
        source: hyper::Error,
    },
    /// The answer's body could not be read.
    #[error("{method} {path}: reading the answer: {source}")]
    Read {
        method: String,
        path: String,
        source: hyper::Error,
    },
    /// `GET /version` answered with an error status.
    #[error("GET /version: {status}: {message}")]
    VersionStatus {
        status: hyper::StatusCode,
        message: String,
    },
    /// `GET /version` answered with something other than JSON.
    #[error("GET /version: not JSON: {0}")]
    VersionJson(#[source] serde_json::Error),
}

async fn version(socket: &Path) -> Result<serde_json::Value, RequestError> {
    let (status, body) = request(socket, "GET", "/version", Empty::<Bytes>::new()).await?;
    if !status.is_success() {
        return Err(RequestError::VersionStatus {
            status,
            message: api_message(&body),
        });
    }
    serde_json::from_slice(&body).map_err(RequestError::VersionJson)
}

/// One HTTP/1.1 request over the socket; the status and whole body.
async fn request<B>(
    socket: &Path,
    method: &str,
    path: &str,
    body: B,
) -> Result<(hyper::StatusCode, Bytes), RequestError>
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let stream = tokio::net::UnixStream::connect(socket)
        .await
        .map_err(RequestError::Connect)?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(RequestError::Handshake)?;
    let conn = tokio::spawn(conn);
    let req = hyper::Request::builder()
        .method(method)
        .uri(path)
        // The Docker CLI sends `docker` as the host of a unix socket.
        .header(hyper::header::HOST, "docker")
        .header(hyper::header::CONTENT_TYPE, "application/x-tar")
        .body(body)?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|source| RequestError::Send {
            method: method.to_owned(),
            path: path.to_owned(),
            source,
        })?;
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|source| RequestError::Read {
            method: method.to_owned(),
            path: path.to_owned(),
            source,
        })?
        .to_bytes();
    conn.abort();
    Ok((status, body))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

/// The Engine API's error body (`{"message": "..."}`), else the text.
fn api_message(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("message")?.as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string())
}

type Chunk = Result<Bytes, std::io::Error>;

/// Where the archive is written (on a thread of its own); it reaches the
/// engine as it is written. [`BodyWriter::fail`] aborts the upload.
pub struct BodyWriter {
    tx: tokio::sync::mpsc::Sender<Chunk>,
    buf: Vec<u8>,
}

/// The other end, for [`load`].
pub struct BodyReceiver(tokio::sync::mpsc::Receiver<Chunk>);

pub fn body_channel() -> (BodyWriter, BodyReceiver) {
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    (
        BodyWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        },
        BodyReceiver(rx),
    )
}

impl BodyWriter {
    fn send(&mut self, chunk: Chunk) -> std::io::Result<()> {
        self.tx.blocking_send(chunk).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the engine stopped reading the image",
            )
        })
    }

    /// Send what is buffered; the body ends when the writer is dropped.
    pub fn finish(mut self) -> std::io::Result<()> {
        self.flush()
    }

    /// End the body with an error: the engine gets a broken upload, never
    /// a short archive that looks whole.
    pub fn fail(mut self, why: String) {
        let _ = self.send(Err(std::io::Error::other(why)));
    }
}

impl Write for BodyWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
            self.send(Ok(chunk))?;
        }
        Ok(())
    }
}

/// What the engine said it loaded (`Loaded image: app:1`, `Loaded image
/// ID: sha256:…`), one line each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub lines: Vec<String>,
}

/// `POST /images/load` with the archive from `body`.
pub async fn load(engine: &Engine, body: BodyReceiver) -> Result<Loaded, DaemonError> {
    let fail = |reason: String| DaemonError::Load {
        engine: engine.kind.clone(),
        address: engine.address.clone(),
        reason,
    };
    let stream = futures_util::stream::unfold(body.0, |mut rx| async move {
        let chunk = rx.recv().await?;
        Some((chunk.map(Frame::data), rx))
    });
    let (status, answer) = request(
        &engine.socket,
        "POST",
        "/images/load?quiet=1",
        StreamBody::new(stream),
    )
    .await
    .map_err(|e| fail(e.to_string()))?;
    if !status.is_success() {
        return Err(fail(format!(
            "POST /images/load: {status}: {}",
            api_message(&answer)
        )));
    }
    // A stream of JSON messages; an `error` in any is the load's failure.
    let mut lines = Vec::new();
    let messages = serde_json::Deserializer::from_slice(&answer).into_iter::<serde_json::Value>();
    for m in messages {
        let m = m.map_err(|e| fail(format!("POST /images/load: an answer not JSON: {e}")))?;
        if let Some(e) = m.get("error").and_then(|e| e.as_str()) {
            return Err(fail(format!("POST /images/load: {e}")));
        }
        if let Some(s) = m.get("stream").and_then(|s| s.as_str()) {
            lines.extend(
                s.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_string),
            );
        }
    }
    Ok(Loaded { lines })
}
