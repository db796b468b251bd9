//! `insecure = true` in the config (and `--insecure-registry`) against a
//! real `docker-registry` serving TLS with a certificate from a CA the
//! client does not know: containers-registries.conf's meaning, TLS
//! without certificate verification, for the listed registry only; and a
//! mirror reached that way, which serves pulls but never pushes.

mod registry_support;

use std::collections::BTreeMap;

use hoist_engine::reference::Reference;
use hoist_engine::registry::{BlobSource, Client, ClientOptions, Progress};
use registry_support::{Auth, Certs, OCI_MANIFEST, RegistryProc, TestImage, make_certs, options};

/// A TLS registry holding `image` as `secure/app:1` (pushed by a client
/// that trusts the test CA).
async fn tls_registry_with(image: &TestImage, certs: &Certs) -> RegistryProc {
    let registry = RegistryProc::start(Some(certs), Auth::None);
    let docker = tempfile::tempdir().unwrap();
    let mut opts = options(docker.path());
    opts.extra_ca_file = Some(certs.ca.clone());
    let trusted = Client::new(opts).unwrap();
    let reference = Reference::parse(&format!("{}/secure/app:1", registry.domain())).unwrap();
    for (blob, bytes) in image.blobs() {
        trusted
            .push_blob(
                reference.repository(),
                &blob,
                &BlobSource::Bytes(bytes.into()),
                None,
                &Progress::none(),
            )
            .await
            .unwrap();
    }
    trusted
        .put_manifest(&reference, OCI_MANIFEST, &image.manifest)
        .await
        .unwrap();
    registry
}

fn client(docker: &std::path::Path, insecure: &[String]) -> Client {
    Client::new(ClientOptions {
        insecure_registries: insecure.to_vec(),
        ..options(docker)
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_skips_certificate_verification_for_the_listed_registry_only() {
    let pki = tempfile::tempdir().unwrap();
    let certs = make_certs(pki.path());
    let image = TestImage::new("insecure-tls", 2);
    let registry = tls_registry_with(&image, &certs).await;
    let domain = registry.domain();
    let reference = Reference::parse(&format!("{domain}/secure/app:1")).unwrap();
    let docker = tempfile::tempdir().unwrap();

    // Not listed (or another registry listed): the unknown CA is refused.
    for insecure in [vec![], vec!["other.lan:5000".to_string()]] {
        let err = client(docker.path(), &insecure)
            .get_manifest(&reference)
            .await
            .unwrap_err();
        let chain = format!("{:?}", anyhow_chain(&err));
        assert!(
            chain.contains("certificate") || chain.contains("UnknownIssuer"),
            "{insecure:?}: {chain}"
        );
    }

    // Listed: HTTPS without verification (not a fall back to plain HTTP).
    let insecure = client(docker.path(), std::slice::from_ref(&domain));
    let manifest = insecure.get_manifest(&reference).await.unwrap();
    assert_eq!(manifest.bytes, image.manifest);
    for (blob, bytes) in image.blobs() {
        let got = insecure
            .get_blob(reference.repository(), &blob, Vec::new(), &Progress::none())
            .await
            .unwrap();
        assert_eq!(got, bytes);
    }
    let endpoint = insecure.endpoint(&domain).await.unwrap();
    assert_eq!(endpoint.url, format!("https://{domain}/"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insecure_mirror_serves_pulls_but_not_pushes() {
    let pki = tempfile::tempdir().unwrap();
    let certs = make_certs(pki.path());
    let image = TestImage::new("mirror-tls", 1);
    let mirror = tls_registry_with(&image, &certs).await;
    let docker = tempfile::tempdir().unwrap();
    // The certificate names 127.0.0.1 and localhost; the mirror is listed
    // by its localhost name, so only that name is insecure.
    let mirror_name = format!("localhost:{}", mirror.port);
    let mirrors: BTreeMap<String, Vec<String>> = [(
        "registry.invalid:5000".to_string(),
        vec![mirror_name.clone()],
    )]
    .into();
    let client = Client::new(ClientOptions {
        insecure_registries: vec![mirror_name],
        mirrors,
        ..options(docker.path())
    })
    .unwrap();
    let reference = Reference::parse("registry.invalid:5000/secure/app:1").unwrap();
    let manifest = client.get_manifest(&reference).await.unwrap();
    assert_eq!(manifest.bytes, image.manifest);
    for (blob, bytes) in image.blobs() {
        let got = client
            .get_blob(reference.repository(), &blob, Vec::new(), &Progress::none())
            .await
            .unwrap();
        assert_eq!(got, bytes);
    }
    // A push goes to the registry itself, which does not resolve.
    let err = client
        .put_manifest(&reference, OCI_MANIFEST, &image.manifest)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("registry.invalid:5000"), "{err}");
    assert!(!err.to_string().contains("localhost"), "{err}");
}

/// The error and its sources, one string each.
fn anyhow_chain(err: &dyn std::error::Error) -> Vec<String> {
    let mut out = vec![err.to_string()];
    let mut source = err.source();
    while let Some(e) = source {
        out.push(e.to_string());
        source = e.source();
    }
    out
}
