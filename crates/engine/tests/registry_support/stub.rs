//! A fault-injecting registry stand-in: serves fixed manifests and blobs
//! for any repository, and can answer 500 a few times, cut a blob
//! response short (reset), stall (no answer, or no more bytes), ignore
//! `Range`, flip a byte of a blob, or lie about a digest.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;

use super::http::{read_request, respond, respond_cut, respond_stall};

#[derive(Clone, Default)]
pub struct Faults {
    /// The first N manifest/blob requests answer `fail_status` (500 if 0).
    pub fail_first: usize,
    pub fail_status: u16,
    /// The first N blob GETs announce the full length, send `cut_at`
    /// bytes of what they should, then reset the connection.
    pub cut_first: usize,
    pub cut_at: usize,
    /// Answer 200 with the whole blob even to a `Range` request.
    pub ignore_range: bool,
    /// Refuse a `PUT` that carries the blob (400 BLOB_UPLOAD_INVALID):
    /// only `PATCH` chunks work.
    pub refuse_monolithic: bool,
    /// The first N upload `PUT`s answer 500.
    pub put_fail_first: usize,
    /// The first N blob GETs announce the full length, send `stall_at`
    /// bytes of what they should, then nothing for `stall_for`.
    pub stall_first: usize,
    pub stall_at: usize,
    pub stall_for: std::time::Duration,
    /// The first N blob GETs get no answer at all for `stall_for`.
    pub hold_first: usize,
    /// The first N blob GETs are answered by closing the connection.
    pub close_first: usize,
    /// The first N blob GETs send the blob with one byte flipped.
    pub corrupt_first: usize,
}

#[derive(Clone, Default)]
pub struct Content {
    /// reference (tag or digest) → (media type, bytes, Docker-Content-Digest sent)
    pub manifests: HashMap<String, (String, Vec<u8>, Option<String>)>,
    /// digest → bytes served (may not match the digest)
    pub blobs: HashMap<String, Vec<u8>>,
}

#[derive(Default)]
struct State {
    failed: usize,
    cut: usize,
    stalled: usize,
    held: usize,
    closed: usize,
    corrupted: usize,
    /// "METHOD path range" for every request served.
    log: Vec<String>,
    put_failed: usize,
    next_session: usize,
    sessions: HashMap<String, Vec<u8>>,
    /// digest → bytes committed by uploads.
    uploaded: HashMap<String, Vec<u8>>,
}

