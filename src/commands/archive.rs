//! `hoist save` and `hoist load`: image tarballs in and out of the store,
//! with the same code as `hoist build -o type=oci|docker`.

use std::io::IsTerminal;

use anyhow::{Context, Result};
use hoist_engine::export::archive::{ArchiveOptions, ExportImage, write_archive};
use hoist_engine::import::archive::load_archive;
use hoist_engine::store::Store;

use super::images::{lookup, manifest_of};

#[derive(clap::Args)]
pub struct SaveArgs {
    /// Write to this file instead of stdout.
    #[arg(short, long)]
    output: Option<String>,
    /// `oci` (OCI media types) or `docker` (Docker schema2); both carry
    /// Docker's manifest.json and the OCI index.
    #[arg(long, default_value = "oci")]
    format: String,
    #[arg(required = true)]
    images: Vec<String>,
}

pub fn save(store: &Store, args: SaveArgs) -> Result<()> {
    let oci_media_types = match args.format.as_str() {
        "oci" => true,
        "docker" => false,
        other => anyhow::bail!("unknown --format {other:?} (oci or docker)"),
    };
    let mut images = Vec::new();
    for name in &args.images {
        let manifest = manifest_of(store, name)?;
        // An image given by ID or digest is saved without a name, as docker.
        let names = lookup(store, name)?.name.into_iter().collect();
        images.push(ExportImage {
            manifest,
            names,
            descriptor_annotations: Default::default(),
        });
    }
    let opts = ArchiveOptions {
        oci_media_types,
        mtime: source_date_epoch(),
    };
    match args.output.as_deref() {
        None | Some("-") => {
            let stdout = std::io::stdout();
            if stdout.is_terminal() {
                anyhow::bail!(
                    "refusing to write an image archive to a terminal; use -o FILE or redirect"
                );
            }
            let mut out =
                write_archive(store, &images, opts, std::io::BufWriter::new(stdout.lock()))?;
            std::io::Write::flush(&mut out)?;
        }
        Some(path) => {
            let tmp = format!("{path}.partial");
            let f = std::fs::File::create(&tmp).with_context(|| format!("creating {tmp}"))?;
            let f = write_archive(store, &images, opts, std::io::BufWriter::new(f))?;
            f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
            std::fs::rename(&tmp, path).with_context(|| format!("renaming {tmp} to {path}"))?;
        }
    }
    Ok(())
}

/// `SOURCE_DATE_EPOCH` (seconds), or 0: archive entries get this mtime.
pub fn source_date_epoch() -> u64 {
    std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[derive(clap::Args)]
pub struct LoadArgs {
    /// Read from this file instead of stdin.
    #[arg(short, long)]
    input: Option<String>,
    /// Only print the names.
    #[arg(short, long)]
    quiet: bool,
}

pub fn load(store: &Store, args: LoadArgs) -> Result<()> {
    let report = match args.input.as_deref() {
        None | Some("-") => load_archive(store, std::io::stdin().lock())?,
        Some(path) => load_archive(
            store,
            std::io::BufReader::new(
                std::fs::File::open(path).with_context(|| format!("opening {path}"))?,
            ),
        )
        .with_context(|| format!("loading {path}"))?,
    };
    for name in &report.names {
        crate::report::outln!("Loaded image: {name}");
    }
    if report.names.is_empty() && !args.quiet {
        for d in &report.manifests {
            crate::report::outln!("Loaded image ID: {d}");
        }
    }
    Ok(())
}
