//! Walk a context directory and `lstat` every entry, two ways:
//!
//! - `walkdir`: walkdir 2.5, `follow_links(false)`, `sort_by_file_name()`,
//!   `fs::symlink_metadata` per entry (what a walkdir port would do);
//! - `walkdir-de`: the same with `DirEntry::metadata()`;
//! - `hoist`: hoist's walker, `Context::open(ROOT)` then
//!   `select(["."])` (what `COPY . /` does: `.dockerignore`, sorted,
//!   symlinks listed not followed, hardlinks detected);
//! - `hoist-hash`: `hoist` then `hash_selection` with a persistent hash
//!   cache at `CACHE` (the first run hashes every file; later runs are
//!   answered by the (dev, inode, size, mtime, ctime) cache).
//!
//! Usage: walk walkdir|walkdir-de|hoist|hoist-hash ROOT [CACHE]

use std::path::Path;
use std::time::Instant;

use anyhow::Result;
use hoist_engine::context::{Context, HashCache, hash_selection};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let root = Path::new(&args[2]);
    let start = Instant::now();
    let (entries, bytes) = match args[1].as_str() {
        "walkdir" | "walkdir-de" => {
            let via_entry = args[1] == "walkdir-de";
            let (mut n, mut bytes) = (0u64, 0u64);
            for e in walkdir::WalkDir::new(root)
                .follow_links(false)
                .sort_by_file_name()
            {
                let e = e?;
                let m = if via_entry {
                    e.metadata()?
                } else {
                    std::fs::symlink_metadata(e.path())?
                };
                n += 1;
                bytes += m.len();
            }
            (n, bytes)
        }
        "hoist" | "hoist-hash" => {
            let ctx = Context::open(root, None)?;
            let sel = ctx.select(&[".".to_string()], &[], true)?;
            let n = sel.entries().count() as u64;
            let bytes = sel.entries().map(|e| e.size).sum();
            if args[1] == "hoist-hash" {
                let cache = HashCache::at_file(Path::new(&args[3]))?;
                let h = hash_selection(&sel, &cache)?;
                cache.save()?;
                let s = cache.stats();
                eprintln!(
                    "hash {} hits {} misses {} files_read {} bytes_read {}",
                    h.digest, s.hits, s.misses, s.files_read, s.bytes_read
                );
            }
            (n, bytes)
        }
        other => anyhow::bail!("unknown mode {other}"),
    };
    eprintln!(
        "{} entries {} bytes {} in {:.3}s",
        args[1],
        entries,
        bytes,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