/// Blob uploads: `POST` opens a session, `PATCH` appends, `PUT
/// ?digest=` appends its body and commits, `DELETE` cancels.
fn upload(
    state: &Mutex<State>,
    faults: &Faults,
    req: &super::http::Request,
) -> (u16, Vec<(&'static str, String)>, Vec<u8>) {
    let mut s = state.lock().unwrap();
    let (prefix, id) = req
        .path
        .split_once("/blobs/uploads/")
        .unwrap_or((&req.path, ""));
    let err =
        |code: &str| format!(r#"{{"errors":[{{"code":"{code}","message":"stub"}}]}}"#).into_bytes();
    match (req.method.as_str(), id) {
        ("POST", "") => {
            s.next_session += 1;
            let id = format!("s{}", s.next_session);
            s.sessions.insert(id.clone(), Vec::new());
            (
                202,
                vec![("Location", format!("{prefix}/blobs/uploads/{id}"))],
                Vec::new(),
            )
        }
        ("PATCH", id) => match s.sessions.get_mut(id) {
            Some(data) => {
                data.extend_from_slice(&req.body);
                let range = format!("0-{}", data.len().saturating_sub(1));
                (
                    202,
                    vec![("Location", req.path.clone()), ("Range", range)],
                    Vec::new(),
                )
            }
            None => (404, Vec::new(), err("BLOB_UPLOAD_UNKNOWN")),
        },
        ("PUT", id) => {
            if s.put_failed < faults.put_fail_first {
                s.put_failed += 1;
                return (500, Vec::new(), err("UNKNOWN"));
            }
            if faults.refuse_monolithic && !req.body.is_empty() {
                return (400, Vec::new(), err("BLOB_UPLOAD_INVALID"));
            }
            let Some(mut data) = s.sessions.remove(id) else {
                return (404, Vec::new(), err("BLOB_UPLOAD_UNKNOWN"));
            };
            data.extend_from_slice(&req.body);
            let digest = req.query_all("digest").pop().unwrap_or_default();
            if hoist_engine::digest::Digest::of(&data).to_string() != digest {
                return (400, Vec::new(), err("DIGEST_INVALID"));
            }
            s.uploaded.insert(digest.clone(), data);
            (201, vec![("Docker-Content-Digest", digest)], Vec::new())
        }
        ("DELETE", id) => {
            s.sessions.remove(id);
            (204, Vec::new(), Vec::new())
        }
        _ => (405, Vec::new(), err("UNSUPPORTED")),
    }
}

pub struct Stub {
    pub port: u16,
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

impl Stub {
    pub async fn start(content: Content, faults: Faults) -> Stub {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let shared = (Arc::new(content), Arc::new(faults), state.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let (content, faults, state) = shared.clone();
                tokio::spawn(async move {
                    let Some(req) = read_request(&mut stream).await else {
                        return;
                    };
                    let range = req.header("range").map(str::to_string);
                    let head = req.method == "HEAD";
                    state.lock().unwrap().log.push(format!(
                        "{} {} {}",
                        req.method,
                        req.path,
                        range.clone().unwrap_or_default()
                    ));
                    if req.path == "/v2/" {
                        return respond(&mut stream, 200, &[], b"{}", head).await;
                    }
                    if req.path.contains("/blobs/uploads/") {
                        let (status, headers, body) = upload(&state, &faults, &req);
                        return respond(&mut stream, status, &headers, &body, false).await;
                    }
                    let fail = {
                        let mut s = state.lock().unwrap();
                        let fail = s.failed < faults.fail_first;
                        s.failed += usize::from(fail);
                        fail
                    };
                    if fail {
                        let body =
                            br#"{"errors":[{"code":"UNKNOWN","message":"injected failure"}]}"#;
                        let status = if faults.fail_status == 0 {
                            500
                        } else {
                            faults.fail_status
                        };
                        let headers = [("Retry-After", "0".to_string())];
                        return respond(&mut stream, status, &headers, body, head).await;
                    }
                    if let Some((_, reference)) = req.path.split_once("/manifests/") {
                        return match content.manifests.get(reference) {
                            Some((media, bytes, digest)) => {
                                let mut headers = vec![("Content-Type", media.clone())];
                                if let Some(d) = digest {
                                    headers.push(("Docker-Content-Digest", d.clone()));
                                }
                                respond(&mut stream, 200, &headers, bytes, head).await
                            }
                            None => respond(&mut stream, 404, &[], br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#, head).await,
                        };
                    }
                    let Some((_, digest)) = req.path.split_once("/blobs/") else {
                        return respond(&mut stream, 404, &[], b"", head).await;
                    };
                    let hold = req.method == "GET" && {
                        let mut s = state.lock().unwrap();
                        let hold = s.held < faults.hold_first;
                        s.held += usize::from(hold);
                        hold
                    };
                    if hold {
                        return tokio::time::sleep(faults.stall_for).await;
                    }
                    let close = req.method == "GET" && {
                        let mut s = state.lock().unwrap();
                        let close = s.closed < faults.close_first;
                        s.closed += usize::from(close);
                        close
                    };
                    if close {
                        return drop(stream);
                    }
                    let uploaded = state.lock().unwrap().uploaded.get(digest).cloned();
                    let Some(blob) = uploaded.as_ref().or_else(|| content.blobs.get(digest)) else {
                        return respond(
                            &mut stream,
                            404,
                            &[],
                            br#"{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}"#,
                            head,
                        )
                        .await;
                    };
                    let start: usize = range
                        .as_deref()
                        .filter(|_| !faults.ignore_range)
                        .and_then(|r| r.strip_prefix("bytes="))
                        .and_then(|r| r.strip_suffix('-'))
                        .and_then(|n| n.parse().ok())
                        .unwrap_or(0)
                        .min(blob.len());
                    let mut headers =
                        vec![("Content-Type", "application/octet-stream".to_string())];
                    let status = if start > 0 {
                        headers.push((
                            "Content-Range",
                            format!("bytes {start}-{}/{}", blob.len() - 1, blob.len()),
                        ));
                        206
                    } else {
                        200
                    };
                    let mut body = blob[start..].to_vec();
                    let (cut, stall, corrupt) = if head {
                        (false, false, false)
                    } else {
                        let mut s = state.lock().unwrap();
                        let cut = s.cut < faults.cut_first;
                        s.cut += usize::from(cut);
                        let stall = s.stalled < faults.stall_first;
                        s.stalled += usize::from(stall);
                        let corrupt = s.corrupted < faults.corrupt_first;
                        s.corrupted += usize::from(corrupt);
                        (cut, stall, corrupt)
                    };
                    if corrupt && !body.is_empty() {
                        let middle = body.len() / 2;
                        body[middle] ^= 0xff;
                    }
                    if stall {
                        let n = faults.stall_at.min(body.len());
                        respond_stall(
                            &mut stream,
                            status,
                            &headers,
                            body.len(),
                            &body[..n],
                            faults.stall_for,
                        )
                        .await;
                    } else if cut {
                        let n = faults.cut_at.min(body.len());
                        respond_cut(&mut stream, status, &headers, body.len(), &body[..n]).await;
                    } else {
                        respond(&mut stream, status, &headers, &body, head).await;
                    }
                });
            }
        });
        Stub { port, state, task }
    }

    pub fn domain(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// "METHOD path range" of every request so far.
    pub fn log(&self) -> Vec<String> {
        self.state.lock().unwrap().log.clone()
    }

    /// Upload sessions still open (neither committed nor cancelled).
    pub fn open_sessions(&self) -> usize {
        self.state.lock().unwrap().sessions.len()
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.task.abort();
    }
}
