//! One image to one output (`-o`, buildx's exporters): an OCI layout (tar
//! or directory), a `docker save` tarball, the local Docker or Podman
//! engine (`load`), the image's files (`local`, `tar`), or names in the
//! store (`image`, pushed with `push=true`). `hoist export` uses it too.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::{Notice, Report, RequestError};
use crate::digest::Digest;
use crate::export::annotation::{self, Annotation, Kind};
use crate::export::archive::{ArchiveOptions, ExportImage, write_archive, write_layout_dir};
use crate::export::filesystem::{export_local, export_tar};
use crate::export::recompress::recompress_layers;
use crate::export::{Compression, Dest, OutputKind, OutputSpec};
use crate::image::{Manifest, Raw};
use crate::reference::Reference;
use crate::registry::Client;
use crate::store::Store;

/// The image an output writes.
pub struct Source {
    /// The single-platform manifest.
    pub manifest: Raw<Manifest>,
    /// The name an archive gives it when the output names none (a build's
    /// first tag; none for a bare digest, as BuildKit).
    pub name: Option<String>,
    /// What a name set by `type=image` points at when the output changes
    /// nothing (the stored image: an index stays one); `None`: the manifest.
    pub stored: Option<(Digest, String)>,
}

/// Where outputs push and how archives are stamped.
pub struct Context<'a> {
    pub client: Option<&'a Client>,
    pub runtime: &'a crate::runtime::Handle,
    /// `SOURCE_DATE_EPOCH` for archive entries (0: none).
    pub epoch: u64,
}

/// An output's `compression=` as the layer code names it.
pub fn layer_compression(c: Compression) -> crate::layer::Compression {
    match c {
        Compression::Gzip => crate::layer::Compression::Gzip,
        Compression::Zstd => crate::layer::Compression::Zstd,
        Compression::Uncompressed => crate::layer::Compression::None,
    }
}

/// A tag as the store names it (`busybox` → `docker.io/library/busybox:latest`).
pub fn store_name(user: &str) -> Result<String, RequestError> {
    Ok(Reference::parse(user)
        .map_err(|source| RequestError::Name {
            name: user.to_string(),
            source,
        })?
        .to_string())
}

/// BuildKit's exporters gzip layers unless told otherwise; hoist's store
/// keeps built layers uncompressed, so image outputs get `default` here
/// (gzip, or the configuration file's `[build] compression`).
pub fn with_default_compression(mut spec: OutputSpec, default: Compression) -> OutputSpec {
    let wants = matches!(
        spec.kind,
        OutputKind::Oci { .. }
            | OutputKind::Docker { .. }
            | OutputKind::Load
            | OutputKind::Image { push: true, .. }
    );
    if wants && spec.compression.is_none() {
        spec.compression = Some(default);
    }
    spec
}

/// The compression of the image a build makes: the first image-type
/// output's `compression=` (and `compression-level=`), else `default`.
pub fn image_compression<'a>(
    outputs: impl Iterator<Item = &'a OutputSpec>,
    default: Compression,
) -> (Compression, Option<i32>) {
    for spec in outputs {
        let image = matches!(
            spec.kind,
            OutputKind::Oci { .. }
                | OutputKind::Docker { .. }
                | OutputKind::Load
                | OutputKind::Image { .. }
        );
        if image && let Some(c) = spec.compression {
            return (c, spec.compression_level);
        }
    }
    (default, None)
}

/// A manifest with its annotations.
pub struct Annotated {
    /// The manifest with its annotations added (stored when that changed it).
    pub manifest: Raw<Manifest>,
    /// Whether that changed it.
    pub changed: bool,
    /// The annotations for its descriptor (`manifest-descriptor:`).
    pub descriptor: BTreeMap<String, String>,
}

/// Add `annotations` to `manifest`.
pub fn annotate(
    store: &Store,
    manifest: Raw<Manifest>,
    annotations: &[Annotation],
) -> Result<Annotated, RequestError> {
    if annotations.is_empty() {
        return Ok(Annotated {
            manifest,
            changed: false,
            descriptor: BTreeMap::new(),
        });
    }
    annotation::check_single_platform(annotations).map_err(RequestError::Annotation)?;
    let platform = platform_of(store, &manifest)?;
    let on_manifest = annotation::select(annotations, Kind::Manifest, &platform);
    let annotated = annotation::annotate_manifest(store, &manifest, &on_manifest)?;
    let changed = annotated.digest() != manifest.digest();
    let on_descriptor = annotation::select(annotations, Kind::ManifestDescriptor, &platform);
    Ok(Annotated {
        manifest: annotated,
        changed,
        descriptor: on_descriptor,
    })
}

/// `os/arch[/variant]` from the image's config.
fn platform_of(store: &Store, manifest: &Raw<Manifest>) -> Result<String, RequestError> {
    let bytes = store.read_blob_verified(&manifest.value().config.digest)?;
    let config: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|source| RequestError::Config {
            digest: manifest.value().config.digest.clone(),
            source,
        })?;
    let field = |k: &str| config.get(k).and_then(|v| v.as_str()).unwrap_or("");
    let mut p = format!("{}/{}", field("os"), field("architecture"));
    if !field("variant").is_empty() {
        p.push('/');
        p.push_str(field("variant"));
    }
    Ok(p)
}

