//! Store commands on images: `images`, `inspect`, `tag`, `rmi`.

use anyhow::{Context, Result};
use hoist_engine::digest::Digest;
use hoist_engine::executor::time::parse_rfc3339;
use hoist_engine::image::{ImageConfig, Manifest, Raw};
use hoist_engine::inventory::{self, Listed};
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
    /// Also list the images no name reaches (`<none>` rows: earlier
    /// results of a moved tag, builds without `-t`), as `docker images -a`.
    #[arg(short, long)]
    all: bool,
    /// Only show image IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Show whole image IDs (`sha256:` and 64 hex digits).
    #[arg(long)]
    no_trunc: bool,
    /// Show the manifest digest each name points at.
    #[arg(long)]
    digests: bool,
    /// `dangling=true` (only the `<none>` rows) or `dangling=false` (only
    /// named images), as `docker images -f`.
    #[arg(short, long, value_name = "KEY=VALUE")]
    filter: Vec<String>,
    /// `table` or `json`.
    #[arg(long, default_value = "table")]
    format: String,
}

/// `--filter dangling=BOOL`: `Some(true)` for only images no name reaches.
fn dangling_filter(filters: &[String]) -> Result<Option<bool>> {
    let mut dangling = None;
    for f in filters {
        match f.split_once('=') {
            Some(("dangling", v)) => {
                dangling = Some(match v.to_ascii_lowercase().as_str() {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    // docker's words.
                    _ => anyhow::bail!("invalid filter 'dangling={v}'"),
                })
            }
            _ => anyhow::bail!("unsupported --filter {f:?} (hoist knows dangling=true|false)"),
        }
    }
    Ok(dangling)
}

/// The image ID as `docker images` prints it: 12 hex digits, or whole.
fn show_id(id: &Digest, whole: bool) -> String {
    if whole {
        id.to_string()
    } else {
        id.hex()[..12].to_string()
    }
}

pub fn images(store: &Store, args: ImagesArgs) -> Result<()> {
    let dangling = dangling_filter(&args.filter)?;
    let mut list = inventory::list(
        store,
        &host_platform(),
        args.all || dangling == Some(true),
        true,
    )?;
    if let Some(want) = dangling {
        list.retain(|i| i.name.is_none() == want);
    }
    // Newest first, as docker lists them.
    let created = |i: &Listed| i.created.as_deref().and_then(parse_rfc3339);
    list.sort_by(|a, b| created(b).cmp(&created(a)).then(a.name.cmp(&b.name)));
    match args.format.as_str() {
        "json" => {
            let rows: Vec<serde_json::Value> = list
                .iter()
                .map(|i| {
                    let (repo, tag) = repo_and_tag(i.name.as_deref());
                    serde_json::json!({
                        "name": i.name,
                        "repository": repo,
                        "tag": tag,
                        "id": i.id.to_string(),
                        "digest": i.digest.to_string(),
                        "media_type": i.media_type,
                        "created": i.created,
                        "size": i.size,
                    })
                })
                .collect();
            crate::report::outln!("{}", serde_json::to_string_pretty(&rows)?)
        }
        "table" if args.quiet => {
            for img in &list {
                crate::report::outln!("{}", show_id(&img.id, args.no_trunc));
            }
        }
        "table" => {
            let now = hoist_engine::executor::time::now_seconds();
            let mut rows = vec![
                ["REPOSITORY", "TAG", "DIGEST", "IMAGE ID", "CREATED", "SIZE"].map(String::from),
            ];
            for img in &list {
                let (repo, tag) = repo_and_tag(img.name.as_deref());
                let digest = match &img.name {
                    Some(_) => img.digest.to_string(),
                    None => "<none>".into(),
                };
                let age = created(img).map_or_else(
                    || "N/A".to_string(),
                    |t| format!("{} ago", human_duration(now - t)),
                );
                rows.push([
                    repo,
                    tag,
                    digest,
                    show_id(&img.id, args.no_trunc),
                    age,
                    human_size(img.size),
                ]);
            }
            let columns: Vec<usize> = (0..6).filter(|&c| c != 2 || args.digests).collect();
            crate::report::out!("{}", table(&rows, &columns));
        }
        other => anyhow::bail!("unknown --format {other:?} (table or json)"),
    }
    Ok(())
}

/// REPOSITORY and TAG of a row: the familiar name and tag, `<none>` for
/// what is missing.
fn repo_and_tag(name: Option<&str>) -> (String, String) {
    let none = || "<none>".to_string();
    match name.map(|n| (n, Reference::parse(n))) {
        None => (none(), none()),
        Some((_, Ok(r))) => (
            r.repository().familiar_name(),
            r.tag().map_or_else(none, str::to_string),
        ),
        Some((n, Err(_))) => (n.to_string(), none()),
    }
}

