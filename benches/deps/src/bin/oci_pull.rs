//! Pull one image with oci-client 0.18: manifest, config and layers, each
//! blob streamed into `OUT/blobs/sha256/HEX` through `Client::pull_blob`
//! (which hashes as it writes and checks the digest at the end), four at
//! a time like `hoist pull` (`transfer::pull::CONCURRENT_BLOBS`), each
//! file fsynced like hoist's store does.
//!
//! Usage: oci_pull HOST:PORT/REPO:TAG OUT

use anyhow::{Context, Result};
use futures_util::{StreamExt, TryStreamExt};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};
use tokio::io::AsyncWriteExt;

#[tokio::main]
async fn main() -> Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args: Vec<String> = std::env::args().collect();
    let reference: Reference = args[1].parse()?;
    let out = std::path::PathBuf::from(&args[2]);
    let blobs = out.join("blobs/sha256");
    tokio::fs::create_dir_all(&blobs).await?;
    let client = Client::new(ClientConfig {
        protocol: ClientProtocol::Http,
        ..Default::default()
    });
    let auth = RegistryAuth::Anonymous;
    let (manifest, digest) = client.pull_image_manifest(&reference, &auth).await?;
    let raw = serde_json::to_vec(&manifest)?;
    tokio::fs::write(out.join("manifest.json"), &raw).await?;
    let mut wanted: Vec<OciDescriptor> = vec![manifest.config.clone()];
    wanted.extend(manifest.layers.iter().cloned());
    let n = wanted.len();
    futures_util::stream::iter(wanted.into_iter().map(|desc| {
        let (client, reference, blobs) = (&client, &reference, &blobs);
        async move {
            let hex = desc.digest.trim_start_matches("sha256:").to_string();
            let path = blobs.join(&hex);
            let mut file = tokio::fs::File::create(&path).await?;
            client
                .pull_blob(reference, &desc, &mut file)
                .await
                .with_context(|| format!("blob {}", desc.digest))?;
            file.flush().await?;
            file.sync_all().await?;
            anyhow::Ok(())
        }
    }))
    .buffer_unordered(4)
    .try_collect::<Vec<()>>()
    .await?;
    println!("{reference}: {digest} ({n} blobs)");
    Ok(())
}