/// Write `image` to the output `spec`.
pub fn export(
    store: &Store,
    cx: &Context<'_>,
    image: &Source,
    spec: &OutputSpec,
    report: &dyn Report,
) -> Result<(), RequestError> {
    let mut manifest = image.manifest.clone();
    if spec.compression.is_some() || spec.force_compression {
        let to = layer_compression(spec.compression.unwrap_or(Compression::Gzip));
        manifest = recompress_layers(
            store,
            &manifest,
            to,
            spec.compression_level,
            spec.force_compression,
        )?;
    } else if spec.compression_level.is_some() {
        return Err(RequestError::LevelWithoutCompression);
    }
    // `annotation…=` options: on the manifest (a new one) and on its
    // descriptor in an archive's index.json.
    let Annotated {
        manifest,
        changed: annotated,
        descriptor: descriptor_annotations,
    } = annotate(store, manifest, &spec.annotations)?;
    let names = match &spec.name {
        Some(n) => n
            .split(',')
            .map(store_name)
            .collect::<Result<Vec<_>, _>>()?,
        None => image.name.iter().cloned().collect(),
    };
    let archive = |oci: bool| ArchiveOptions {
        oci_media_types: spec.oci_media_types.unwrap_or(oci),
        mtime: cx.epoch,
    };
    let img = ExportImage {
        manifest: manifest.clone(),
        names: names.clone(),
        descriptor_annotations,
    };
    let warn = |warnings: Vec<crate::layer::UnpackWarning>| {
        for w in warnings {
            report.notice(Notice::UnpackWarning(w));
        }
    };
    match &spec.kind {
        OutputKind::Oci { dest, tar: false } => {
            let Dest::Path(dir) = dest else {
                return Err(RequestError::LayoutNeedsDir);
            };
            write_layout_dir(store, &[img], archive(true), dir)?;
        }
        OutputKind::Oci { dest, tar: true } => to_dest(dest, report, |w| {
            write_archive(store, &[img], archive(true), w)?;
            Ok(())
        })?,
        OutputKind::Docker { dest } => to_dest(dest, report, |w| {
            write_archive(store, &[img], archive(false), w)?;
            Ok(())
        })?,
        OutputKind::Load => {
            let (engine, loaded) = super::load::load(store, cx.runtime, img, cx.epoch)?;
            report.notice(Notice::Loaded {
                engine,
                lines: loaded.lines,
            });
        }
        OutputKind::Local { dest } => warn(export_local(store, &manifest, dest)?),
        OutputKind::Tar { dest } => {
            let epoch = (cx.epoch > 0).then_some(cx.epoch as i64);
            to_dest(dest, report, |w| {
                warn(export_tar(store, &manifest, epoch, w)?);
                Ok(())
            })?
        }
        OutputKind::Image {
            names: targets,
            push,
        } => {
            // Recompressed (compression=) or not, this is the manifest to name.
            let (digest, media_type) = match &image.stored {
                Some(stored)
                    if !(spec.compression.is_some() || spec.force_compression || annotated) =>
                {
                    stored.clone()
                }
                _ => (
                    manifest.digest().clone(),
                    manifest.value().media_type().to_string(),
                ),
            };
            for t in targets {
                let full = store_name(t)?;
                store.set_ref(&full, &digest, Some(&media_type))?;
                if *push {
                    super::push::push_name(store, cx, &full)?;
                }
            }
        }
    }
    Ok(())
}

/// Write to a file (through a temp name, renamed when complete) or the
/// front end's standard output.
fn to_dest(
    dest: &Dest,
    report: &dyn Report,
    f: impl FnOnce(&mut dyn Write) -> Result<(), RequestError>,
) -> Result<(), RequestError> {
    match dest {
        Dest::Stdout => {
            let mut out = report.stdout().map_err(RequestError::Stdout)?;
            f(&mut out)?;
            out.flush().map_err(RequestError::Stdout)?;
        }
        Dest::Path(path) => write_atomically(path, f)?,
    }
    Ok(())
}

/// The process's umask, read from `/proc/self/status` (setting it to read
/// it would race with other threads); `022` where that is not there.
fn umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        })
        .unwrap_or(0o022)
}

fn write_atomically(
    path: &Path,
    f: impl FnOnce(&mut dyn Write) -> Result<(), RequestError>,
) -> Result<(), RequestError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let io = |what: &'static str, p: &Path| {
        let path = p.display().to_string();
        move |source| RequestError::Io { what, path, source }
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".hoist-export-")
        .tempfile_in(dir)
        .map_err(io("creating a file in", dir))?;
    {
        let mut w = std::io::BufWriter::new(tmp.as_file_mut());
        f(&mut w)?;
        w.flush().map_err(io("writing", path))?;
    }
    // A file of the user's, as `docker save -o` makes it: 0666 less the
    // umask (the temp file was made 0600).
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o666 & !umask()))
        .map_err(io("setting the mode of", path))?;
    tmp.as_file().sync_all().map_err(io("writing", path))?;
    tmp.persist(path).map_err(|e| RequestError::Io {
        what: "writing",
        path: path.display().to_string(),
        source: e.error,
    })?;
    Ok(())
}
