//! Push the image `oci_pull` wrote (`DIR/manifest.json`,
//! `DIR/blobs/sha256/HEX`) with oci-client 0.18, one blob after another
//! like `hoist push`: `HEAD` first (skip when present), then the file
//! streamed with `push_blob_stream` (`monolithic`: one `PUT` of a known
//! size; `chunked`: oci-client's `PATCH` chunks, fed 64 KiB reads;
//! `chunked4m`: the same fed 4 MiB reads), then the manifest.
//! oci-client sends one `PATCH` per stream item (split above 4 MiB, never
//! joined), so the read size is the chunk size.
//!
//! Usage: oci_push DIR HOST:PORT/REPO:TAG monolithic|chunked|chunked4m

use anyhow::Result;
use futures_util::TryStreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::manifest::{OciDescriptor, OciImageManifest, OciManifest};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use tokio_util::io::ReaderStream;

#[tokio::main]
async fn main() -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args: Vec<String> = std::env::args().collect();
    let dir = std::path::PathBuf::from(&args[1]);
    let reference: Reference = args[2].parse()?;
    let monolithic = args[3] == "monolithic";
    let client = Client::new(ClientConfig {
        protocol: ClientProtocol::Http,
        use_monolithic_push: monolithic,
        ..Default::default()
    });
    client
        .auth(
            &reference,
            &RegistryAuth::Anonymous,
            RegistryOperation::Push,
        )
        .await?;
    let raw = std::fs::read(dir.join("manifest.json"))?;
    let manifest: OciImageManifest = serde_json::from_slice(&raw)?;
    let mut blobs: Vec<OciDescriptor> = manifest.layers.clone();
    blobs.push(manifest.config.clone());
    let (mut uploaded, mut skipped) = (0, 0);
    for desc in &blobs {
        if client.blob_exists(&reference, &desc.digest).await? {
            skipped += 1;
            continue;
        }
        let path = dir
            .join("blobs/sha256")
            .join(desc.digest.trim_start_matches("sha256:"));
        let file = tokio::fs::File::open(&path).await?;
        let read = if args[3] == "chunked4m" {
            4 << 20
        } else {
            64 << 10
        };
        let stream = ReaderStream::with_capacity(file, read)
            .map_err(oci_client::errors::OciDistributionError::from);
        client
            .push_blob_stream(&reference, stream, &desc.digest, Some(desc.size as u64))
            .await?;
        uploaded += 1;
    }
    let url = client
        .push_manifest(&reference, &OciManifest::Image(manifest))
        .await?;
    println!("{url} ({uploaded} uploaded, {skipped} skipped)");
    Ok(())
}
