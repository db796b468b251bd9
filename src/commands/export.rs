//! `hoist export IMAGE -o SPEC`: an image from the store to any output
//! `hoist build -o` takes (`docker buildx` syntax): `type=oci`,
//! `type=docker`, `type=local`, `type=tar`, `type=image[,push=true]`.

use std::io::{IsTerminal, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::{Context, Result};
use hoist_engine::export::archive::{ArchiveOptions, ExportImage, write_archive, write_layout_dir};
use hoist_engine::export::filesystem::{export_local, export_tar};
use hoist_engine::export::recompress::recompress_layers;
use hoist_engine::export::{Compression, Dest, OutputKind, OutputSpec};
use hoist_engine::reference::Reference;
use hoist_engine::registry::Progress;
use hoist_engine::store::Store;

use super::archive::source_date_epoch;
use super::images::{lookup, manifest_of, resolve, store_name};
use super::registry::{RegistryArgs, runtime};

#[derive(clap::Args)]
pub struct ExportArgs {
    /// The image in the store.
    image: String,
    /// Where it goes, as `docker buildx build -o` takes it; repeatable.
    #[arg(short, long = "output", value_name = "SPEC", required = true)]
    outputs: Vec<String>,
    #[command(flatten)]
    registry: RegistryArgs,
}

pub fn export(store: &Store, args: ExportArgs) -> Result<()> {
    for raw in &args.outputs {
        let spec = OutputSpec::parse(raw)?;
        run(store, &args.image, &spec, &args.registry)
            .with_context(|| format!("exporting to {raw}"))?;
    }
    Ok(())
}

/// Export one stored image to one output (also used by `hoist build`).
/// An output's `compression=` as the layer code names it.
pub fn layer_compression(c: Compression) -> hoist_engine::layer::Compression {
    match c {
        Compression::Gzip => hoist_engine::layer::Compression::Gzip,
        Compression::Zstd => hoist_engine::layer::Compression::Zstd,
        Compression::Uncompressed => hoist_engine::layer::Compression::None,
    }
}

pub fn run(store: &Store, image: &str, spec: &OutputSpec, registry: &RegistryArgs) -> Result<()> {
    let mut manifest = manifest_of(store, image)?;
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
        anyhow::bail!("compression-level= needs compression= (or force-compression=true)");
    }
    // `annotation…=` options: on the manifest (a new one) and on its
    // descriptor in an archive's index.json.
    let (manifest, annotated, descriptor_annotations) =
        super::annotations::apply(store, manifest, &spec.annotations)?;
    let names = match &spec.name {
        Some(n) => n.split(',').map(store_name).collect::<Result<Vec<_>>>()?,
        // A bare digest or ID (a build without -t) names nothing, as BuildKit.
        None => lookup(store, image)?.name.into_iter().collect(),
    };
    let epoch = source_date_epoch();
    let archive = |oci: bool| ArchiveOptions {
        oci_media_types: spec.oci_media_types.unwrap_or(oci),
        mtime: epoch,
    };
    let img = ExportImage {
        manifest: manifest.clone(),
        names: names.clone(),
        descriptor_annotations,
    };
    match &spec.kind {
        OutputKind::Oci { dest, tar: false } => {
            let Dest::Path(dir) = dest else {
                anyhow::bail!("tar=false needs a directory")
            };
            write_layout_dir(store, &[img], archive(true), dir)?;
        }
        OutputKind::Oci { dest, tar: true } => to_dest(dest, |w| {
            Ok(write_archive(store, &[img], archive(true), w).map(|_| ())?)
        })?,
        OutputKind::Docker { dest } => to_dest(dest, |w| {
            Ok(write_archive(store, &[img], archive(false), w).map(|_| ())?)
        })?,
        OutputKind::Load => super::engine_load::load(store, img)?,
        OutputKind::Local { dest } => report(export_local(store, &manifest, dest)?),
        OutputKind::Tar { dest } => {
            let epoch = (epoch > 0).then_some(epoch as i64);
            to_dest(dest, |w| {
                report(export_tar(store, &manifest, epoch, w)?);
                Ok(())
            })?
        }
        OutputKind::Image {
            names: targets,
            push,
        } => {
            // Recompressed (compression=) or not, this is the manifest to name.
            let (digest, media_type) =
                if spec.compression.is_some() || spec.force_compression || annotated {
                    (
                        manifest.digest().clone(),
                        manifest.value().media_type().to_string(),
                    )
                } else {
                    resolve(store, image)?
                };
            for t in targets {
                let full = store_name(t)?;
                store.set_ref(&full, &digest, Some(&media_type))?;
                if *push {
                    let dest = Reference::parse(&full)?;
                    let client = registry.client()?;
                    runtime()?.block_on(hoist_engine::transfer::push(
                        &client,
                        store,
                        &full,
                        &dest,
                        &Progress::none(),
                    ))?;
                }
            }
        }
    }
    Ok(())
}

fn report(warnings: Vec<hoist_engine::layer::UnpackWarning>) {
    for w in warnings {
        eprintln!("warning: {w:?}");
    }
}

/// Write to a file (through a temp name, renamed when complete) or stdout.
fn to_dest(dest: &Dest, f: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    match dest {
        Dest::Stdout => {
            let stdout = std::io::stdout();
            if stdout.is_terminal() {
                anyhow::bail!(
                    "refusing to write a tarball to a terminal; use dest=FILE or redirect"
                );
            }
            let mut out = std::io::BufWriter::new(stdout.lock());
            f(&mut out)?;
            out.flush()?;
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

fn write_atomically(path: &Path, f: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".hoist-export-")
        .tempfile_in(dir)
        .with_context(|| format!("creating a file in {}", dir.display()))?;
    {
        let mut w = std::io::BufWriter::new(tmp.as_file_mut());
        f(&mut w)?;
        w.flush()?;
    }
    // A file of the user's, as `docker save -o` makes it: 0666 less the
    // umask (the temp file was made 0600).
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o666 & !umask()))?;
    tmp.as_file().sync_all()?;
    tmp.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}
