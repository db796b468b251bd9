//! Push and pull against a real `docker-registry` over plain HTTP on
//! 127.0.0.1, checked with `skopeo` (containers/image) as a second client.

mod registry_support;

use std::process::Command;
use std::sync::{Arc, Mutex};

use hoist_engine::digest::Digest;
use hoist_engine::reference::{Reference, Repository};
use hoist_engine::registry::{
    BlobRef, BlobSource, Client, FileSink, Progress, ProgressEvent, PushOutcome, RegistryError,
};
use registry_support::{Auth, OCI_MANIFEST, RegistryProc, TestImage, options};
use tokio::io::AsyncReadExt;

fn recorder() -> (Progress, Arc<Mutex<Vec<ProgressEvent>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    (Progress::new(move |e| sink.lock().unwrap().push(e)), events)
}

fn bytes_moved(events: &[ProgressEvent]) -> u64 {
    let mut last = std::collections::HashMap::new();
    for e in events {
        if let ProgressEvent::Bytes { digest, done, .. } = e {
            last.insert(digest.clone(), *done);
        }
    }
    last.values().sum()
}

async fn push_image(
    client: &Client,
    reference: &Reference,
    image: &TestImage,
    mount_from: Option<&Repository>,
    progress: &Progress,
) -> Vec<PushOutcome> {
    let mut outcomes = Vec::new();
    for (blob, bytes) in image.blobs() {
        let source = BlobSource::Bytes(bytes.into());
        outcomes.push(
            client
                .push_blob(reference.repository(), &blob, &source, mount_from, progress)
                .await
                .unwrap(),
        );
    }
    client
        .put_manifest(reference, OCI_MANIFEST, &image.manifest)
        .await
        .unwrap();
    outcomes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_round_trip_with_skip_mount_and_skopeo() {
    let registry = RegistryProc::start(None, Auth::None);
    let config_dir = tempfile::tempdir().unwrap();
    let client = Client::new(options(config_dir.path())).unwrap();
    let image = TestImage::new("round-trip", 2);
    let domain = registry.domain();
    let a = Reference::parse(&format!("{domain}/hoist/a:v1")).unwrap();
    // 127.0.0.1 may use plain HTTP, after HTTPS failed.
    let endpoint = client.endpoint(&domain).await.unwrap();
    assert_eq!(
        (endpoint.url.as_str(), endpoint.http2, endpoint.auth),
        (&*format!("http://{domain}/"), false, None)
    );

    // First push uploads every blob, and progress counts every byte.
    let (progress, events) = recorder();
    let outcomes = push_image(&client, &a, &image, None, &progress).await;
    assert_eq!(outcomes, vec![PushOutcome::Uploaded; 3]);
    let total: u64 = image.blobs().iter().map(|(b, _)| b.size).sum();
    assert_eq!(bytes_moved(&events.lock().unwrap()), total);

    // Second push: HEAD finds everything, no byte moves.
    let (progress, events) = recorder();
    let outcomes = push_image(&client, &a, &image, None, &progress).await;
    assert_eq!(outcomes, vec![PushOutcome::Exists; 3]);
    let events = events.lock().unwrap().clone();
    assert_eq!(bytes_moved(&events), 0);
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, ProgressEvent::Exists { .. }))
            .count(),
        3
    );

    // Cross-repository mount into b: nothing uploaded either.
    let b = Reference::parse(&format!("{domain}/hoist/b:v1")).unwrap();
    let (progress, events) = recorder();
    let outcomes = push_image(&client, &b, &image, Some(a.repository()), &progress).await;
    assert_eq!(outcomes, vec![PushOutcome::Mounted; 3]);
    assert_eq!(bytes_moved(&events.lock().unwrap()), 0);

    // Pull back from b: same bytes, same digests.
    let pulled = client.get_manifest(&b).await.unwrap();
    assert_eq!(pulled.bytes, image.manifest);
    assert_eq!(pulled.media_type, OCI_MANIFEST);
    assert_eq!(pulled.digest, Digest::of(&image.manifest));
    let by_digest = client
        .get_manifest(&b.with_digest(pulled.digest.clone()))
        .await
        .unwrap();
    assert_eq!(by_digest.bytes, image.manifest);
    for (blob, bytes) in image.blobs() {
        let (progress, events) = recorder();
        let got = client
            .get_blob(b.repository(), &blob, Vec::new(), &progress)
            .await
            .unwrap();
        assert_eq!(got, bytes);
        let events = events.lock().unwrap();
        assert_eq!(bytes_moved(&events), blob.size);
        assert!(events.contains(&ProgressEvent::Done {
            digest: blob.digest.clone()
        }));
    }

    // A file sink lands the blob at its path; the reader streams it.
    let dir = tempfile::tempdir().unwrap();
    let (layer, layer_bytes) = image.blobs()[1].clone();
    let path = dir.path().join("layer.tar.gz");
    let sink = FileSink::create(&path).await.unwrap();
    let written = client
        .get_blob(a.repository(), &layer, sink, &Progress::none())
        .await
        .unwrap();
    assert_eq!(written, path);
    assert_eq!(std::fs::read(&path).unwrap(), layer_bytes);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "no partial file left"
    );
    let mut read = Vec::new();
    client
        .blob_reader(a.repository(), &layer, &Progress::none())
        .read_to_end(&mut read)
        .await
        .unwrap();
    assert_eq!(read, layer_bytes);

    // skopeo (containers/image) sees the same image and copies the same bytes.
    let out = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", "--raw"])
        .arg(format!("docker://{domain}/hoist/a:v1"))
        .output()
        .expect("skopeo (Debian package skopeo) must be installed");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, image.manifest);
    let out = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false"])
        .arg(format!("docker://{domain}/hoist/a:v1"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let inspect: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(inspect["Digest"], Digest::of(&image.manifest).to_string());
    assert_eq!(inspect["Layers"].as_array().unwrap().len(), 2);
    let copy_dir = dir.path().join("copy");
    let out = Command::new("skopeo")
        .args(["copy", "--src-tls-verify=false"])
        .arg(format!("docker://{domain}/hoist/b:v1"))
        .arg(format!("dir:{}", copy_dir.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let copied = std::fs::read(copy_dir.join("manifest.json")).unwrap();
    assert_eq!(Digest::of(&copied), Digest::of(&image.manifest));
    for (blob, bytes) in image.blobs() {
        assert_eq!(
            std::fs::read(copy_dir.join(blob.digest.hex())).unwrap(),
            bytes
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_chunked_upload_mount_fallback_and_digest_push() {
    let registry = RegistryProc::start(None, Auth::None);
    let config_dir = tempfile::tempdir().unwrap();
    let mut opts = options(config_dir.path());
    opts.force_chunked_upload = true;
    opts.chunk_size = 1000;
    let client = Client::new(opts).unwrap();
    let domain = registry.domain();
    let repo = Repository::parse(&format!("{domain}/chunked")).unwrap();

    // A blob from a file, sent in 1000-byte PATCH chunks.
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..5500u32).map(|i| (i * 7 % 251) as u8).collect();
    let file = dir.path().join("blob");
    std::fs::write(&file, &data).unwrap();
    let blob = BlobRef::of(&data);
    let (progress, events) = recorder();
    let outcome = client
        .push_blob(
            &repo,
            &blob,
            &BlobSource::File(file.clone()),
            None,
            &progress,
        )
        .await
        .unwrap();
    assert_eq!(outcome, PushOutcome::Uploaded);
    let steps: Vec<u64> = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            ProgressEvent::Bytes { done, .. } => Some(*done),
            _ => None,
        })
        .collect();
    assert_eq!(steps, vec![1000, 2000, 3000, 4000, 5000, 5500]);
    assert_eq!(
        client.blob_exists(&repo, &blob.digest).await.unwrap(),
        Some(5500)
    );
    assert_eq!(
        client
            .get_blob(&repo, &blob, Vec::new(), &Progress::none())
            .await
            .unwrap(),
        data
    );

    // A source whose size is not the descriptor's is refused up front.
    let err = client
        .upload_blob(
            &repo,
            &BlobRef::new(blob.digest.clone(), 5501),
            &BlobSource::File(file.clone()),
            &Progress::none(),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            RegistryError::SizeMismatch {
                expected: 5501,
                actual: 5500,
                ..
            }
        ),
        "{err}"
    );

    // An empty blob goes up too.
    let empty = BlobRef::of(b"");
    client
        .upload_blob(
            &repo,
            &empty,
            &BlobSource::Bytes(Vec::new().into()),
            &Progress::none(),
        )
        .await
        .unwrap();
    assert_eq!(
        client.blob_exists(&repo, &empty.digest).await.unwrap(),
        Some(0)
    );

    // Mount from a repository without the blob: 202, session cancelled,
    // then a normal upload.
    let other = BlobRef::of(b"not anywhere yet");
    let target = Repository::parse(&format!("{domain}/target")).unwrap();
    assert!(
        !client
            .mount_blob(&target, &repo, &other.digest)
            .await
            .unwrap()
    );
    let outcome = client
        .push_blob(
            &target,
            &other,
            &BlobSource::Bytes(b"not anywhere yet".to_vec().into()),
            Some(&repo),
            &Progress::none(),
        )
        .await
        .unwrap();
    assert_eq!(outcome, PushOutcome::Uploaded);
    assert_eq!(
        client.blob_exists(&repo, &other.digest).await.unwrap(),
        None,
        "not in the source repo"
    );

    // Unknown blobs and manifests are clear 404s.
    let missing = BlobRef::of(b"missing");
    let err = client
        .get_blob(&repo, &missing, Vec::new(), &Progress::none())
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::NotFound { status: 404, .. }),
        "{err}"
    );
    assert!(
        err.to_string().contains(&missing.digest.to_string()),
        "{err}"
    );
    let nothing = Reference::parse(&format!("{domain}/chunked:nope")).unwrap();
    let err = client.get_manifest(&nothing).await.unwrap_err();
    assert!(
        err.to_string().contains("MANIFEST_UNKNOWN") && err.to_string().contains(":nope"),
        "{err}"
    );

    // A manifest pushed by digest only, then fetched by digest.
    let image = TestImage::new("by-digest", 1);
    for (b, bytes) in image.blobs() {
        client
            .push_blob(
                &repo,
                &b,
                &BlobSource::Bytes(bytes.into()),
                None,
                &Progress::none(),
            )
            .await
            .unwrap();
    }
    let digest = Digest::of(&image.manifest);
    let by_digest = Reference::parse(&format!("{domain}/chunked@{digest}")).unwrap();
    assert_eq!(
        client
            .put_manifest(&by_digest, OCI_MANIFEST, &image.manifest)
            .await
            .unwrap(),
        digest
    );
    assert_eq!(
        client.get_manifest(&by_digest).await.unwrap().bytes,
        image.manifest
    );
    // Tags (registry 2.8 ignores `n` for tags and answers in storage
    // order); the catalog is paged one at a time through `Link`.
    for tag in ["t5", "t1", "t3", "t2", "t4"] {
        let tagged = Reference::parse(&format!("{domain}/chunked:{tag}")).unwrap();
        client
            .put_manifest(&tagged, OCI_MANIFEST, &image.manifest)
            .await
            .unwrap();
    }
    let mut tags = client.tags_list(&repo, Some(2)).await.unwrap();
    tags.sort();
    assert_eq!(tags, ["t1", "t2", "t3", "t4", "t5"]);
    let catalog = client.catalog(&domain, Some(1)).await.unwrap();
    assert_eq!(catalog, ["chunked", "target"]);
    // A reference whose digest does not match the bytes is refused before sending.
    let wrong = Reference::parse(&format!("{domain}/chunked@{}", Digest::of(b"x"))).unwrap();
    let err = client
        .put_manifest(&wrong, OCI_MANIFEST, &image.manifest)
        .await
        .unwrap_err();
    assert!(err.is_verification(), "{err}");
}
