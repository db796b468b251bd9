//! `hoist build --load` and `-o type=docker` without `dest=`: the image
//! into the local Docker or Podman engine (`hoist_engine::export::daemon`),
//! as buildx's docker exporter loads it. The `docker save` archive is
//! written on a thread of its own straight into the API request.

use anyhow::{Context as _, Result};
use hoist_engine::export::archive::{ArchiveOptions, ExportImage, write_archive};
use hoist_engine::export::daemon;
use hoist_engine::store::Store;

use super::archive::source_date_epoch;
use super::registry::runtime;

/// The engine a load would go to (asked before a build, as buildx finds
/// its docker endpoint first: no build only to fail at the end).
pub fn find() -> Result<daemon::Engine> {
    // hoist as root of the host: podman's root socket before a rootless one.
    let root = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self")?) == 0
        && !hoist_engine::ops::run::in_user_namespace();
    let candidates = daemon::candidates(&|k| std::env::var(k).ok(), root);
    Ok(runtime()?.block_on(daemon::find(&candidates))?)
}

/// Load `img` into the first engine that answers; say which on stderr.
pub fn load(store: &Store, img: ExportImage) -> Result<()> {
    let engine = find()?;
    let rt = runtime()?;
    let options = ArchiveOptions {
        oci_media_types: false,
        mtime: source_date_epoch(),
    };
    let (mut writer, body) = daemon::body_channel();
    let (loaded, written) = std::thread::scope(|s| {
        let writing = s.spawn(move || {
            match write_archive(store, std::slice::from_ref(&img), options, &mut writer) {
                Ok(_) => writer.finish().map_err(anyhow::Error::from),
                Err(e) => {
                    writer.fail(e.to_string());
                    Err(anyhow::Error::from(e))
                }
            }
        });
        let loaded = rt.block_on(daemon::load(&engine, body));
        let written = writing
            .join()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("writing the archive panicked")));
        (loaded, written)
    });
    // A failure to write is the cause when both failed (the engine then
    // saw a broken upload).
    written.context("writing the image for the engine")?;
    let loaded = loaded?;
    for line in &loaded.lines {
        eprintln!("{line}");
    }
    eprintln!("loading image into {engine} done");
    Ok(())
}
