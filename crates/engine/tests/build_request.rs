//! A whole build request through the engine (`hoist_engine::request`):
//! a real store, plan and solver, a fake `Executor` in place of the
//! sandbox (as `build_executor.rs`), and real outputs: an OCI layout
//! directory, store names, and a push to a real `docker-registry`.

use std::path::Path;
use std::sync::Mutex;

use hoist_engine::executor::{BuildEvent, BuildOptions, BuildProgress};
use hoist_engine::export::OutputSpec;
use hoist_engine::image::media_types;
use hoist_engine::reference::Reference;
use hoist_engine::registry::{Client, ClientOptions, CredentialStore, Progress};
use hoist_engine::request::{self, BuildRequest, Notice, Output, Report, RequestError};
use hoist_engine::store::Store;
use hoist_engine::testing::FakeExecutor;

/// What the front end was told: events and notices, as text.
#[derive(Default)]
struct Told(Mutex<Vec<String>>);

impl BuildProgress for Told {
    fn event(&self, event: BuildEvent) {
        if let BuildEvent::Step { text, .. } = event {
            self.0.lock().unwrap().push(format!("step {text}"));
        }
    }
}

impl Report for Told {
    fn notice(&self, notice: Notice) {
        let line = match notice {
            Notice::StepsDone => "steps done".to_string(),
            Notice::Pushed { name, digest } => format!("pushed {name}@{digest}"),
            other => format!("{other:?}"),
        };
        self.0.lock().unwrap().push(line);
    }

    fn stdout(&self) -> std::io::Result<Box<dyn std::io::Write + '_>> {
        Err(std::io::Error::other("no stdout in this test"))
    }
}

struct Bench {
    dir: tempfile::TempDir,
    store: Store,
    client: Client,
    runtime: tokio::runtime::Runtime,
}

impl Bench {
    fn new() -> Bench {
        let dir = tempfile::tempdir().unwrap();
        let context = dir.path().join("ctx");
        std::fs::create_dir_all(&context).unwrap();
        std::fs::write(
            context.join("Dockerfile"),
            "FROM scratch\nCOPY a.txt /a.txt\nRUN make it\nLABEL l=1\n",
        )
        .unwrap();
        std::fs::write(context.join("a.txt"), "a\n").unwrap();
        std::fs::create_dir_all(dir.path().join("docker")).unwrap();
        let client = Client::new(ClientOptions {
            // No credentials of the machine's.
            credentials: CredentialStore::new(dir.path().join("docker")),
            ..ClientOptions::default()
        })
        .unwrap();
        Bench {
            store: Store::open(dir.path().join("store")).unwrap(),
            client,
            runtime: tokio::runtime::Runtime::new().unwrap(),
            dir,
        }
    }

    fn request(&self) -> BuildRequest {
        let text = std::fs::read_to_string(self.dir.path().join("ctx/Dockerfile")).unwrap();
        let mut options =
            BuildOptions::new(self.dir.path().join("ctx"), self.runtime.handle().clone());
        // Never started: the fake runs the steps.
        options.sandbox = Some(Path::new("/nonexistent/hoist").to_path_buf());
        options.executor = Some(std::sync::Arc::new(FakeExecutor::default()));
        BuildRequest::new(options, hoist_dockerfile::load(&text).unwrap())
    }

    fn build(
        &self,
        request: BuildRequest,
    ) -> (Result<request::BuildResult, RequestError>, Vec<String>) {
        let told = Told::default();
        let r = request::build(&self.store, &self.client, request, &told);
        (r, told.0.into_inner().unwrap())
    }
}

fn output(raw: &str) -> Output {
    Output {
        raw: raw.to_string(),
        spec: OutputSpec::parse(raw).unwrap(),
    }
}

