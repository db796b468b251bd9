//! The build through its executor seam: a real store, a real plan and
//! solver, and a fake `Executor` in place of the sandbox (it writes into
//! the step's upper directory what a process would), so what the build
//! does around a `RUN` — keys, cache records, layers, history, errors at
//! their line, cancellation — is checked without namespaces.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use hoist_engine::executor::base::BaseResolver;
use hoist_engine::executor::{BuildError, BuildEvent, BuildOptions, BuildProgress, BuildResult};
use hoist_engine::store::Store;
use hoist_engine::testing::FakeExecutor;

#[derive(Default)]
struct Events(Mutex<Vec<String>>);

impl BuildProgress for Events {
    fn event(&self, event: BuildEvent) {
        let line = match event {
            BuildEvent::Step { text, .. } => format!("step {text}"),
            BuildEvent::Cached { .. } => "cached".into(),
            BuildEvent::Output { line, .. } => format!("output {line}"),
            _ => return,
        };
        self.0.lock().unwrap().push(line);
    }
}

struct Bench {
    _dir: tempfile::TempDir,
    store: Store,
    context: std::path::PathBuf,
    runtime: tokio::runtime::Runtime,
    executor: Arc<FakeExecutor>,
}

impl Bench {
    fn new(dockerfile: &str) -> Bench {
        let dir = tempfile::tempdir().unwrap();
        let context = dir.path().join("ctx");
        std::fs::create_dir_all(&context).unwrap();
        std::fs::write(context.join("Dockerfile"), dockerfile).unwrap();
        std::fs::write(context.join("a.txt"), "a\n").unwrap();
        let store = Store::open(dir.path().join("store")).unwrap();
        Bench {
            _dir: dir,
            store,
            context,
            runtime: tokio::runtime::Runtime::new().unwrap(),
            executor: Arc::new(FakeExecutor::default()),
        }
    }

    fn build(
        &self,
        tweak: impl FnOnce(&mut BuildOptions),
    ) -> (Result<BuildResult, BuildError>, Vec<String>) {
        let text = std::fs::read_to_string(self.context.join("Dockerfile")).unwrap();
        let df = hoist_dockerfile::load(&text).unwrap();
        let mut opts = BuildOptions::new(self.context.clone(), self.runtime.handle().clone());
        // Never started: the fake runs the steps.
        opts.sandbox = Some(Path::new("/nonexistent/hoist").to_path_buf());
        opts.executor = Some(self.executor.clone());
        tweak(&mut opts);
        let resolver = BaseResolver {
            store: &self.store,
            client: None,
            always_pull: false,
            lazy: false,
        };
        let events = Events::default();
        let r = hoist_engine::executor::build(&self.store, resolver, &df, &opts, &events);
        (r, events.0.into_inner().unwrap())
    }

    fn calls(&self) -> usize {
        self.executor.calls.load(Ordering::SeqCst)
    }
}

#[test]
fn a_run_step_is_the_executors_upper_dir_as_a_layer_and_cached_after() {
    let bench = Bench::new("FROM scratch\nENV E=1\nWORKDIR /w\nRUN make it\nCOPY a.txt /a.txt\n");
    let (first, events) = bench.build(|_| {});
    let first = first.unwrap();
    assert_eq!(bench.calls(), 1);
    assert!(
        events.contains(&"output fake output".to_string()),
        "{events:?}"
    );
    let req = bench.executor.seen.lock().unwrap()[0].clone();
    assert_eq!(req.args, ["/bin/sh", "-c", "make it"]);
    assert_eq!(req.cwd, "/w");
    assert!(req.env.contains(&"E=1".to_string()), "{:?}", req.env);
    // scratch, WORKDIR's /w, RUN's /made, COPY's /a.txt.
    assert_eq!(first.manifest.value().layers.len(), 3);
    let history: Vec<String> = first
        .config
        .value()
        .history
        .iter()
        .map(|h| h.created_by.clone().unwrap_or_default())
        .collect();
    assert_eq!(
        history,
        [
            "ENV E=1",
            "WORKDIR /w",
            "RUN /bin/sh -c make it # buildkit",
            "COPY a.txt /a.txt # buildkit"
        ]
    );
    // The same build again: every step from the cache, nothing run, the
    // same image.
    let (second, events) = bench.build(|_| {});
    let second = second.unwrap();
    assert_eq!(bench.calls(), 1, "{events:?}");
    assert_eq!(second.manifest.digest(), first.manifest.digest());
    assert_eq!(
        events.iter().filter(|e| *e == "cached").count(),
        2,
        "{events:?}"
    );
    // --no-cache runs it again.
    let (third, _) = bench.build(|o| o.no_cache = true);
    third.unwrap();
    assert_eq!(bench.calls(), 2);
}

#[test]
fn a_failing_step_is_an_error_at_its_line_and_later_steps_do_not_run() {
    let bench = Bench::new("FROM scratch\nRUN ok\nRUN please fail\nRUN never\n");
    let (r, events) = bench.build(|_| {});
    match r {
        Err(BuildError::At { at, source }) => {
            assert_eq!(
                (at.range.line, at.range.column, at.range.end_line),
                (3, 1, 3)
            );
            assert_eq!(at.step.as_deref(), Some("[stage-0] RUN please fail"));
            assert!(
                matches!(*source, BuildError::RunFailed { code: 3, .. }),
                "{source:?}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(bench.calls(), 2);
    assert!(!events.iter().any(|e| e.contains("never")), "{events:?}");
}

#[test]
fn a_cancelled_build_starts_no_step() {
    let bench = Bench::new("FROM scratch\nRUN one\n");
    let (r, _) = bench.build(|o| o.cancel.cancel());
    assert!(
        matches!(r, Err(BuildError::Run(ref m)) if m == "cancelled"),
        "{r:?}"
    );
    assert_eq!(bench.calls(), 0);
}

#[test]
fn identical_steps_of_two_stages_run_once() {
    // Two stages with the same first step (same key): one runs, the
    // other waits for it and hits its record.
    let bench = Bench::new(
        "FROM scratch AS a\nRUN same\nFROM scratch AS b\nRUN same\nFROM scratch\nCOPY --from=a /made /a\nCOPY --from=b /made /b\n",
    );
    let (r, events) = bench.build(|_| {});
    r.unwrap();
    assert_eq!(bench.calls(), 1, "{events:?}");
}
