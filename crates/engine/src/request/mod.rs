//! A whole build as a front end asks for it (`hoist build`'s flags as
//! values): import caches, resolve base images, build the image
//! (`crate::executor::build`), fetch the layers a name or output needs,
//! make the one manifest (compressed once, annotated), set its names,
//! write its outputs, push it, export the cache, and say what was done
//! ([`BuildResult`]: the digest, the names, `--metadata-file`'s JSON).
//!
//! - [`outputs`]: one image to one `-o` output (also `hoist export`);
//! - [`load`]: `--load`, into the local Docker or Podman engine;
//! - [`push`]: `--push`, lazily when layers are only in an imported cache;
//! - [`cache`]: `--cache-from` before, `--cache-to` after;
//! - [`metadata`]: `--metadata-file`'s keys (buildx's).
//!
//! Nothing here prints: build events go to the front end's
//! [`BuildProgress`], everything else it may want to say as a [`Notice`].

pub mod cache;
mod error;
pub mod load;
pub mod metadata;
pub mod outputs;
pub mod push;

use std::io::Write;

pub use error::RequestError;

use crate::cache::{CacheSpec, ExportReport};
use crate::digest::Digest;
use crate::executor::base::BaseResolver;
use crate::executor::{BuildOptions, BuildProgress};
use crate::export::annotation::Annotation;
use crate::export::{Compression, OutputKind, OutputSpec};
use crate::image::{Manifest, Raw, media_types};
use crate::registry::Client;
use crate::store::Store;

/// One `-o` output: its spec as given (for errors) and parsed.
#[derive(Debug, Clone)]
pub struct Output {
    pub raw: String,
    pub spec: OutputSpec,
}

/// What a build is asked to make and where its image goes.
pub struct BuildRequest {
    /// The build itself (context, args, target, platform, RUN's limits…);
    /// `cache_from` and `inline_cache` are set from the fields below.
    pub options: BuildOptions,
    /// The Dockerfile, parsed and typed by the caller.
    pub dockerfile: hoist_dockerfile::Dockerfile,
    /// `-t`: names in the store (and pushed with `push`), as given.
    pub tags: Vec<String>,
    /// `-o` outputs (`--load` is `type=docker`), in order.
    pub outputs: Vec<Output>,
    /// `--annotation`s: on the manifest, and handed to every image output.
    pub annotations: Vec<Annotation>,
    /// `--push`: push every tag.
    pub push: bool,
    /// `--pull`: always ask the registry for base images.
    pub pull: bool,
    /// `--cache-from`.
    pub cache_from: Vec<CacheSpec>,
    /// `--cache-to` (a `type=inline` one writes records into the image config).
    pub cache_to: Vec<CacheSpec>,
    /// The layer compression of image outputs that name none (gzip, or
    /// the configuration file's `[build] compression`).
    pub default_compression: Compression,
    /// `SOURCE_DATE_EPOCH` for archive outputs' entries (0: none).
    pub archive_epoch: u64,
}

impl BuildRequest {
    /// A build of `dockerfile` with `options` that only makes the image
    /// in the store (no names, outputs, pushes or caches), image outputs
    /// gzip unless told, archives unstamped.
    pub fn new(options: BuildOptions, dockerfile: hoist_dockerfile::Dockerfile) -> BuildRequest {
        BuildRequest {
            options,
            dockerfile,
            tags: Vec::new(),
            outputs: Vec::new(),
            annotations: Vec::new(),
            push: false,
            pull: false,
            cache_from: Vec::new(),
            cache_to: Vec::new(),
            default_compression: Compression::Gzip,
            archive_epoch: 0,
        }
    }
}

/// What the front end is told besides build events.
#[derive(Debug)]
pub enum Notice {
    /// A `--cache-from` was read.
    CacheImported { name: String, records: usize },
    /// A `--cache-from` could not be read: the build goes on without it.
    CacheUnreadable(crate::cache::CacheError),
    /// The build's steps are over and made an image (progress views end
    /// here; outputs follow).
    StepsDone,
    /// `--push` of a name done.
    Pushed { name: String, digest: Digest },
    /// `--push` done without fetching the layers an imported cache has.
    PushedLazily {
        name: String,
        report: crate::transfer::PushReport,
    },
    /// An engine loaded the image (`--load`): its name and what it said.
    Loaded { engine: String, lines: Vec<String> },
    /// A file the `local`/`tar` output could not write as the image has it.
    UnpackWarning(crate::layer::UnpackWarning),
    /// A `--cache-to` written.
    CacheExported { cache: String, report: ExportReport },
}

/// The front end of a build request: build events (its progress view),
/// notices, and its standard output (`dest=-`).
pub trait Report: BuildProgress {
    fn notice(&self, notice: Notice);
    /// Where an output with `dest=-` writes (an error refuses it, e.g. on
    /// a terminal).
    fn stdout(&self) -> std::io::Result<Box<dyn Write + '_>>;
}

/// What a build did.
#[derive(Debug)]
pub struct BuildResult {
    /// The image: its layers compressed once and annotated; every name,
    /// output and push is this manifest.
    pub manifest: Raw<Manifest>,
    /// The image config's digest (docker's image ID).
    pub config: Digest,
    /// The names set in the store (none when pushed lazily).
    pub names: Vec<String>,
    /// `--metadata-file`'s JSON (buildx's keys).
    pub metadata: serde_json::Value,
    /// Steps run, answered from the cache, and answered by an imported one.
    pub executed: usize,
    pub cached: usize,
    pub imported: usize,
    /// Blobs and bytes fetched from imported caches; `None` without one.
    pub fetched: Option<(u64, u64)>,
}

