//! `--push` and `type=image,push=true`: a stored name to its registry, or
//! (`push_lazily`) an image whose layers are partly only in an imported
//! cache, pushed without fetching them first.

use super::outputs::Context;
use super::{Notice, Report, RequestError};
use crate::image::{Manifest, Raw};
use crate::reference::Reference;
use crate::registry::{Client, Progress};
use crate::runtime::block_on;
use crate::store::Store;

fn client<'a>(cx: &Context<'a>, name: &str) -> Result<&'a Client, RequestError> {
    cx.client
        .ok_or_else(|| RequestError::NoClient(name.to_string()))
}

/// Push the store's image `full` (a store name) to the registry it names.
pub fn push_name(store: &Store, cx: &Context<'_>, full: &str) -> Result<(), RequestError> {
    let dest = Reference::parse(full).map_err(|source| RequestError::Name {
        name: full.to_string(),
        source,
    })?;
    let client = client(cx, full)?;
    block_on(
        cx.runtime,
        crate::transfer::push(client, store, full, &dest, &Progress::none()),
    )?;
    Ok(())
}

/// `--push` of an image whose layers are partly only in an imported
/// cache: pushed from the store's manifest without fetching them (a layer
/// is mounted from the cache's repository on the same registry, else
/// fetched and uploaded). The names are not set in the local store, which
/// never names an image it lacks layers of (as `buildx --push` with a
/// container driver loads nothing locally).
pub fn push_lazily(
    store: &Store,
    cx: &Context<'_>,
    manifest: &Raw<Manifest>,
    names: &[String],
    report: &dyn Report,
) -> Result<(), RequestError> {
    for full in names {
        let dest = Reference::parse(full).map_err(|source| RequestError::Name {
            name: full.clone(),
            source,
        })?;
        let client = client(cx, full)?;
        let pushed = block_on(
            cx.runtime,
            crate::transfer::push_digest(
                client,
                store,
                manifest.digest(),
                crate::image::media_types::OCI_MANIFEST,
                None,
                &dest,
                &Progress::none(),
            ),
        )?;
        report.notice(Notice::PushedLazily {
            name: full.clone(),
            report: pushed,
        });
    }
    Ok(())
}
