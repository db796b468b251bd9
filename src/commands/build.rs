//! `hoist build`: flags spelled as `docker buildx build`. With no `-o`
//! the image goes into the local store under its tags, as `docker build`
//! loads into docker.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context as _, Result};
use hoist_engine::executor::{BuildEvent, BuildOptions, BuildProgress};
use hoist_engine::export::OutputSpec;
use hoist_engine::request::{BuildRequest, Notice, Output, Report, RequestError};
use hoist_engine::store::Store;

use super::registry::{RegistryArgs, runtime};
use super::{build_flags, build_input, input};

#[derive(clap::Args)]
pub struct BuildArgs {
    /// The build context directory; `-` reads stdin: a tar of the context
    /// (plain, gzip or zstd), or a Dockerfile alone (no context).
    #[arg(default_value = ".")]
    context: PathBuf,
    /// The Dockerfile (default: CONTEXT/Dockerfile, else CONTEXT/dockerfile;
    /// `-` for stdin).
    #[arg(short = 'f', long = "file")]
    file: Option<String>,
    /// Name and tag the image; repeatable.
    #[arg(short = 't', long = "tag")]
    tags: Vec<String>,
    /// The stage to build (default: the last one).
    #[arg(long)]
    target: Option<String>,
    /// Set a build-time variable (`ARG`); `K` alone takes the value of
    /// the environment variable K. Repeatable.
    #[arg(long = "build-arg", value_name = "K=V")]
    build_args: Vec<String>,
    /// Set a label on the image; repeatable.
    #[arg(long = "label", value_name = "K=V")]
    labels: Vec<String>,
    /// Add an OCI annotation: `KEY=VALUE` on the manifest, or
    /// `[manifest|manifest-descriptor][\[PLATFORM\]]:KEY=VALUE` (buildx syntax;
    /// index types need a multi-platform image). Repeatable.
    #[arg(long = "annotation", value_name = "[TYPE:]K=V")]
    annotations: Vec<String>,
    /// Do not use the build cache: every step runs.
    #[arg(long)]
    no_cache: bool,
    /// Do not use the build cache for these stages (`AS` names,
    /// comma-separated or repeated): their steps run again, others may hit.
    #[arg(long = "no-cache-filter", value_name = "STAGE", value_delimiter = ',')]
    no_cache_filter: Vec<String>,
    /// Always pull base images, even when the store has them.
    #[arg(long)]
    pull: bool,
    /// The target platform (`os/arch[/variant]`, one per build). A base
    /// image index without it is an error naming the platforms it has; a
    /// single-platform base of another architecture is used with
    /// BuildKit's InvalidBaseImagePlatform warning.
    #[arg(long)]
    platform: Option<String>,
    /// Provenance attestation (buildx's flag): `false` (or `0`) is
    /// accepted, as CI scripts pass it; hoist attaches none yet.
    #[arg(long, value_name = "false")]
    provenance: Option<String>,
    /// SBOM attestation (buildx's flag): `false` (or `0`) is accepted, as
    /// CI scripts pass it; hoist attaches none yet.
    #[arg(long, value_name = "false")]
    sbom: Option<String>,
    /// Run a frontend method instead of building (buildx's flag):
    /// `build` (default), `outline` (the target's build args, secrets and
    /// ssh), `targets` (the stages), `subrequests.describe`; add
    /// `,format=json` for BuildKit's JSON.
    #[arg(long, value_name = "METHOD[,format=json]", default_value = "build")]
    call: String,
    /// Outputs in `docker buildx` syntax; repeatable.
    #[arg(short = 'o', long = "output", value_name = "SPEC")]
    outputs: Vec<String>,
    /// Push the tagged image (`--output type=image,push=true`).
    #[arg(long)]
    push: bool,
    /// Load the image into the local Docker engine, else Podman's
    /// (`--output type=docker`): DOCKER_HOST, docker's context or
    /// /var/run/docker.sock, then CONTAINER_HOST or podman's socket.
    #[arg(long)]
    load: bool,
    /// Write the image's manifest digest to this file.
    #[arg(long)]
    iidfile: Option<PathBuf>,
    /// Write build metadata (buildx's keys) as JSON to this file.
    #[arg(long)]
    metadata_file: Option<PathBuf>,
    /// How steps are shown (buildx's modes): auto (tty on a terminal, else
    /// plain), tty, plain, rawjson (BuildKit's SolveStatus JSON lines) or
    /// quiet. See docs/progress.md.
    #[arg(long, default_value = "auto")]
    progress: String,
    /// Only print the image digest.
    #[arg(short, long)]
    quiet: bool,
    /// Print why each step missed the cache (and which hit an imported one).
    #[arg(long)]
    explain: bool,
    /// Export the build cache: `type=registry,ref=REF[,mode=min|max]`,
    /// `type=local,dest=DIR` or `type=inline`; `compression=gzip|zstd|uncompressed`,
    /// `cache-mounts=true` (also `RUN --mount=type=cache` contents). Repeatable.
    #[arg(long = "cache-to", value_name = "SPEC")]
    cache_to: Vec<String>,
    /// Import a build cache: `type=registry,ref=REF` (a cache or an image
    /// with an inline cache) or `type=local,src=DIR`. Layers are fetched
    /// only when needed. Repeatable.
    #[arg(long = "cache-from", value_name = "SPEC")]
    cache_from: Vec<String>,
    /// `NAME=DIR`, `NAME=docker-image://REF` or `NAME=oci-layout://DIR[:TAG|@DIGEST]`:
    /// replaces `FROM NAME`, `COPY --from=NAME` and a stage named NAME.
    #[arg(long = "build-context", value_name = "NAME=VALUE")]
    build_contexts: Vec<String>,
    /// A secret for `RUN --mount=type=secret`: `id=ID[,src=FILE|,env=VAR]`
    /// (buildx syntax; never stored, never in the image).
    #[arg(long = "secret", value_name = "id=ID,src=FILE")]
    secrets: Vec<String>,
    /// An ssh agent for `RUN --mount=type=ssh`: `default` ($SSH_AUTH_SOCK)
    /// or `ID=SOCKET`.
    #[arg(long = "ssh", value_name = "default|ID=SOCKET")]
    ssh: Vec<String>,
    /// Memory limit for RUN steps (`512m`, `2g`; needs a writable cgroup).
    #[arg(short = 'm', long, value_name = "BYTES")]
    memory: Option<String>,
    /// CPUs for RUN steps (`1.5`; needs a writable cgroup).
    #[arg(long, value_name = "N")]
    cpus: Option<f64>,
    /// Size of /dev/shm in RUN steps (default 64m).
    #[arg(long = "shm-size", value_name = "BYTES")]
    shm_size: Option<String>,
    /// `NAME=SOFT[:HARD]` resource limits for RUN steps (`nofile=1024:2048`).
    #[arg(long = "ulimit", value_name = "NAME=SOFT[:HARD]")]
    ulimits: Vec<String>,
    /// The network for RUN steps: default (a network namespace per step with
    /// outbound access through pasta or slirp4netns), none (loopback only) or
    /// host (needs --allow network.host). See docs/network.md.
    #[arg(long)]
    network: Option<String>,
    /// Grant an entitlement (buildx's flag): network.host lets `--network
    /// host` and `RUN --network=host` share the host's network;
    /// security.insecure lets `RUN --security=insecure` run without the
    /// seccomp filter and with every capability.
    #[arg(long = "allow", value_name = "ENTITLEMENT")]
    allow: Vec<String>,
    /// Add a line to RUN steps' /etc/hosts: `HOST:IP` or `HOST=IP`;
    /// repeatable (never in the image).
    #[arg(long = "add-host", value_name = "HOST:IP")]
    add_hosts: Vec<String>,
    /// How RUN steps are isolated: auto (the strongest this host allows),
    /// oci, rootless or chroot (Buildah's names; see docs/rootless.md).
    #[arg(long, value_name = "MODE", default_value = "auto")]
    isolation: hoist_engine::executor::Isolation,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// The front end of the build request: events to the progress view,
/// except the build checks' warnings, kept for after the steps (BuildKit
/// lists them at the end, `-q` included); notices on stderr.
struct Front<'a> {
    view: &'a super::progress::View,
    mode: &'a str,
    src: &'a input::Source,
    quiet: bool,
    found: std::sync::Mutex<Vec<hoist_dockerfile::Warning>>,
}

