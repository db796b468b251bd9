//! `--load` and `-o type=docker` without `dest=`: the image into the local
//! Docker or Podman engine (`crate::export::daemon`), as buildx's docker
//! exporter loads it. The `docker save` archive is written on a thread of
//! its own straight into the API request.

use super::RequestError;
use crate::export::archive::{ArchiveOptions, ExportImage, write_archive};
use crate::export::daemon;
use crate::runtime::block_on;
use crate::store::Store;

/// The engine a load would go to (asked before a build, as buildx finds
/// its docker endpoint first: no build only to fail at the end). Looks at
/// `DOCKER_HOST`, docker's context, `CONTAINER_HOST` and the usual sockets.
pub fn find(runtime: &crate::runtime::Handle) -> Result<daemon::Engine, RequestError> {
    // hoist as root of the host: podman's root socket before a rootless one.
    let me = std::fs::metadata("/proc/self").map_err(|source| RequestError::Io {
        what: "reading",
        path: "/proc/self".into(),
        source,
    })?;
    let root =
        std::os::unix::fs::MetadataExt::uid(&me) == 0 && !crate::ops::run::in_user_namespace();
    let candidates = daemon::candidates(&|k| std::env::var(k).ok(), root);
    Ok(block_on(runtime, daemon::find(&candidates))?)
}

/// Load `img` into the first engine that answers: which one, and what it said.
pub fn load(
    store: &Store,
    runtime: &crate::runtime::Handle,
    img: ExportImage,
    epoch: u64,
) -> Result<(String, daemon::Loaded), RequestError> {
    let engine = find(runtime)?;
    let options = ArchiveOptions {
        oci_media_types: false,
        mtime: epoch,
    };
    let (mut writer, body) = daemon::body_channel();
    let (loaded, written) = std::thread::scope(|s| {
        let writing = s.spawn(move || {
            match write_archive(store, std::slice::from_ref(&img), options, &mut writer) {
                Ok(_) => writer.finish().map_err(|source| RequestError::Io {
                    what: "sending the archive to",
                    path: "the engine".into(),
                    source,
                }),
                Err(e) => {
                    writer.fail(e.to_string());
                    Err(RequestError::from(e))
                }
            }
        });
        let loaded = block_on(runtime, daemon::load(&engine, body));
        let written = writing.join().unwrap_or_else(|_| {
            Err(RequestError::Io {
                what: "writing the archive",
                path: "for the engine".into(),
                source: std::io::Error::other("the writer panicked"),
            })
        });
        (loaded, written)
    });
    // A failure to write is the cause when both failed (the engine then
    // saw a broken upload).
    written.map_err(|e| RequestError::LoadArchive(Box::new(e)))?;
    Ok((engine.to_string(), loaded?))
}
