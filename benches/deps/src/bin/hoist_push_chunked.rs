//! `hoist push` through hoist's own client with `force_chunked_upload`
//! (the `PATCH` path hoist falls back to when a registry refuses one
//! `PUT`; not reachable from the CLI), 8 MiB chunks (the default).
//!
//! Usage: hoist_push_chunked STORE NAME HOST:PORT/REPO:TAG

use anyhow::Result;
use hoist_engine::reference::Reference;
use hoist_engine::registry::{Client, ClientOptions, Progress};
use hoist_engine::store::Store;

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let store = Store::open(std::path::Path::new(&args[1]))?;
    let source = store_name(&args[2]);
    let dest = Reference::parse(&args[3])?;
    let client = Client::new(ClientOptions {
        force_chunked_upload: true,
        ..Default::default()
    })?;
    let report =
        hoist_engine::transfer::push(&client, &store, &source, &dest, &Progress::none()).await?;
    println!(
        "{dest}: digest: {} ({} uploaded)",
        report.digest,
        report.uploaded.len()
    );
    Ok(())
}

/// `bench/img:1` as the store names it.
fn store_name(name: &str) -> String {
    Reference::parse(name)
        .map(|r| r.to_string())
        .unwrap_or_else(|_| name.to_string())
}