impl Front<'_> {
    /// The warnings kept so far, said once.
    fn warn(&self) {
        if let Ok(mut found) = self.found.lock() {
            super::progress::warn(self.mode, self.src, &std::mem::take(&mut *found));
        }
    }
}

impl BuildProgress for Front<'_> {
    fn event(&self, e: BuildEvent) {
        match e {
            BuildEvent::Warning(w) => {
                if let Ok(mut found) = self.found.lock() {
                    found.push(w);
                }
            }
            other => self.view.event(other),
        }
    }
}

impl Report for Front<'_> {
    fn notice(&self, notice: Notice) {
        if let Notice::StepsDone = notice {
            self.view.finish(None);
            self.warn();
        } else {
            super::notices::print(notice, self.quiet);
        }
    }

    fn stdout(&self) -> std::io::Result<Box<dyn std::io::Write + '_>> {
        super::notices::stdout()
    }
}

pub fn run(store: &Store, mut args: BuildArgs) -> Result<()> {
    let cancel = hoist_engine::ops::run::Cancel::new();
    cancel_on_signals(cancel.clone())?;
    // One lease from the first look at the store (a stdin context in tmp/,
    // imported caches, base images and cache hits resolved) until the
    // names are set and the outputs written: a `prune` meanwhile waits,
    // so nothing the build reuses or made goes before it is named (an
    // `rmi` of its base is then harmless), and `prune --all` keeps the
    // names it set (`Store::gc`).
    let _lease = store.lease()?;
    // Flags not given take the config file's [build] defaults.
    crate::config_file::apply_build_defaults(&mut args.platform, &mut args.network)?;
    for (flag, value) in [("--provenance", &args.provenance), ("--sbom", &args.sbom)] {
        if let Some(v) = value
            && !matches!(v.trim().to_ascii_lowercase().as_str(), "false" | "0")
        {
            anyhow::bail!(
                "{flag}={v}: hoist attaches no attestations yet; pass {flag}=false or leave it out"
            );
        }
    }
    let given = build_input::read(store, args.context.clone(), args.file.take())?;
    let _stdin_context = given.scratch;
    let (src, dockerfile_path) = (given.src, given.dockerfile);
    args.context = given.context;
    let ast = hoist_dockerfile::parse(&src.text).map_err(|e| src.error(e))?;
    let mode = if args.quiet {
        "quiet"
    } else {
        args.progress.as_str()
    };
    super::progress::warn(mode, &src, &ast.warnings);
    let df = hoist_dockerfile::Dockerfile::from_ast(&ast).map_err(|e| src.error(e))?;
    let build_args = input::build_args(&args.build_args)?;
    let mut front = hoist_dockerfile::BuildOptions {
        build_args,
        target: args.target.clone(),
        ..Default::default()
    };
    if let Some(p) = &args.platform {
        front.target_platform = hoist_dockerfile::Platform::parse(p).map_err(anyhow::Error::msg)?;
    }
    if let Some(call) = super::call::parse(&args.call)? {
        let out =
            super::call::answer(&call, &src.text, &ast, &df, &front).map_err(|e| src.error(e))?;
        print!("{out}");
        return Ok(());
    }
    let source_date_epoch = build_flags::source_date_epoch(&df, &mut front, &|e| src.error(e))?;
    let labels = args
        .labels
        .iter()
        .map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| anyhow::anyhow!("invalid --label {l:?}: expected K=V"))
        })
        .collect::<Result<BTreeMap<_, _>>>()?;
    let cache_to = super::build_cache::exports(&args.cache_to)?;
    // With --no-cache no cache is imported (nor its spec read).
    let cache_from = if args.no_cache {
        Vec::new()
    } else {
        super::build_cache::imports(&args.cache_from)?
    };
    let annotations = super::annotations::parse_flags(&args.annotations)?;
    let (network, entitlements) = crate::network::options(args.network.as_deref(), &args.allow)?;
    let opts = BuildOptions {
        context: args.context.clone(),
        dockerfile: dockerfile_path.clone(),
        front,
        no_cache: args.no_cache,
        labels,
        source_date_epoch,
        // Stored uncompressed, like BuildKit's snapshots; push and `-o`
        // compress on the way out.
        compression: hoist_engine::layer::Compression::None,
        compression_level: None,
        named_contexts: build_flags::named_contexts(&args.build_contexts)?,
        sandbox: Some(std::env::current_exe().context("finding the hoist binary for RUN")?),
        network,
        entitlements,
        secrets: args
            .secrets
            .iter()
            .map(|s| build_flags::parse_secret(s))
            .collect::<Result<_>>()?,
        ssh: args
            .ssh
            .iter()
            .map(|s| build_flags::parse_ssh(s))
            .collect::<Result<_>>()?,
        limits: hoist_engine::executor::RunLimits {
            memory: args
                .memory
                .as_deref()
                .map(|m| build_flags::parse_bytes("--memory", m))
                .transpose()?,
            cpus: args.cpus,
            shm_size: args
                .shm_size
                .as_deref()
                .map(|m| build_flags::parse_bytes("--shm-size", m))
                .transpose()?,
            ulimits: args
                .ulimits
                .iter()
                .map(|u| build_flags::parse_ulimit(u))
                .collect::<Result<_>>()?,
            cgroup: None,
        },
        isolation: args.isolation,
        // Both set by the request from its caches.
        cache_from: Vec::new(),
        inline_cache: false,
        extra_hosts: args
            .add_hosts
            .iter()
            .map(|h| hoist_engine::ops::run::ExtraHost::parse(h).map_err(anyhow::Error::msg))
            .collect::<Result<_>>()?,
        no_cache_filter: args.no_cache_filter.clone(),
        cancel,
        runtime: runtime()?.handle().clone(),
        probe: Default::default(),
        executor: None,
    };
    // An explicit --isolation is checked before anything runs (a build
    // whose steps are all cached fails too); auto is probed by the first RUN.
    if opts.isolation != hoist_engine::executor::Isolation::Auto
        && let Some(exe) = &opts.sandbox
    {
        opts.probe
            .check(exe, &store.root().join("tmp"), opts.isolation)?;
    }
    let client = args.registry.client()?;
    if args.load {
        // buildx: `--load` is `--output type=docker`.
        args.outputs.push("type=docker".to_string());
    }
    let outputs = args
        .outputs
        .iter()
        .map(|raw| {
            Ok(Output {
                raw: raw.clone(),
                spec: OutputSpec::parse(raw)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let request = BuildRequest {
        options: opts,
        dockerfile: df,
        tags: args.tags.clone(),
        outputs,
        annotations,
        push: args.push,
        pull: args.pull,
        cache_from,
        cache_to,
        default_compression: crate::config_file::output_compression(),
        archive_epoch: super::archive::source_date_epoch(),
    };
    let progress_mode = if args.quiet {
        "quiet"
    } else {
        args.progress.as_str()
    };
    let view = super::progress::View::new(progress_mode, args.explain)?;
    let front = Front {
        view: &view,
        mode: progress_mode,
        src: &src,
        // rawjson's stream carries nothing but JSON: no chatter about
        // caches and pushes (the build's own lines are its vertexes).
        quiet: args.quiet || args.progress == "rawjson",
        found: std::sync::Mutex::new(Vec::new()),
    };
    let result = match hoist_engine::request::build(store, &client, request, &front) {
        Ok(result) => result,
        Err(RequestError::Build(e)) => {
            view.finish(Some(&e));
            front.warn();
            return Err(located(&src, e));
        }
        Err(e) => return Err(e.into()),
    };
    let digest = result.digest();
    if let Some(path) = &args.iidfile {
        std::fs::write(path, digest.to_string())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.metadata_file {
        std::fs::write(path, serde_json::to_vec_pretty(&result.metadata)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if args.quiet {
        crate::report::outln!("{digest}");
    } else {
        let mut lines = vec![format!(
            "writing image {digest} done ({} steps run, {} cached)",
            result.executed, result.cached
        )];
        lines.extend(result.names.iter().map(|n| format!("naming to {n} done")));
        lines.extend(super::build_cache::summary(&result));
        view.summary(&lines);
    }
    Ok(())
}

static CANCELLED_BY: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

/// The signal that cancelled the build, if one did (hoist then exits with
/// 128 + it, as a shell would report).
pub fn cancelled_by() -> Option<i32> {
    match CANCELLED_BY.load(std::sync::atomic::Ordering::SeqCst) {
        0 => None,
        sig => Some(sig),
    }
}

/// Ctrl-C or SIGTERM stops the build: running `RUN` steps are killed at
/// once (nothing of theirs survives: see `hoist_engine::ops::run`), the
/// build unwinds and removes its scratch directories, and hoist exits with
/// 128 + the signal. An operation that does not stop within two seconds
/// (a pull, a long COPY) is cut short; what it leaves in the store's `tmp/`
/// is removed by the next `hoist prune`.
fn cancel_on_signals(cancel: hoist_engine::ops::run::Cancel) -> Result<()> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])
        .context("installing the signal handlers")?;
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            CANCELLED_BY.store(sig, std::sync::atomic::Ordering::SeqCst);
            eprintln!("hoist: cancelled");
            cancel.cancel();
            std::thread::sleep(std::time::Duration::from_secs(2));
            std::process::exit(128 + sig);
        }
    });
    Ok(())
}

/// A build error with its place in the Dockerfile: `file:line:col` and the
/// source line for the front end's, `file:line` for a step's.
pub fn located(src: &super::input::Source, e: hoist_engine::executor::BuildError) -> anyhow::Error {
    match e {
        hoist_engine::executor::BuildError::Dockerfile(e) => src.error(e),
        hoist_engine::executor::BuildError::At { at, source } => {
            // The first line of the error names the file and line; the
            // instruction follows whole (continuations and heredocs too,
            // at most ten lines).
            let line = at.range.line;
            let mut out = format!("{}:{line}: {source}", src.name);
            let last = at.range.end_line.max(line).min(line + 9);
            for n in line..=last {
                let text = src.text.lines().nth(n.saturating_sub(1)).unwrap_or("");
                out.push_str(&format!("\n  {n} | {text}"));
            }
            anyhow::anyhow!(out)
        }
        e => anyhow::Error::new(e),
    }
}
