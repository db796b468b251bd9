//! Store commands on images: `images`, `inspect`, `tag`, `rmi`.

use anyhow::{Context, Result};
use hoist_engine::digest::Digest;
use hoist_engine::image::{AnyManifest, ImageConfig, Manifest, Raw};
use hoist_engine::reference::Reference;
use hoist_engine::store::Store;

/// A user's image name as the store keys it: `busybox` →
/// `docker.io/library/busybox:latest`.
pub fn store_name(user: &str) -> Result<String> {
    Ok(Reference::parse(user)
        .with_context(|| format!("invalid image reference {user:?}"))?
        .to_string())
}

#[derive(clap::Args)]
pub struct ImagesArgs {
    /// Only show manifest digests.
    #[arg(short, long)]
    quiet: bool,
    /// `table` or `json`.
    #[arg(long, default_value = "table")]
    format: String,
}

pub fn images(store: &Store, args: ImagesArgs) -> Result<()> {
    let list = store.list_images()?;
    match args.format.as_str() {
        "json" => crate::report::outln!("{}", serde_json::to_string_pretty(&list)?),
        "table" if args.quiet => {
            for img in &list {
                crate::report::outln!("{}", img.digest);
            }
        }
        "table" => {
            crate::report::outln!(
                "{:<48} {:<20} {:<14} {:>10}",
                "REPOSITORY",
                "TAG",
                "DIGEST",
                "SIZE"
            );
            for img in &list {
                let (repo, tag) = match Reference::parse(&img.name) {
                    Ok(r) => (
                        r.repository().familiar_name(),
                        r.tag().unwrap_or("<none>").to_string(),
                    ),
                    Err(_) => (img.name.clone(), "<none>".into()),
                };
                let short = &img.digest.hex()[..12];
                crate::report::outln!(
                    "{repo:<48} {tag:<20} {short:<14} {:>10}",
                    human_size(img.size)
                );
            }
        }
        other => anyhow::bail!("unknown --format {other:?} (table or json)"),
    }
    Ok(())
}

/// `1.2 MB`, as `docker images` prints sizes (powers of 1000).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < UNITS.len() {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{bytes}B")
    } else {
        format!("{v:.3}{}", UNITS[i]).replace(".000", "")
    }
}

#[derive(clap::Args)]
pub struct InspectArgs {
    /// Image name or manifest digest.
    image: String,
}

/// The image's manifest (or index) digest and media type, by name or digest.
pub fn resolve(store: &Store, user: &str) -> Result<(Digest, String)> {
    if let Ok(d) = user.parse::<Digest>() {
        let bytes = store.read_blob_verified(&d)?;
        let m = AnyManifest::parse(bytes, None)?;
        return Ok((d, m.media_type().to_string()));
    }
    let rec = store
        .resolve(&store_name(user)?)
        .with_context(|| format!("no image {user:?} in the store"))?;
    Ok((rec.digest, rec.media_type))
}

/// The single-platform manifest for a name (an index picks this host's platform).
pub fn manifest_of(store: &Store, user: &str) -> Result<Raw<Manifest>> {
    let (digest, media_type) = resolve(store, user)?;
    let bytes = store.read_blob_verified(&digest)?;
    match AnyManifest::parse(bytes, Some(&media_type))? {
        AnyManifest::Manifest(m) => Ok(*m),
        AnyManifest::Index(index) => {
            let want = host_platform();
            let desc = index.value().select(&want)?;
            Ok(Raw::parse_verified(
                store.read_blob_verified(&desc.digest)?,
                &desc.digest,
            )?)
        }
    }
}

pub fn inspect(store: &Store, args: InspectArgs) -> Result<()> {
    let (digest, media_type) = resolve(store, &args.image)?;
    let bytes = store.read_blob_verified(&digest)?;
    let top: serde_json::Value = serde_json::from_slice(&bytes)?;
    let manifest = manifest_of(store, &args.image)?;
    let config: Raw<ImageConfig> = Raw::parse_verified(
        store.read_blob_verified(&manifest.value().config.digest)?,
        &manifest.value().config.digest,
    )?;
    let config_json: serde_json::Value = serde_json::from_slice(config.bytes())?;
    let out = serde_json::json!({
        "Name": store_name(&args.image).unwrap_or_else(|_| args.image.clone()),
        "Digest": digest.to_string(),
        "MediaType": media_type,
        "Manifest": top,
        "Config": config_json,
    });
    crate::report::outln!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

#[derive(clap::Args)]
pub struct TagArgs {
    source: String,
    target: String,
}

pub fn tag(store: &Store, args: TagArgs) -> Result<()> {
    let (digest, media_type) = resolve(store, &args.source)?;
    store.set_ref(&store_name(&args.target)?, &digest, Some(&media_type))?;
    Ok(())
}

#[derive(clap::Args)]
pub struct RmiArgs {
    #[arg(required = true)]
    images: Vec<String>,
}

pub fn rmi(store: &Store, args: RmiArgs) -> Result<()> {
    for img in &args.images {
        let key = if img.parse::<Digest>().is_ok() {
            img.clone()
        } else {
            store_name(img)?
        };
        for removed in store.rmi(&key).with_context(|| format!("removing {img}"))? {
            crate::report::outln!("Untagged: {}", removed.name);
        }
    }
    Ok(())
}

/// This machine's platform, in the image model's type.
pub fn host_platform() -> hoist_engine::image::Platform {
    let h = hoist_dockerfile::Platform::host();
    let variant = (!h.variant.is_empty()).then_some(h.variant.as_str());
    hoist_engine::image::Platform::new(&h.os, &h.architecture, variant)
}
