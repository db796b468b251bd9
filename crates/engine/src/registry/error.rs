//! The registry client's error type. Every message names the registry,
//! the object (reference, repository, digest) and, for HTTP answers, the
//! status and the registry's own error text.

use std::io;
use std::path::PathBuf;

use crate::digest::Digest;

use super::credentials::CredentialError;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// No answer: `cause` names why (DNS, connection refused, TLS, a
    /// timeout), not reqwest's `error sending request for url`. The
    /// reqwest error is kept but is not a `source`: its text would repeat.
    #[error(
        "registry {registry}: {what}: request to {url} failed: {}",
        super::transport::cause_text(error)
    )]
    Http {
        registry: String,
        what: String,
        url: String,
        error: reqwest::Error,
    },
    /// The registry took the connection, then closed or reset it before
    /// a whole answer (`plain_http`: over plain HTTP). `https` is what
    /// HTTPS to the same port said, when plain HTTP was its fallback.
    #[error(
        "registry {registry}: {what}: the registry closed the connection to {url} without answering{}{}",
        if *plain_http { " (plain HTTP)" } else { "" },
        https.as_ref().map(|h| format!("; HTTPS failed first: {h}")).unwrap_or_default()
    )]
    Closed {
        registry: String,
        what: String,
        url: String,
        plain_http: bool,
        https: Option<String>,
        #[source]
        source: reqwest::Error,
    },
    /// No answer to a request for `idle`, on every attempt.
    #[error(
        "registry {registry}: {what}: no answer from {url} for {}s (the idle timeout), on every attempt",
        idle.as_secs_f64()
    )]
    Stalled {
        registry: String,
        what: String,
        url: String,
        idle: std::time::Duration,
    },
    #[error("registry {registry}: {what}: http {status}{}", detail(message))]
    Status {
        registry: String,
        what: String,
        status: u16,
        message: String,
    },
    #[error(
        "registry {registry}: {what}: not found (http {status}){}",
        detail(message)
    )]
    NotFound {
        registry: String,
        what: String,
        status: u16,
        message: String,
    },
    #[error(
        "registry {registry}: {what}: unauthorized (http {status}): {}{} (log in with `hoist login {registry}`)",
        if *with_credentials { "the credentials were rejected" } else { "no credentials for this registry" },
        detail(message)
    )]
    Unauthorized {
        registry: String,
        what: String,
        status: u16,
        with_credentials: bool,
        message: String,
    },
    #[error(
        "registry {registry}: {what}: access denied (http {status}){}",
        detail(message)
    )]
    Denied {
        registry: String,
        what: String,
        status: u16,
        message: String,
    },
    #[error("registry {registry}: token request to {realm} failed: {message}")]
    Token {
        registry: String,
        realm: String,
        message: String,
    },
    #[error("{what}: digest mismatch: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: Digest,
        actual: Digest,
    },
    #[error("{what}: size mismatch: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },
    #[error(
        "{what}: transfer failed after {done} of {total} bytes and {attempts} attempts: {message}"
    )]
    Interrupted {
        what: String,
        done: u64,
        total: u64,
        attempts: u32,
        message: String,
    },
    #[error("registry {registry}: {what}: manifest is larger than {limit} bytes")]
    ManifestTooLarge {
        registry: String,
        what: String,
        limit: usize,
    },
    #[error("registry {registry}: {what}: unexpected response: {message}")]
    Protocol {
        registry: String,
        what: String,
        message: String,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: io::Error,
    },
    #[error("extra CA file {}: {message}", path.display())]
    CaFile { path: PathBuf, message: String },
    #[error("tls setup: {0}")]
    Tls(String),
    #[error("{what}: {message}")]
    Invalid { what: String, message: String },
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    /// Every mirror of `registry` failed, then the registry itself
    /// (`last`, the source).
    #[error(
        "pull from {registry}: every mirror failed ({}), then the registry itself",
        failures.iter().map(|(m, e)| format!("{m}: {e}")).collect::<Vec<_>>().join("; ")
    )]
    AfterMirrors {
        registry: String,
        /// `(mirror, message)` in the order they were tried.
        failures: Vec<(String, String)>,
        #[source]
        last: Box<RegistryError>,
    },
}

fn detail(message: &str) -> String {
    if message.is_empty() {
        String::new()
    } else {
        format!(": {message}")
    }
}

impl RegistryError {
    /// The HTTP status the registry answered with, if this error is one.
    pub fn status(&self) -> Option<u16> {
        match self {
            RegistryError::Status { status, .. }
            | RegistryError::NotFound { status, .. }
            | RegistryError::Unauthorized { status, .. }
            | RegistryError::Denied { status, .. } => Some(*status),
            RegistryError::AfterMirrors { last, .. } => last.status(),
            _ => None,
        }
    }

    /// Errors that name content that did not match its digest or size.
    pub fn is_verification(&self) -> bool {
        match self {
            RegistryError::DigestMismatch { .. } | RegistryError::SizeMismatch { .. } => true,
            RegistryError::AfterMirrors { last, .. } => last.is_verification(),
            _ => false,
        }
    }
}

/// The registry's `{"errors":[{"code","message","detail"}]}` body, made
/// into one line (`CODE: message; CODE: message`), or the first bytes of
/// a non-JSON body.
pub(crate) fn error_body_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(default)]
        errors: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    if let Ok(b) = serde_json::from_slice::<Body>(body)
        && !b.errors.is_empty()
    {
        return b
            .errors
            .iter()
            .map(|e| format!("{}: {}", e.code, e.message))
            .collect::<Vec<_>>()
            .join("; ");
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_error_bodies_become_one_line() {
        let body = br#"{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry","detail":"x"}]}"#;
        assert_eq!(
            error_body_message(body),
            "BLOB_UNKNOWN: blob unknown to registry"
        );
        assert_eq!(
            error_body_message(b"<html>\n  oops </html>"),
            "<html> oops </html>"
        );
        let e = RegistryError::Unauthorized {
            registry: "r:5000".into(),
            what: "manifest r:5000/a:1".into(),
            status: 401,
            with_credentials: true,
            message: "UNAUTHORIZED: authentication required".into(),
        };
        assert_eq!(
            e.to_string(),
            "registry r:5000: manifest r:5000/a:1: unauthorized (http 401): the credentials were rejected: UNAUTHORIZED: authentication required (log in with `hoist login r:5000`)"
        );
        assert_eq!(e.status(), Some(401));
    }
}
