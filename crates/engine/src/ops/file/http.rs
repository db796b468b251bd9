//! `ADD <url>`: a GET streamed to a temporary file while it is hashed, as
//! BuildKit's HTTP source does. The file is named from the URL path's last
//! element (`__unnamed__` when there is none: the Dockerfile front end
//! names it, so `Content-Disposition` is not used), its mtime is
//! `Last-Modified` (or the epoch), and a `--checksum` mismatch fails with
//! both digests named.
//!
//! The fetch runs on its own thread with a current-thread tokio runtime,
//! so it works whether or not the caller is inside a runtime.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use super::FileOpError;
use crate::digest::Hasher;

/// A downloaded file, deleted when dropped.
pub(crate) struct Download {
    file: tempfile::NamedTempFile,
    pub size: u64,
    pub name: String,
    pub mtime: i64,
}

impl Download {
    pub(crate) fn path(&self) -> &Path {
        self.file.path()
    }
}

/// The name BuildKit gives a URL's file: the last element of the decoded
/// path (`path.Base`), made safe (`pathutil.SafeFileName`).
pub(crate) fn file_name(url: &reqwest::Url) -> String {
    let decoded = percent_decode(url.path());
    let trimmed = decoded.trim_end_matches('/');
    let base = trimmed.rsplit('/').next().unwrap_or("");
    if base.is_empty() || base == "." {
        return "__unnamed__".to_string();
    }
    let base = base.trim();
    if base.is_empty() || base == "." || base == ".." || base.chars().any(char::is_control) {
        return "download".to_string();
    }
    base.to_string()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push(h * 16 + l);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Why the HTTP client for `ADD <url>` could not be made.
#[derive(Debug, thiserror::Error)]
enum ClientError {
    /// rustls refused the protocol versions.
    #[error(transparent)]
    Tls(#[from] rustls::Error),
    /// reqwest refused the configuration.
    #[error(transparent)]
    Client(#[from] reqwest::Error),
}

fn client() -> Result<reqwest::Client, ClientError> {
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (_added, _ignored) = roots.add_parsable_certificates(native.certs);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .user_agent(concat!("hoist/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(30))
        .build()?)
}

/// Downloads `url` into `scratch` (or the temp dir), verifying `checksum`.
pub(crate) fn fetch(
    op: &'static str,
    url: &str,
    checksum: Option<&str>,
    scratch: Option<&Path>,
    runtime: Option<&crate::runtime::Handle>,
) -> Result<Download, FileOpError> {
    let fail = |reason: String| FileOpError::Http {
        op,
        url: url.to_string(),
        reason,
    };
    let parsed = reqwest::Url::parse(url).map_err(|e| fail(format!("invalid URL: {e}")))?;
    let file = match scratch {
        Some(dir) => tempfile::NamedTempFile::new_in(dir),
        None => tempfile::NamedTempFile::new(),
    }
    .map_err(|e| fail(format!("creating a temporary file: {e}")))?;
    let name = file_name(&parsed);
    let mut file = file;
    let runtime = runtime
        .ok_or_else(|| fail("no tokio runtime to download on (CopyPlan::runtime)".into()))?;
    let got = crate::runtime::block_on(runtime, download(op, parsed, file.as_file_mut()))?;
    let (size, digest, last_modified) = got;
    if let Some(expected) = checksum
        && digest != expected
    {
        return Err(FileOpError::ChecksumMismatch {
            url: url.to_string(),
            expected: expected.to_string(),
            actual: digest,
        });
    }
    let mtime = last_modified
        .and_then(|v| httpdate::parse_http_date(&v).ok())
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
    Ok(Download {
        file,
        size,
        name,
        mtime,
    })
}

/// GETs `url` into `out`: (size, `sha256:…`, `Last-Modified`).
async fn download(
    op: &'static str,
    url: reqwest::Url,
    out: &mut std::fs::File,
) -> Result<(u64, String, Option<String>), FileOpError> {
    let shown = url.to_string();
    let fail = |reason: String| FileOpError::Http {
        op,
        url: shown.clone(),
        reason,
    };
    let client = client().map_err(|e| fail(format!("setting up TLS: {e}")))?;
    let mut resp = client
        .get(url.clone())
        .send()
        .await
        .map_err(|e| fail(error_chain(&e)))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(FileOpError::HttpStatus {
            op,
            url: shown.clone(),
            status: status.as_u16(),
        });
    }
    let last_modified = resp
        .headers()
        .get(reqwest::header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut hasher = Hasher::new();
    let mut size = 0u64;
    while let Some(chunk) = resp.chunk().await.map_err(|e| fail(error_chain(&e)))? {
        hasher.update(&chunk);
        out.write_all(&chunk)
            .map_err(|e| fail(format!("writing the download: {e}")))?;
        size += chunk.len() as u64;
    }
    out.flush()
        .map_err(|e| fail(format!("writing the download: {e}")))?;
    Ok((size, hasher.finish().to_string(), last_modified))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_file_url_file_names_mirror_buildkit() {
        let name = |u: &str| file_name(&reqwest::Url::parse(u).unwrap());
        assert_eq!(name("http://h/foo"), "foo");
        assert_eq!(name("http://h/"), "__unnamed__");
        assert_eq!(name("http://h"), "__unnamed__");
        assert_eq!(name("http://h/dir/t.tar.gz?x=1#y"), "t.tar.gz");
        assert_eq!(name("http://h/a/b/"), "b");
        assert_eq!(name("http://h/test-%C3%A4.txt"), "test-ä.txt");
    }
}
