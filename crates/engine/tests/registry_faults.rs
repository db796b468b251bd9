//! Faults injected by a stub registry on 127.0.0.1 (tokio, in the test):
//! 500s then success, connections reset in the middle of a blob (resumed
//! with `Range`, or re-read when the server ignores it), stalls (resumed
//! after the idle timeout), wrong bytes for a blob (fetched once more from
//! the start, then a clear error, and the sink is aborted) or a manifest,
//! and a port that takes connections and closes them (reported as closed,
//! not as the TLS error of the https try before plain HTTP).

mod registry_support;

use std::collections::HashMap;
use std::time::Duration;

use hoist_engine::digest::Digest;
use hoist_engine::reference::{Reference, Repository};
use hoist_engine::registry::{
    BlobRef, BlobSource, Client, FileSink, Progress, RegistryError, RetryPolicy,
};
use registry_support::stub::{Content, Faults, Stub};
use registry_support::{OCI_MANIFEST, options};
use tokio::io::AsyncReadExt;

fn blob_data() -> Vec<u8> {
    (0..20_000u32).map(|i| (i % 253) as u8).collect()
}

fn content_with(
    blob: &[u8],
    served: &[u8],
    manifest: &[u8],
    header_digest: Option<String>,
) -> Content {
    let mut manifests = HashMap::new();
    manifests.insert(
        "v1".to_string(),
        (
            OCI_MANIFEST.to_string(),
            manifest.to_vec(),
            header_digest.clone(),
        ),
    );
    manifests.insert(
        Digest::of(manifest).to_string(),
        (OCI_MANIFEST.to_string(), manifest.to_vec(), header_digest),
    );
    let mut blobs = HashMap::new();
    blobs.insert(Digest::of(blob).to_string(), served.to_vec());
    Content { manifests, blobs }
}

fn client() -> (Client, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    (Client::new(options(dir.path())).unwrap(), dir)
}

fn repo(stub: &Stub) -> Repository {
    Repository::parse(&format!("{}/faulty/app", stub.domain())).unwrap()
}

