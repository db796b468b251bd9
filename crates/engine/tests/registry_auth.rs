//! Authentication against a real `docker-registry`: TLS with a test CA
//! and htpasswd basic auth, and `token` auth with a token server written
//! here (ES256 JWTs the registry verifies against the signer certificate).

mod registry_support;

use std::sync::atomic::Ordering;

use hoist_engine::reference::Reference;
use hoist_engine::registry::{
    BlobSource, Client, CredentialStore, Credentials, Progress, PushOutcome, RegistryError,
};
use registry_support::token::{ISSUER, SERVICE, TokenServer};
use registry_support::{
    Auth, OCI_MANIFEST, RegistryProc, TestImage, htpasswd, make_certs, options, write_docker_config,
};

async fn push_and_pull(client: &Client, reference: &Reference, image: &TestImage) {
    for (blob, bytes) in image.blobs() {
        let outcome = client
            .push_blob(
                reference.repository(),
                &blob,
                &BlobSource::Bytes(bytes.clone().into()),
                None,
                &Progress::none(),
            )
            .await
            .unwrap();
        assert_eq!(outcome, PushOutcome::Uploaded);
        assert_eq!(
            client
                .get_blob(reference.repository(), &blob, Vec::new(), &Progress::none())
                .await
                .unwrap(),
            bytes
        );
    }
    client
        .put_manifest(reference, OCI_MANIFEST, &image.manifest)
        .await
        .unwrap();
    assert_eq!(
        client.get_manifest(reference).await.unwrap().bytes,
        image.manifest
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_tls_with_basic_auth() {
    let pki = tempfile::tempdir().unwrap();
    let certs = make_certs(pki.path());
    let registry = RegistryProc::start(
        Some(&certs),
        Auth::Basic {
            htpasswd: htpasswd(pki.path(), "alice", "s3cret"),
        },
    );
    let domain = registry.domain();
    let reference = Reference::parse(&format!("{domain}/secure/app:1")).unwrap();
    let image = TestImage::new("tls", 1);

    // Credentials from a DOCKER_CONFIG dir, CA from the extra CA file.
    let config = tempfile::tempdir().unwrap();
    write_docker_config(config.path(), &domain, "alice", "s3cret");
    let mut opts = options(config.path());
    opts.extra_ca_file = Some(certs.ca.clone());
    let client = Client::new(opts.clone()).unwrap();
    push_and_pull(&client, &reference, &image).await;
    let endpoint = client.endpoint(&domain).await.unwrap();
    assert_eq!(endpoint.url, format!("https://{domain}/"));
    assert!(endpoint.http2, "HTTP/2 by ALPN over TLS");
    assert_eq!(endpoint.auth, Some("basic"));

    // Wrong password: a clear 401 naming the registry.
    let wrong_dir = tempfile::tempdir().unwrap();
    write_docker_config(wrong_dir.path(), &domain, "alice", "wrong");
    let wrong = Client::new(hoist_engine::registry::ClientOptions {
        credentials: CredentialStore::new(wrong_dir.path()),
        ..opts.clone()
    })
    .unwrap();
    let err = wrong.get_manifest(&reference).await.unwrap_err();
    assert!(
        matches!(
            err,
            RegistryError::Unauthorized {
                status: 401,
                with_credentials: true,
                ..
            }
        ),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains(&domain)
            && text.contains("http 401")
            && text.contains("credentials were rejected"),
        "{text}"
    );

    // No credentials at all.
    let empty = tempfile::tempdir().unwrap();
    let anonymous = Client::new(hoist_engine::registry::ClientOptions {
        credentials: CredentialStore::new(empty.path()),
        ..opts.clone()
    })
    .unwrap();
    let err = anonymous.get_manifest(&reference).await.unwrap_err();
    assert!(
        err.to_string().contains("no credentials for this registry"),
        "{err}"
    );

    // Without the test CA the server certificate is not trusted, and no
    // fallback to plain http happens for a TLS failure against a TLS port.
    let untrusted = Client::new(options(config.path())).unwrap();
    let err = untrusted.get_manifest(&reference).await.unwrap_err();
    let mut text = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    assert!(text.contains(&format!("https://{domain}/v2/")), "{text}");
    assert!(
        text.contains("UnknownIssuer"),
        "the certificate error is kept: {text}"
    );

    // login checks the credentials, then writes them; logout removes them.
    let login_dir = tempfile::tempdir().unwrap();
    let fresh = Client::new(hoist_engine::registry::ClientOptions {
        credentials: CredentialStore::new(login_dir.path()),
        ..opts.clone()
    })
    .unwrap();
    let bad = Credentials::Basic {
        username: "alice".into(),
        password: "nope".into(),
    };
    let err = fresh.login(&domain, bad).await.unwrap_err();
    assert_eq!(err.status(), Some(401), "{err}");
    assert!(
        !login_dir.path().join("config.json").exists(),
        "nothing stored for bad credentials"
    );
    let good = Credentials::Basic {
        username: "alice".into(),
        password: "s3cret".into(),
    };
    fresh.login(&domain, good.clone()).await.unwrap();
    assert_eq!(
        CredentialStore::new(login_dir.path())
            .get(&domain)
            .await
            .unwrap(),
        Some(good)
    );
    assert_eq!(
        fresh.get_manifest(&reference).await.unwrap().bytes,
        image.manifest
    );
    assert!(fresh.logout(&domain).await.unwrap());
    assert_eq!(
        CredentialStore::new(login_dir.path())
            .get(&domain)
            .await
            .unwrap(),
        None
    );
    let err = fresh.get_manifest(&reference).await.unwrap_err();
    assert_eq!(err.status(), Some(401), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_token_auth_caches_tokens_per_scope() {
    let dir = tempfile::tempdir().unwrap();
    let tokens = TokenServer::start(dir.path(), &[("bob", "pw")], &[("refresh-123", "bob")]).await;
    let registry = RegistryProc::start(
        None,
        Auth::Token {
            realm: tokens.realm(),
            service: SERVICE.into(),
            issuer: ISSUER.into(),
            bundle: tokens.bundle.clone(),
        },
    );
    let domain = registry.domain();
    let config = tempfile::tempdir().unwrap();
    write_docker_config(config.path(), &domain, "bob", "pw");
    let client = Client::new(options(config.path())).unwrap();
    let a = Reference::parse(&format!("{domain}/tok/a:1")).unwrap();
    let image = TestImage::new("token", 1);
    push_and_pull(&client, &a, &image).await;
    let endpoint = client.endpoint(&domain).await.unwrap();
    assert_eq!(
        (endpoint.url, endpoint.auth),
        (format!("http://{domain}/"), Some("bearer"))
    );
    // One token for push (pull,push) and one for pull, each reused.
    let issued = tokens.issued.load(Ordering::SeqCst);
    assert_eq!(issued, 2, "tokens are cached per scope");
    assert_eq!(client.get_manifest(&a).await.unwrap().bytes, image.manifest);
    assert_eq!(tokens.issued.load(Ordering::SeqCst), 2);

    // A mount asks for push on b and pull on a in one token.
    let b = Reference::parse(&format!("{domain}/tok/b:1")).unwrap();
    let (config_blob, _) = image.blobs()[0].clone();
    assert!(
        client
            .mount_blob(b.repository(), a.repository(), &config_blob.digest)
            .await
            .unwrap()
    );
    assert_eq!(tokens.issued.load(Ordering::SeqCst), 3);

    // An identity token (refresh token) is exchanged with a POST.
    let idt = tempfile::tempdir().unwrap();
    std::fs::write(
        idt.path().join("config.json"),
        serde_json::json!({"auths": {&domain: {"auth": "Ym9iOg==", "identitytoken": "refresh-123"}}}).to_string(),
    )
    .unwrap();
    let refreshing = Client::new(options(idt.path())).unwrap();
    assert_eq!(
        refreshing.get_manifest(&a).await.unwrap().bytes,
        image.manifest
    );

    // Wrong password: the token endpoint refuses, and the error says so.
    let bad = tempfile::tempdir().unwrap();
    write_docker_config(bad.path(), &domain, "bob", "wrong");
    let refused_before = tokens.refused.load(Ordering::SeqCst);
    let err = Client::new(options(bad.path()))
        .unwrap()
        .get_manifest(&a)
        .await
        .unwrap_err();
    assert!(
        matches!(err, RegistryError::Unauthorized { status: 401, .. }),
        "{err}"
    );
    assert!(err.to_string().contains(&tokens.realm()), "{err}");
    assert_eq!(tokens.refused.load(Ordering::SeqCst), refused_before + 1);
}