#[test]
fn an_oci_layout_output_holds_the_one_manifest_the_result_names() {
    let bench = Bench::new();
    let layout = bench.dir.path().join("layout");
    let mut req = bench.request();
    req.tags = vec!["app:1".into()];
    req.outputs = vec![output(&format!(
        "type=oci,dest={},tar=false",
        layout.display()
    ))];
    let (result, told) = bench.build(req);
    let result = result.unwrap();
    assert_eq!((result.executed, result.cached), (2, 0), "{told:?}");
    // The steps are over before anything is written.
    assert_eq!(
        told.last().map(String::as_str),
        Some("steps done"),
        "{told:?}"
    );
    assert_eq!(result.names, ["docker.io/library/app:1"]);
    // The name in the store is the manifest the result has.
    let named = bench.store.resolve("docker.io/library/app:1").unwrap();
    assert_eq!(&named.digest, result.digest());
    // The layout's index lists that manifest, named by the tag, and holds
    // its blobs; the layers are gzip (BuildKit's default for image outputs).
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let listed = &index["manifests"][0];
    assert_eq!(listed["digest"], result.digest().to_string(), "{index}");
    assert_eq!(
        listed["annotations"]["io.containerd.image.name"], "docker.io/library/app:1",
        "{index}"
    );
    let manifest = result.manifest.value();
    assert_eq!(manifest.layers.len(), 2);
    for d in manifest
        .layers
        .iter()
        .chain([&manifest.config])
        .map(|d| &d.digest)
        .chain([result.digest()])
    {
        let hex = d.to_string().trim_start_matches("sha256:").to_string();
        assert!(
            layout.join("blobs/sha256").join(hex).is_file(),
            "{d} missing"
        );
    }
    for l in &manifest.layers {
        assert_eq!(l.media_type, media_types::OCI_LAYER_GZIP);
    }
    // `--metadata-file`'s value: buildx's keys for this image.
    assert_eq!(
        result.metadata["containerimage.digest"],
        result.digest().to_string()
    );
    assert_eq!(
        result.metadata["containerimage.config.digest"],
        result.config.to_string()
    );
    assert_eq!(result.metadata["image.name"], "docker.io/library/app:1");
    // Built again: every step cached, the same image.
    let (again, _) = bench.build(bench.request());
    let again = again.unwrap();
    assert_eq!((again.executed, again.cached), (0, 2));
    assert!(again.names.is_empty());
    assert_eq!(again.digest(), result.digest());
}

#[test]
fn push_without_a_tag_is_an_error_after_the_build() {
    let bench = Bench::new();
    let mut req = bench.request();
    req.push = true;
    let (result, told) = bench.build(req);
    // buildx's words; the steps ran (buildx too checks after solving).
    assert!(matches!(result, Err(RequestError::TagNeeded)), "{result:?}");
    assert_eq!(
        result.unwrap_err().to_string(),
        "tag is needed when pushing to registry"
    );
    assert!(told.contains(&"steps done".to_string()), "{told:?}");
}

#[test]
fn push_sends_the_built_manifest_to_a_real_registry() {
    let registry = hoist_engine::testing::Registry::start(None).unwrap();
    let bench = Bench::new();
    let name = format!("{}/team/app:1", registry.addr());
    let mut req = bench.request();
    req.tags = vec![name.clone()];
    req.push = true;
    let (result, told) = bench.build(req);
    let result = result.unwrap();
    assert!(
        told.contains(&format!("pushed {name}@{}", result.digest())),
        "{told:?}"
    );
    // Pulled into a fresh store: the same manifest, byte for byte.
    let fresh = Store::open(bench.dir.path().join("fresh")).unwrap();
    let pulled = bench
        .runtime
        .block_on(hoist_engine::transfer::pull(
            &bench.client,
            &fresh,
            &Reference::parse(&name).unwrap(),
            &hoist_engine::transfer::PullOptions {
                platform: hoist_engine::image::Platform::new(
                    "linux",
                    std::env::consts::ARCH
                        .replace("x86_64", "amd64")
                        .replace("aarch64", "arm64")
                        .as_str(),
                    None,
                ),
            },
            &Progress::none(),
        ))
        .unwrap();
    assert_eq!(&pulled.digest, result.digest());
}

#[test]
fn a_cache_exported_by_one_store_answers_every_step_in_another() {
    let cache = tempfile::tempdir().unwrap();
    let first = Bench::new();
    let mut req = first.request();
    req.cache_to = vec![
        hoist_engine::cache::CacheSpec::parse(
            &format!("type=local,dest={},mode=max", cache.path().display()),
            true,
        )
        .unwrap(),
    ];
    let (built, told) = first.build(req);
    let built = built.unwrap();
    assert!(
        told.iter().any(|t| t.starts_with("CacheExported")),
        "{told:?}"
    );
    assert_eq!(built.fetched, None, "no cache imported");
    // A fresh store with that cache and an output that needs the layers:
    // no step runs, the layers are fetched from the cache, the same image.
    let second = Bench::new();
    let layout = second.dir.path().join("out");
    let mut req = second.request();
    req.cache_from = vec![
        hoist_engine::cache::CacheSpec::parse(
            &format!("type=local,src={}", cache.path().display()),
            false,
        )
        .unwrap(),
    ];
    req.outputs = vec![output(&format!(
        "type=oci,dest={},tar=false",
        layout.display()
    ))];
    let (again, told) = second.build(req);
    let again = again.unwrap();
    assert!(
        told.iter().any(|t| t.starts_with("CacheImported")),
        "{told:?}"
    );
    assert_eq!((again.executed, again.imported), (0, 2), "{told:?}");
    let (blobs, bytes) = again.fetched.unwrap();
    assert!(blobs > 0 && bytes > 0, "{blobs} blobs, {bytes} bytes");
    assert_eq!(again.digest(), built.digest());
    assert!(layout.join("index.json").is_file());
}