fn blob_gets(stub: &Stub) -> Vec<String> {
    stub.log()
        .into_iter()
        .filter(|l| l.starts_with("GET ") && l.contains("/blobs/"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_fault_500s_are_retried_then_succeed() {
    let data = blob_data();
    let manifest =
        br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json"}"#;
    let faults = Faults {
        fail_first: 2,
        ..Faults::default()
    };
    let stub = Stub::start(
        content_with(
            &data,
            &data,
            manifest,
            Some(Digest::of(manifest).to_string()),
        ),
        faults,
    )
    .await;
    let (client, _dir) = client();
    let reference = Reference::parse(&format!("{}/faulty/app:v1", stub.domain())).unwrap();
    let got = client.get_manifest(&reference).await.unwrap();
    assert_eq!(got.bytes, manifest);
    assert_eq!(got.media_type, OCI_MANIFEST);
    let manifest_gets = stub
        .log()
        .iter()
        .filter(|l| l.contains("/manifests/"))
        .count();
    assert_eq!(
        manifest_gets,
        3,
        "two 500s, then the answer: {:?}",
        stub.log()
    );
    let blob = BlobRef::of(&data);
    assert_eq!(
        client
            .get_blob(&repo(&stub), &blob, Vec::new(), &Progress::none())
            .await
            .unwrap(),
        data
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_fault_429_and_503_are_retried() {
    let data = blob_data();
    for status in [429, 503] {
        let faults = Faults {
            fail_first: 3,
            fail_status: status,
            ..Faults::default()
        };
        let stub = Stub::start(content_with(&data, &data, b"{}", None), faults).await;
        let (client, _dir) = client();
        let blob = BlobRef::of(&data);
        let got = client
            .get_blob(&repo(&stub), &blob, Vec::new(), &Progress::none())
            .await
            .unwrap();
        assert_eq!(got, data);
        assert_eq!(
            blob_gets(&stub).len(),
            4,
            "{status}: three refusals, then the blob"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_fault_500s_beyond_the_budget_name_the_status() {
    let data = blob_data();
    let faults = Faults {
        fail_first: 100,
        ..Faults::default()
    };
    let stub = Stub::start(content_with(&data, &data, b"{}", None), faults).await;
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.retry = RetryPolicy {
        max_attempts: 3,
        ..opts.retry
    };
    let client = Client::new(opts).unwrap();
    let blob = BlobRef::of(&data);
    let err = client
        .get_blob(&repo(&stub), &blob, Vec::new(), &Progress::none())
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(500), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("http 500")
            && text.contains("injected failure")
            && text.contains(&blob.digest.to_string()),
        "{text}"
    );
    assert_eq!(blob_gets(&stub).len(), 3, "bounded by max_attempts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_fault_reset_mid_blob_resumes_with_range() {
    let data = blob_data();
    let faults = Faults {
        cut_first: 2,
        cut_at: 7000,
        ..Faults::default()
    };
    let stub = Stub::start(content_with(&data, &data, b"{}", None), faults).await;
    let (client, _dir) = client();
    let blob = BlobRef::of(&data);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blob");
    let sink = FileSink::create(&path).await.unwrap();
    client
        .get_blob(&repo(&stub), &blob, sink, &Progress::none())
        .await
        .unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), data);
    let gets = blob_gets(&stub);
    assert_eq!(gets.len(), 3, "{gets:?}");
    assert!(
        gets[0].ends_with(' '),
        "first request has no range: {gets:?}"
    );
    assert!(gets[1].ends_with("bytes=7000-"), "{gets:?}");
    assert!(gets[2].ends_with("bytes=14000-"), "{gets:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_fault_reset_when_range_is_ignored_skips_what_it_has() {
    let data = blob_data();
    let faults = Faults {
        cut_first: 1,
        cut_at: 5000,
        ignore_range: true,
        ..Faults::default()
    };
    let stub = Stub::start(content_with(&data, &data, b"{}", None), faults).await;
    let (client, _dir) = client();
    let blob = BlobRef::of(&data);
    let mut reader = client.blob_reader(&repo(&stub), &blob, &Progress::none());
    let mut got = Vec::new();
    reader.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, data, "no byte repeated or lost");
    assert_eq!(blob_gets(&stub).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_fault_wrong_blob_bytes_abort_the_sink() {
    let data = blob_data();
    let mut served = data.clone();
    served[12_345] ^= 0xff;
    let stub = Stub::start(content_with(&data, &served, b"{}", None), Faults::default()).await;
    let (client, _dir) = client();
    let blob = BlobRef::of(&data);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blob");
    let sink = FileSink::create(&path).await.unwrap();
    let err = client
        .get_blob(&repo(&stub), &blob, sink, &Progress::none())
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::DigestMismatch { ref expected, ref actual, .. }
        if *expected == blob.digest && *actual == Digest::of(&served)),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains(&format!("blob {} in", blob.digest)),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains(&format!(
            "from registry {}, fetched 2 times from the start",
            stub.domain()
        )) && text.contains(&format!("expected {}", blob.digest))
            && text.contains(&format!("got {}", Digest::of(&served))),
        "{text}"
    );
    assert_eq!(blob_gets(&stub).len(), 2, "one more fetch from the start");
    assert!(
        blob_gets(&stub).iter().all(|g| g.ends_with(' ')),
        "both from byte 0: {:?}",
        stub.log()
    );
    assert!(!path.exists(), "nothing final");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no partial file left"
    );

    // The reader form: an error instead of EOF (its bytes were read
    // already, so it cannot start over).
    let mut reader = client.blob_reader(&repo(&stub), &blob, &Progress::none());
    let err = reader.read_to_end(&mut Vec::new()).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidData, "{err}");
    assert!(err.to_string().contains("digest mismatch"), "{err}");
    assert_eq!(blob_gets(&stub).len(), 3, "the reader fetched once");

    // Too many bytes is caught at once, before the digest.
    let mut longer = data.clone();
    longer.extend_from_slice(b"extra");
    let stub = Stub::start(content_with(&data, &longer, b"{}", None), Faults::default()).await;
    let err = client
        .get_blob(&repo(&stub), &blob, Vec::new(), &Progress::none())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            RegistryError::SizeMismatch {
                expected: 20_000,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_fault_wrong_manifest_digest_is_refused() {
    let manifest = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}"#;
    let tampered = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[1]}"#;
    let good = Digest::of(manifest);
    // Served under the good digest, with bytes that are not.
    let mut content = content_with(b"", b"", manifest, None);
    content.manifests.insert(
        good.to_string(),
        (OCI_MANIFEST.to_string(), tampered.to_vec(), None),
    );
    // By tag, with a Docker-Content-Digest that does not match the bytes.
    content.manifests.insert(
        "lying".to_string(),
        (
            OCI_MANIFEST.to_string(),
            manifest.to_vec(),
            Some(Digest::of(b"other").to_string()),
        ),
    );
    let stub = Stub::start(content, Faults::default()).await;
    let (client, _dir) = client();
    let by_digest = Reference::parse(&format!("{}/faulty/app@{good}", stub.domain())).unwrap();
    let err = client.get_manifest(&by_digest).await.unwrap_err();
    match &err {
        RegistryError::DigestMismatch {
            what,
            expected,
            actual,
        } => {
            assert_eq!((expected, actual), (&good, &Digest::of(tampered)));
            assert!(what.contains(&by_digest.to_string()), "{what}");
        }
        other => panic!("expected a digest mismatch, got {other}"),
    }
    let lying = Reference::parse(&format!("{}/faulty/app:lying", stub.domain())).unwrap();
    let err = client.get_manifest(&lying).await.unwrap_err();
    assert!(
        err.is_verification() && err.to_string().contains(":lying"),
        "{err}"
    );
    // Without the header, a tag pull computes the digest itself.
    let fine = Reference::parse(&format!("{}/faulty/app:v1", stub.domain())).unwrap();
    assert_eq!(client.get_manifest(&fine).await.unwrap().digest, good);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_fault_uploads_fall_back_to_chunks_and_retry_sessions() {
    let data = blob_data();
    let blob = BlobRef::of(&data);
    let source = BlobSource::Bytes(data.clone().into());
    let count =
        |stub: &Stub, prefix: &str| stub.log().iter().filter(|l| l.starts_with(prefix)).count();

    // A registry that refuses the one-PUT upload gets PATCH chunks.
    let faults = Faults {
        refuse_monolithic: true,
        ..Faults::default()
    };
    let stub = Stub::start(Content::default(), faults).await;
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.chunk_size = 8192;
    let chunking = Client::new(opts).unwrap();
    chunking
        .upload_blob(&repo(&stub), &blob, &source, &Progress::none())
        .await
        .unwrap();
    assert_eq!(
        count(&stub, "PATCH "),
        3,
        "20000 bytes in 8192-byte chunks: {:?}",
        stub.log()
    );
    assert_eq!(
        count(&stub, "DELETE "),
        1,
        "the refused session is cancelled"
    );
    assert_eq!(stub.open_sessions(), 0);
    let got = chunking
        .get_blob(&repo(&stub), &blob, Vec::new(), &Progress::none())
        .await
        .unwrap();
    assert_eq!(got, data);

    // 500 on the PUT: a new session each time, then success.
    let faults = Faults {
        put_fail_first: 2,
        ..Faults::default()
    };
    let stub = Stub::start(Content::default(), faults).await;
    let (client, _dir) = client();
    client
        .upload_blob(&repo(&stub), &blob, &source, &Progress::none())
        .await
        .unwrap();
    assert_eq!(
        (count(&stub, "POST "), count(&stub, "PUT ")),
        (3, 3),
        "{:?}",
        stub.log()
    );
    assert_eq!(stub.open_sessions(), 0);
    assert_eq!(
        client
            .blob_exists(&repo(&stub), &blob.digest)
            .await
            .unwrap(),
        Some(20_000)
    );

    // Bytes that are not the digest: the registry's DIGEST_INVALID is
    // final, not retried.
    let stub = Stub::start(Content::default(), Faults::default()).await;
    let lie = BlobRef::new(Digest::of(&vec![0u8; 20_000]), 20_000);
    let err = client
        .upload_blob(&repo(&stub), &lie, &source, &Progress::none())
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(400), "{err}");
    assert!(
        err.to_string().contains("DIGEST_INVALID")
            && err.to_string().contains(&lie.digest.to_string()),
        "{err}"
    );
    assert_eq!(count(&stub, "POST "), 1);
}

/// A client whose idle timeout is 1 s (the default is 30 s).
fn impatient_client(max_attempts: u32) -> (Client, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options(dir.path());
    opts.idle_timeout = Duration::from_secs(1);
    opts.retry.max_attempts = max_attempts;
    (Client::new(opts).unwrap(), dir)
}

/// Bounds a hang: a pull that never ends fails the test instead.
async fn bounded<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("the pull hung past 60 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_fault_stalled_blob_resumes_from_what_arrived() {
    let data = blob_data();
    let faults = Faults {
        stall_first: 2,
        stall_at: 7000,
        stall_for: Duration::from_secs(300),
        ..Faults::default()
    };
    let stub = Stub::start(content_with(&data, &data, b"{}", None), faults).await;
    let (client, _dir) = impatient_client(5);
    let blob = BlobRef::of(&data);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blob");
    let sink = FileSink::create(&path).await.unwrap();
    bounded(client.get_blob(&repo(&stub), &blob, sink, &Progress::none()))
        .await
        .unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), data);
    let gets = blob_gets(&stub);
    assert_eq!(gets.len(), 3, "{gets:?}");
    assert!(gets[0].ends_with(' '), "{gets:?}");
    assert!(gets[1].ends_with("bytes=7000-"), "resumed: {gets:?}");
    assert!(gets[2].ends_with("bytes=14000-"), "resumed: {gets:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_fault_unanswered_blob_request_is_retried() {
    let data = blob_data();
    let faults = Faults {
        hold_first: 1,
        stall_for: Duration::from_secs(300),
        ..Faults::default()
    };
    let stub = Stub::start(content_with(&data, &data, b"{}", None), faults).await;
    let (client, _dir) = impatient_client(5);
    let blob = BlobRef::of(&data);
    let got = bounded(client.get_blob(&repo(&stub), &blob, Vec::new(), &Progress::none()))
        .await
        .unwrap();
    assert_eq!(got, data);
    assert_eq!(blob_gets(&stub).len(), 2, "{:?}", stub.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_fault_stalls_on_every_attempt_end_in_a_bounded_error() {
    let data = blob_data();
    let faults = Faults {
        stall_first: 100,
        stall_at: 3000,
        stall_for: Duration::from_secs(300),
        ..Faults::default()
    };
    let stub = Stub::start(content_with(&data, &data, b"{}", None), faults).await;
    let (client, _dir) = impatient_client(3);
    let blob = BlobRef::of(&data);
    let err = bounded(client.get_blob(&repo(&stub), &blob, Vec::new(), &Progress::none()))
        .await
        .unwrap_err();
    match &err {
        RegistryError::Interrupted {
            done,
            total,
            attempts,
            message,
            ..
        } => {
            assert_eq!((*done, *total, *attempts), (9000, 20_000, 3), "{err}");
            assert!(message.contains("no bytes for 1s"), "{err}");
        }
        other => panic!("expected an interrupted transfer, got {other}"),
    }
    assert_eq!(blob_gets(&stub).len(), 3, "bounded by max_attempts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_fault_corrupt_blob_is_fetched_again_from_the_start() {
    let data = blob_data();
    let faults = Faults {
        corrupt_first: 1,
        ..Faults::default()
    };
    let stub = Stub::start(content_with(&data, &data, b"{}", None), faults).await;
    let (client, _dir) = client();
    let blob = BlobRef::of(&data);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blob");
    let sink = FileSink::create(&path).await.unwrap();
    client
        .get_blob(&repo(&stub), &blob, sink, &Progress::none())
        .await
        .unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), data, "only the good bytes");
    let gets = blob_gets(&stub);
    assert_eq!(gets.len(), 2, "{gets:?}");
    assert!(gets[1].ends_with(' '), "from the start, no Range: {gets:?}");
}

/// A port that takes connections and drops them: closed right away, or
/// reset after reading the request.
fn dropping_server(reset: bool) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let runtime = tokio::runtime::Handle::current();
    std::thread::spawn(move || {
        let _in_runtime = runtime.enter();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            if reset {
                use std::io::Read;
                let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
                let _ = stream.read(&mut [0u8; 4096]);
                let _ = socket_reset(&stream);
            }
            drop(stream);
        }
    });
    port
}

/// SO_LINGER 0: the close that follows sends a reset.
fn socket_reset(stream: &std::net::TcpStream) -> std::io::Result<()> {
    let stream = stream.try_clone()?;
    stream.set_nonblocking(true)?;
    let stream = tokio::net::TcpStream::from_std(stream)?;
    stream.set_zero_linger()?;
    drop(stream.into_std()?);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_fault_plain_http_drop_is_reported_as_closed_not_tls() {
    for reset in [false, true] {
        let port = dropping_server(reset);
        let (client, _dir) = client();
        let reference = Reference::parse(&format!("127.0.0.1:{port}/dropped/app:v1")).unwrap();
        let err = bounded(client.get_manifest(&reference)).await.unwrap_err();
        let text = err.to_string();
        match &err {
            RegistryError::Closed {
                url,
                plain_http: true,
                https: Some(_),
                ..
            } => assert_eq!(*url, format!("http://127.0.0.1:{port}/v2/"), "{text}"),
            other => panic!("reset={reset}: expected a closed plain-HTTP connection, got {other}"),
        }
        assert!(
            text.starts_with(&format!(
                "registry 127.0.0.1:{port}: ping /v2/: the registry closed the connection to http://127.0.0.1:{port}/v2/ without answering (plain HTTP)"
            )),
            "reset={reset}: {text}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_fault_plain_http_registry_closing_blob_requests_is_reported_as_closed() {
    let data = blob_data();
    // Once: retried, and the blob arrives.
    let faults = Faults {
        close_first: 1,
        ..Faults::default()
    };
    let stub = Stub::start(content_with(&data, &data, b"{}", None), faults).await;
    let (client, _dir) = client();
    let blob = BlobRef::of(&data);
    let got = client
        .get_blob(&repo(&stub), &blob, Vec::new(), &Progress::none())
        .await
        .unwrap();
    assert_eq!(got, data);
    assert_eq!(blob_gets(&stub).len(), 2, "{:?}", stub.log());

    // Always: the error says the registry closed the connection, over
    // plain HTTP, after the retry budget.
    let faults = Faults {
        close_first: 100,
        ..Faults::default()
    };
    let stub = Stub::start(content_with(&data, &data, b"{}", None), faults).await;
    let err = client
        .get_blob(&repo(&stub), &blob, Vec::new(), &Progress::none())
        .await
        .unwrap_err();
    let url = format!(
        "http://{}/v2/faulty/app/blobs/{}",
        stub.domain(),
        blob.digest
    );
    assert!(
        matches!(&err, RegistryError::Closed { plain_http: true, https: None, url: u, .. } if *u == url),
        "{err}"
    );
    assert!(
        err.to_string().contains(&format!(
            "the registry closed the connection to {url} without answering (plain HTTP)"
        )),
        "{err}"
    );
    assert_eq!(blob_gets(&stub).len(), 5, "bounded by max_attempts");
}