impl BuildResult {
    /// The manifest's digest (what `--iidfile` holds and `-q` prints).
    pub fn digest(&self) -> &Digest {
        self.manifest.digest()
    }
}

/// Run a build request: see the module's doc for the order of things.
pub fn build(
    store: &Store,
    client: &Client,
    request: BuildRequest,
    report: &dyn Report,
) -> Result<BuildResult, RequestError> {
    let BuildRequest {
        mut options,
        dockerfile,
        tags,
        outputs,
        annotations,
        push,
        pull,
        cache_from,
        cache_to,
        default_compression,
        archive_epoch,
    } = request;
    let _lease = store.lease()?;
    let runtime = options.runtime.clone();
    let (inline, cache_to): (Vec<_>, Vec<_>) = cache_to
        .into_iter()
        .partition(|s| s.location == crate::cache::Location::Inline);
    options.inline_cache = !inline.is_empty();
    let platform = {
        let p = &options.front.target_platform;
        let variant = (!p.variant.is_empty()).then_some(p.variant.as_str());
        crate::image::Platform::new(&p.os, &p.architecture, variant)
    };
    options.cache_from = if options.no_cache {
        Vec::new()
    } else {
        cache::import_all(store, client, &cache_from, &platform, &runtime, report)
    };
    if outputs.iter().any(|o| o.spec.kind == OutputKind::Load) {
        load::find(&runtime).map_err(|e| RequestError::Load(Box::new(e)))?;
    }
    let resolver = BaseResolver {
        store,
        client: Some((client, &runtime)),
        always_pull: pull,
        // With an imported cache every step may hit: base images are then
        // resolved without their layers, fetched only if a step reads them.
        lazy: !options.cache_from.is_empty(),
    };
    let built = crate::executor::build(store, resolver, &dockerfile, &options, report)?;
    report.notice(Notice::StepsDone);
    if push && tags.is_empty() {
        return Err(RequestError::TagNeeded);
    }
    let outputs: Vec<Output> = outputs
        .into_iter()
        .map(|mut o| {
            o.spec = outputs::with_default_compression(o.spec, default_compression);
            // buildx hands `--annotation`s to every image exporter.
            if !matches!(
                o.spec.kind,
                OutputKind::Local { .. } | OutputKind::Tar { .. }
            ) {
                o.spec.annotations.extend(annotations.iter().cloned());
            }
            o
        })
        .collect();
    // `--push` alone of an image with layers only in an imported cache:
    // pushed without fetching them, not named locally.
    let pushed_lazily = push && outputs.is_empty() && cache::unfetched(store, &built.manifest)? > 0;
    if !pushed_lazily && (!tags.is_empty() || !outputs.is_empty()) {
        cache::fetch_layers(store, &built.manifest)?;
    }
    // The image this build makes: its layers compressed once, as
    // BuildKit's exporter does (gzip, or the first image output's
    // `compression=`). Every name, output, push, printed digest, iidfile
    // and metadata file is this one manifest; the uncompressed layers stay
    // the store's snapshot form (and a second compression is a memo hit).
    let (to, level) =
        outputs::image_compression(outputs.iter().map(|o| &o.spec), default_compression);
    let manifest = crate::export::recompress::recompress_layers(
        store,
        &built.manifest,
        outputs::layer_compression(to),
        level,
        false,
    )?;
    // Annotations on the manifest: this one image's, so every name,
    // output and printed digest is the annotated manifest.
    let all_annotations: Vec<_> = annotations
        .iter()
        .chain(outputs.iter().flat_map(|o| o.spec.annotations.iter()))
        .cloned()
        .collect();
    let outputs::Annotated {
        manifest,
        descriptor: descriptor_annotations,
        ..
    } = outputs::annotate(store, manifest, &all_annotations)?;
    let digest = manifest.digest().clone();
    let cx = outputs::Context {
        client: Some(client),
        runtime: &runtime,
        epoch: archive_epoch,
    };
    let full_tags = tags
        .iter()
        .map(|t| outputs::store_name(t))
        .collect::<Result<Vec<_>, _>>();
    if pushed_lazily {
        push::push_lazily(store, &cx, &manifest, &full_tags?, report)?;
    }
    let mut names = Vec::new();
    if !pushed_lazily {
        for t in &tags {
            let full = outputs::store_name(t)?;
            store.set_ref(&full, &digest, Some(media_types::OCI_MANIFEST))?;
            names.push(full);
        }
    }
    let source = outputs::Source {
        manifest: manifest.clone(),
        name: names.first().cloned(),
        stored: None,
    };
    for o in &outputs {
        outputs::export(store, &cx, &source, &o.spec, report).map_err(|e| {
            RequestError::Output {
                output: o.raw.clone(),
                source: Box::new(e),
            }
        })?;
    }
    if push && !pushed_lazily {
        for name in &names {
            let mut spec = OutputSpec::parse(&format!("type=image,name={name},push=true"))
                .map_err(|e| RequestError::Spec(e.to_string()))?;
            (spec.compression, spec.compression_level) = (Some(to), level);
            outputs::export(store, &cx, &source, &spec, report)?;
            report.notice(Notice::Pushed {
                name: name.clone(),
                digest: digest.clone(),
            });
        }
    }
    cache::export_all(store, client, &cache_to, &built.cache, &runtime, report)?;
    let metadata = metadata::value(
        &manifest,
        built.config.digest(),
        descriptor_annotations,
        &names,
    );
    Ok(BuildResult {
        config: built.config.digest().clone(),
        fetched: (!options.cache_from.is_empty()).then(|| cache::fetched(&options.cache_from)),
        manifest,
        names,
        metadata,
        executed: built.executed,
        cached: built.cached,
        imported: built.imported,
    })
}
