//! Store maintenance: `prune`, `du`, `store check`.

use std::io::{BufRead, IsTerminal, Write};

use anyhow::Result;
use hoist_engine::store::{Damage, GcOptions, Store};

use super::images::human_size;

#[derive(clap::Args)]
pub struct PruneArgs {
    /// Also remove every image and the build cache.
    #[arg(short, long)]
    all: bool,
    /// Do not ask for confirmation.
    #[arg(short, long)]
    force: bool,
}

pub fn prune(store: &Store, args: PruneArgs) -> Result<()> {
    if !args.force {
        let what = if args.all {
            "all images, all build cache and every unreferenced blob"
        } else {
            "unreferenced blobs, snapshots and temporary files"
        };
        if !std::io::stdin().is_terminal() {
            anyhow::bail!(
                "prune would remove {what}; pass --force to confirm when not interactive"
            );
        }
        eprint!("WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ");
        std::io::stderr().flush()?;
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Ok(());
        }
    }
    let report = store.gc(GcOptions { all: args.all })?;
    for name in &report.removed_refs {
        crate::report::outln!("Untagged: {name}");
    }
    crate::report::outln!(
        "Removed {} blobs, {} snapshots, {} cache records, {} temporary files\nTotal reclaimed space: {}",
        report.removed_blobs,
        report.removed_snapshots,
        report.removed_cache_records,
        report.removed_temp_files,
        human_size(report.reclaimed_bytes())
    );
    Ok(())
}

#[derive(clap::Args)]
pub struct DuArgs {
    /// `table` or `json`.
    #[arg(long, default_value = "table")]
    format: String,
}

pub fn du(store: &Store, args: DuArgs) -> Result<()> {
    let r = store.disk_usage()?;
    if args.format == "json" {
        crate::report::outln!("{}", serde_json::to_string_pretty(&r)?);
        return Ok(());
    }
    crate::report::outln!("{:<12} {:>8} {:>12}", "TYPE", "COUNT", "SIZE");
    for (name, u) in [
        ("blobs", r.blobs),
        ("snapshots", r.snapshots),
        ("build cache", r.cache),
        ("path indexes", r.indexes),
        ("cache mounts", r.cache_mounts),
        ("temporary", r.temp),
    ] {
        crate::report::outln!("{name:<12} {:>8} {:>12}", u.count, human_size(u.bytes));
    }
    crate::report::outln!("reclaimable: {}", human_size(r.reclaimable));
    Ok(())
}

/// Says, once per command, that other local users can reach the store
/// (a store made before hoist kept it to its owner).
pub fn warn_loose_modes(store: &Store) {
    if let Ok(loose) = store.loose_modes() {
        for (path, mode, allowed) in loose {
            eprintln!(
                "warning: {} has mode {mode:04o}: other local users can reach the image files \
                 below it (at most {allowed:04o}); run `hoist store check --repair`",
                path.display()
            );
        }
    }
}

pub fn check(store: &Store, repair: bool) -> Result<()> {
    if repair {
        for damage in store.repair()? {
            match &damage {
                Damage::LooseMode { path, .. } => crate::report::outln!(
                    "repaired: {} is no longer reachable by others",
                    path.display()
                ),
                Damage::BadTree { path, reason } | Damage::BadIndex { path, reason } => {
                    crate::report::outln!(
                        "repaired: removed {} ({reason}); the next build that needs it remakes it",
                        path.display()
                    )
                }
                other => crate::report::outln!("repaired: {other}"),
            }
        }
    }
    let report = store.check()?;
    if report.is_clean() {
        crate::report::outln!("store {} is consistent", store.root().display());
        return Ok(());
    }
    crate::report::outln!("{}", serde_json::to_string_pretty(&report)?);
    anyhow::bail!(
        "store {} is damaged (details above)",
        store.root().display()
    )
}