/// The columns `columns` of `rows` as docker's tabwriter lays them out
/// (each column at least 10 wide, 3 spaces after the widest cell; the last
/// not padded).
fn table(rows: &[[String; 6]], columns: &[usize]) -> String {
    let widths: Vec<usize> = columns
        .iter()
        .map(|&c| {
            rows.iter()
                .map(|r| r[c].chars().count() + 3)
                .max()
                .unwrap_or(0)
                .max(10)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (i, &c) in columns.iter().enumerate() {
            if i + 1 == columns.len() {
                line.push_str(&row[c]);
            } else {
                line.push_str(&format!("{:<w$}", row[c], w = widths[i]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `1.2MB`, as `docker images` prints sizes: powers of 1000, three
/// significant digits (go-units' `HumanSizeWithPrecision(size, 3)`).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < UNITS.len() {
        v /= 1000.0;
        i += 1;
    }
    // Go's %.3g: three significant digits, no trailing zeros.
    let decimals = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    let mut text = format!("{v:.decimals$}");
    if text.contains('.') {
        text = text.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{text}{}", UNITS[i])
}

/// How long ago, in go-units' `HumanDuration` words (docker's CREATED).
fn human_duration(seconds: i64) -> String {
    let s = seconds.max(0);
    let minutes = s / 60;
    let hours = (s + 1800) / 3600;
    match () {
        _ if s < 1 => "Less than a second".into(),
        _ if s == 1 => "1 second".into(),
        _ if s < 60 => format!("{s} seconds"),
        _ if minutes == 1 => "About a minute".into(),
        _ if minutes < 60 => format!("{minutes} minutes"),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        _ => format!("{} years", s / 3600 / 24 / 365),
    }
}

#[derive(clap::Args)]
pub struct InspectArgs {
    /// Image name, image ID (or a unique prefix of one), or manifest digest.
    image: String,
}

/// An image as the user named it: by name, by image ID (or a unique
/// prefix), or by manifest digest.
pub struct Target {
    pub digest: Digest,
    pub media_type: String,
    /// The full store name, when the image was named by one.
    pub name: Option<String>,
}

/// The image `user` names. A name in the store wins (docker's order);
/// else an image ID or manifest digest, whole or a unique prefix, with or
/// without `sha256:`.
pub fn lookup(store: &Store, user: &str) -> Result<Target> {
    if let Ok(full) = store_name(user)
        && let Ok(rec) = store.resolve(&full)
    {
        return Ok(Target {
            digest: rec.digest,
            media_type: rec.media_type,
            name: Some(full),
        });
    }
    match inventory::find_by_id(store, user, &host_platform())? {
        Some(found) => Ok(Target {
            digest: found.digest,
            media_type: found.media_type,
            name: None,
        }),
        None => {
            store_name(user)?;
            anyhow::bail!("no image {user:?} in the store")
        }
    }
}

/// The image's manifest (or index) digest and media type, by name or ID.
pub fn resolve(store: &Store, user: &str) -> Result<(Digest, String)> {
    let t = lookup(store, user)?;
    Ok((t.digest, t.media_type))
}

/// The single-platform manifest for a name or ID (an index picks this
/// host's platform).
pub fn manifest_of(store: &Store, user: &str) -> Result<Raw<Manifest>> {
    let t = lookup(store, user)?;
    Ok(inventory::platform_manifest(
        store,
        &t.digest,
        Some(&t.media_type),
        &host_platform(),
    )?)
}

pub fn inspect(store: &Store, args: InspectArgs) -> Result<()> {
    let target = lookup(store, &args.image)?;
    let bytes = store.read_blob_verified(&target.digest)?;
    let top: serde_json::Value = serde_json::from_slice(&bytes)?;
    let manifest = manifest_of(store, &args.image)?;
    let config: Raw<ImageConfig> = Raw::parse_verified(
        store.read_blob_verified(&manifest.value().config.digest)?,
        &manifest.value().config.digest,
    )?;
    let config_json: serde_json::Value = serde_json::from_slice(config.bytes())?;
    let id = &manifest.value().config.digest;
    // docker's RepoTags: every name on this image ID, familiar.
    let repo_tags: Vec<String> = inventory::list(store, &host_platform(), false, false)?
        .into_iter()
        .filter(|i| &i.id == id)
        .filter_map(|i| i.name)
        .map(|n| Reference::parse(&n).map_or(n, |r| r.familiar()))
        .collect();
    let out = serde_json::json!({
        "Id": id.to_string(),
        "RepoTags": repo_tags,
        "Name": target.name.clone().unwrap_or_else(|| args.image.clone()),
        "Digest": target.digest.to_string(),
        "MediaType": target.media_type,
        "Size": inventory::content_size(store, manifest.value(), config.value()),
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
    /// Names, image IDs (or unique prefixes) or manifest digests.
    #[arg(required = true)]
    images: Vec<String>,
    /// Remove every name of an image given by ID, even in several
    /// repositories.
    #[arg(short, long)]
    force: bool,
}

/// `rmi`: a name loses that name; an image given by ID or digest loses
/// every name it has (with `--force` when they are in more than one
/// repository, as docker asks). The blobs stay until `hoist prune`.
pub fn rmi(store: &Store, args: RmiArgs) -> Result<()> {
    for img in &args.images {
        let target = lookup(store, img)?;
        if let Some(name) = &target.name {
            let removed = store
                .untag(name)
                .with_context(|| format!("removing {img}"))?;
            crate::report::outln!("Untagged: {}", removed.name);
            continue;
        }
        let id = inventory::platform_manifest(
            store,
            &target.digest,
            Some(&target.media_type),
            &host_platform(),
        )?
        .value()
        .config
        .digest
        .clone();
        let names: Vec<String> = inventory::list(store, &host_platform(), false, false)?
            .into_iter()
            .filter(|i| i.id == id || i.digest == target.digest)
            .filter_map(|i| i.name)
            .collect();
        let short = &id.hex()[..12];
        if names.is_empty() {
            anyhow::bail!(
                "image {short} has no name to remove; `hoist prune` removes the images no name reaches"
            );
        }
        let repos: std::collections::BTreeSet<String> = names
            .iter()
            .filter_map(|n| Reference::parse(n).ok())
            .map(|r| r.repository().to_string())
            .collect();
        if repos.len() > 1 && !args.force {
            // docker's words.
            anyhow::bail!(
                "conflict: unable to delete {short} (must be forced) - image is referenced in multiple repositories"
            );
        }
        for name in names {
            store
                .untag(&name)
                .with_context(|| format!("removing {name}"))?;
            crate::report::outln!("Untagged: {name}");
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
