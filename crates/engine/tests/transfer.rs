//! Pull and push between a real `docker-registry` on 127.0.0.1 and a
//! real store: names only after complete verified content, HEAD skips,
//! mounts, index platform choice, and skopeo agreeing on digests.

mod registry_support;

use std::process::Command;

use hoist_engine::image::{Descriptor, Index, Platform, Raw, media_types};
use hoist_engine::reference::Reference;
use hoist_engine::registry::{Client, Progress};
use hoist_engine::store::Store;
use hoist_engine::transfer::{PullOptions, pull, push};
use registry_support::{Auth, RegistryProc, options};

fn amd64() -> PullOptions {
    PullOptions {
        platform: Platform::new("linux", "amd64", None),
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn push_then_pull_into_a_fresh_store_keeps_the_digest() {
    let registry = RegistryProc::start(None, Auth::None);
    let dir = tempfile::tempdir().unwrap();
    let client = Client::new(options(dir.path())).unwrap();
    let a = Store::open(dir.path().join("a")).unwrap();
    let manifest = hoist_engine::testing::small_image(&a, "docker.io/library/hello:1").unwrap();
    let dest = Reference::parse(&format!("{}/team/hello:1", registry.domain())).unwrap();
    rt().block_on(async {
        let first = push(
            &client,
            &a,
            "docker.io/library/hello:1",
            &dest,
            &Progress::none(),
        )
        .await
        .unwrap();
        assert_eq!(first.digest, *manifest.digest());
        assert_eq!(first.uploaded.len(), 2, "config and layer uploaded");
        // Second push: the registry has every blob.
        let again = push(
            &client,
            &a,
            "docker.io/library/hello:1",
            &dest,
            &Progress::none(),
        )
        .await
        .unwrap();
        assert!(again.uploaded.is_empty());
        assert_eq!(again.skipped.len(), 2);

        let b = Store::open(dir.path().join("b")).unwrap();
        let pulled = pull(&client, &b, &dest, &amd64(), &Progress::none())
            .await
            .unwrap();
        assert_eq!(pulled.digest, *manifest.digest());
        assert_eq!(pulled.downloaded.len(), 2);
        assert_eq!(
            b.resolve(&dest.to_string()).unwrap().digest,
            *manifest.digest()
        );
        assert!(b.check().unwrap().is_clean());
        // Pulling again downloads nothing.
        let again = pull(&client, &b, &dest, &amd64(), &Progress::none())
            .await
            .unwrap();
        assert!(again.downloaded.is_empty());
    });
    // skopeo sees the same manifest digest.
    let out = Command::new("skopeo")
        .args(["inspect", "--tls-verify=false", &format!("docker://{dest}")])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["Digest"], manifest.digest().to_string());
}

#[test]
fn push_mounts_blobs_from_the_source_repository() {
    let registry = RegistryProc::start(None, Auth::None);
    let dir = tempfile::tempdir().unwrap();
    let client = Client::new(options(dir.path())).unwrap();
    let store = Store::open(dir.path().join("s")).unwrap();
    let src = format!("{}/team/base:1", registry.domain());
    hoist_engine::testing::small_image(&store, &src).unwrap();
    rt().block_on(async {
        push(
            &client,
            &store,
            &src,
            &Reference::parse(&src).unwrap(),
            &Progress::none(),
        )
        .await
        .unwrap();
        let other = Reference::parse(&format!("{}/other/app:1", registry.domain())).unwrap();
        let r = push(&client, &store, &src, &other, &Progress::none())
            .await
            .unwrap();
        assert_eq!(r.mounted.len(), 2, "{r:?}");
        assert!(r.uploaded.is_empty());
    });
}

#[test]
fn pull_picks_the_platform_from_an_index_and_names_the_index() {
    let registry = RegistryProc::start(None, Auth::None);
    let dir = tempfile::tempdir().unwrap();
    let client = Client::new(options(dir.path())).unwrap();
    let a = Store::open(dir.path().join("a")).unwrap();
    let manifest = hoist_engine::testing::small_image(&a, "docker.io/library/hello:1").unwrap();
    let index = Index::new(
        media_types::OCI_INDEX,
        vec![
            Descriptor::new(
                media_types::OCI_MANIFEST,
                manifest.digest().clone(),
                manifest.size(),
            )
            .with_platform(Platform::new("linux", "amd64", None)),
        ],
    );
    let index = Raw::from_value(index).unwrap();
    a.put_blob_bytes(index.bytes()).unwrap();
    a.set_ref(
        "docker.io/library/hello:multi",
        index.digest(),
        Some(media_types::OCI_INDEX),
    )
    .unwrap();
    let dest = Reference::parse(&format!("{}/team/hello:multi", registry.domain())).unwrap();
    rt().block_on(async {
        let pushed = push(
            &client,
            &a,
            "docker.io/library/hello:multi",
            &dest,
            &Progress::none(),
        )
        .await
        .unwrap();
        assert_eq!(pushed.digest, *index.digest());
        let b = Store::open(dir.path().join("b")).unwrap();
        let pulled = pull(&client, &b, &dest, &amd64(), &Progress::none())
            .await
            .unwrap();
        assert_eq!(pulled.digest, *index.digest());
        assert_eq!(pulled.manifest, *manifest.digest());
        let arm = PullOptions {
            platform: Platform::new("linux", "s390x", None),
        };
        let c = Store::open(dir.path().join("c")).unwrap();
        let err = pull(&client, &c, &dest, &arm, &Progress::none())
            .await
            .unwrap_err();
        assert!(
            err.to_string().contains(
                "no match for platform in manifest: not found (no image for linux/s390x;"
            ),
            "{err}"
        );
        assert!(
            c.list_images().unwrap().is_empty(),
            "no name without content"
        );
    });
}

#[test]
fn pull_of_a_missing_image_names_it() {
    let registry = RegistryProc::start(None, Auth::None);
    let dir = tempfile::tempdir().unwrap();
    let client = Client::new(options(dir.path())).unwrap();
    let store = Store::open(dir.path().join("s")).unwrap();
    let r = Reference::parse(&format!("{}/nope/nope:1", registry.domain())).unwrap();
    let err = rt()
        .block_on(pull(&client, &store, &r, &amd64(), &Progress::none()))
        .unwrap_err();
    assert!(err.to_string().contains("nope/nope"), "{err}");
}
