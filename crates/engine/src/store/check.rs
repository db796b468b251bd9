//! `check`: re-hash every blob against its name, and check that every ref
//! names a stored, readable manifest or index whose required blobs (config
//! and layers; an index's platforms are optional) are all present.
//! The caches builds read without re-hashing are checked too: every
//! unpacked tree (`snapshots/`, `diffs/`) must be a directory with as many
//! entries as when it was made, every path index (`indexes/`) must decode
//! (it is checksummed). `check_repair` removes broken ones: they are
//! derived from blobs, and the next build that needs one makes it again.
//! A non-empty damage list means the store is damaged.

use std::fmt;
use std::io::{self, Read};
use std::path::PathBuf;

use serde::Serialize;

use super::Store;
use super::error::Result;
use super::fsutil;
use super::lock::LockMode;
use super::snapshots::SnapshotKind;
use super::walk::{Role, Walk};
use crate::digest::{Digest, Hasher};
use crate::layer::LayerIndex;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Damage {
    /// The blob's bytes hash to something other than its name.
    CorruptBlob { digest: Digest, actual: Digest },
    /// The blob could not be read.
    UnreadableBlob { digest: Digest, error: String },
    /// Something in `blobs/sha256` that is not a blob.
    StrayFile { path: PathBuf },
    /// The refs database cannot be read.
    BadRefs { path: PathBuf, error: String },
    /// A ref names a manifest or index that is not stored.
    DanglingRef { name: String, digest: Digest },
    /// A manifest needs a blob that is not stored.
    MissingBlob { digest: Digest, needed_by: Digest },
    /// A manifest, index or config reached from a ref cannot be parsed.
    BadImageBlob { digest: Digest, reason: String },
    /// A directory other local users may reach: images carry setuid
    /// files and device nodes (`hoist store check --repair` fixes it).
    LooseMode {
        path: PathBuf,
        mode: String,
        allowed: String,
    },
    /// An unpacked tree a build would stack or read that is not whole
    /// (`--repair` removes it; the next build makes it again).
    BadTree { path: PathBuf, reason: String },
    /// A layer path index that cannot be read back (`--repair` removes
    /// it; it is made again from the blob).
    BadIndex { path: PathBuf, reason: String },
}

impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Damage::CorruptBlob { digest, actual } => {
                write!(
                    f,
                    "blob {digest} is corrupt: its content hashes to {actual}"
                )
            }
            Damage::UnreadableBlob { digest, error } => {
                write!(f, "blob {digest} cannot be read: {error}")
            }
            Damage::StrayFile { path } => write!(f, "{} is not a blob", path.display()),
            Damage::BadRefs { path, error } => write!(f, "{}: {error}", path.display()),
            Damage::DanglingRef { name, digest } => {
                write!(f, "image {name:?} names {digest}, which is not stored")
            }
            Damage::MissingBlob { digest, needed_by } => {
                write!(f, "blob {digest}, needed by {needed_by}, is not stored")
            }
            Damage::BadImageBlob { digest, reason } => write!(f, "blob {digest}: {reason}"),
            Damage::LooseMode {
                path,
                mode,
                allowed,
            } => write!(
                f,
                "{} has mode {mode}: other local users could reach the image files below it \
                 (at most {allowed}; `hoist store check --repair` fixes it)",
                path.display()
            ),
            Damage::BadTree { path, reason } => write!(
                f,
                "{}: {reason} (`hoist store check --repair` removes it; the next build remakes it)",
                path.display()
            ),
            Damage::BadIndex { path, reason } => write!(
                f,
                "{}: {reason} (`hoist store check --repair` removes it)",
                path.display()
            ),
        }
    }
}

/// A broken cache entry and how to take it away.
enum Fix {
    Tree(SnapshotKind, Digest),
    Path(PathBuf),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CheckReport {
    pub blobs_checked: u64,
    pub bytes_checked: u64,
    pub refs_checked: u64,
    pub damage: Vec<Damage>,
}

impl CheckReport {
    pub fn is_clean(&self) -> bool {
        self.damage.is_empty()
    }
}

impl Store {
    /// Verify the whole store. Errors only when the store cannot be
    /// listed at all; everything wrong inside it is reported as damage.
    pub fn check(&self) -> Result<CheckReport> {
        let _lock = self.lock_store(LockMode::Shared)?;
        let mut report = CheckReport::default();
        report.damage.extend(self.loose_mode_damage()?);
        report
            .damage
            .extend(self.broken_caches()?.into_iter().map(|(d, _)| d));
        let mut bad_blobs = Vec::new();
        for (digest, _) in self.list_blob_files()? {
            let digest = match digest {
                Ok(d) => d,
                Err(path) => {
                    report.damage.push(Damage::StrayFile { path });
                    continue;
                }
            };
            match self.rehash(&digest) {
                Ok((actual, len)) => {
                    report.blobs_checked += 1;
                    report.bytes_checked += len;
                    if actual != digest {
                        bad_blobs.push(digest.clone());
                        report.damage.push(Damage::CorruptBlob { digest, actual });
                    }
                }
                // Removed since the listing: not damage.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    bad_blobs.push(digest.clone());
                    report.damage.push(Damage::UnreadableBlob {
                        digest,
                        error: e.to_string(),
                    });
                }
            }
        }

        let refs = match self.read_refs() {
            Ok(refs) => refs,
            Err(e) => {
                report.damage.push(Damage::BadRefs {
                    path: self.refs_path(),
                    error: e.to_string(),
                });
                return Ok(report);
            }
        };
        let mut walk = Walk::default();
        for (name, entry) in &refs {
            report.refs_checked += 1;
            if !self.has_blob(&entry.digest)? {
                report.damage.push(Damage::DanglingRef {
                    name: name.clone(),
                    digest: entry.digest.clone(),
                });
                continue;
            }
            walk.visit(self, &entry.digest, Role::Image, true)?;
        }
        for missing in walk.missing.into_iter().filter(|m| m.required) {
            if let Some(needed_by) = missing.parent {
                report.damage.push(Damage::MissingBlob {
                    digest: missing.digest,
                    needed_by,
                });
            }
        }
        for (digest, reason) in walk.broken {
            // A corrupt blob is already reported as such.
            if !bad_blobs.contains(&digest) {
                report.damage.push(Damage::BadImageBlob { digest, reason });
            }
        }
        Ok(report)
    }

    /// Fixes what `check` can fix: directories other users could reach
    /// lose their group and other bits, and broken trees and indexes are
    /// removed (the next build that needs one remakes it from its blob).
    /// Returns the damage repaired. Fails, as [`Store::gc`] does, if this
    /// handle itself holds a lease.
    pub fn repair(&self) -> Result<Vec<Damage>> {
        let mut repaired = self.repair_modes()?;
        repaired.extend(self.repair_caches()?);
        Ok(repaired)
    }

    /// Removes every broken tree and index `check` reports (waiting for
    /// running builds first); returns what was removed and why.
    fn repair_caches(&self) -> Result<Vec<Damage>> {
        let count = self.leases_held();
        if count > 0 {
            return Err(super::StoreError::LeaseHeld {
                root: self.root().to_path_buf(),
                count,
            });
        }
        let _lock = self.lock_store(LockMode::Exclusive)?;
        let mut removed = Vec::new();
        for (damage, fix) in self.broken_caches()? {
            match fix {
                Fix::Tree(kind, id) => {
                    self.remove_snapshot_locked(kind, &id)?;
                    self.remove_tree_marker(kind, &id)?;
                }
                Fix::Path(path) => fsutil::remove_any(&path)?,
            }
            removed.push(damage);
        }
        Ok(removed)
    }

    /// Trees and indexes a build would trip on.
    fn broken_caches(&self) -> Result<Vec<(Damage, Fix)>> {
        let mut out = Vec::new();
        for kind in [SnapshotKind::Full, SnapshotKind::Diff] {
            let dir = self.kind_dir(kind);
            for name in fsutil::dir_names(&dir)? {
                let path = dir.join(&name);
                let bad = |reason: String, fix| {
                    (
                        Damage::BadTree {
                            path: path.clone(),
                            reason,
                        },
                        fix,
                    )
                };
                let Some(id) = name
                    .to_str()
                    .and_then(|n| format!("sha256:{n}").parse::<Digest>().ok())
                else {
                    out.push(bad("not a chain id".into(), Fix::Path(path.clone())));
                    continue;
                };
                match std::fs::symlink_metadata(&path) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => {
                        out.push(bad("not a directory".into(), Fix::Tree(kind, id)));
                        continue;
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => {
                        out.push(bad(e.to_string(), Fix::Tree(kind, id)));
                        continue;
                    }
                }
                // An unmarked tree (a build killed between committing and
                // marking it) or one of an earlier boot is not used: the
                // next build removes and remakes it.
                let Some(want) = self.tree_marker(kind, &id)?.and_then(|m| m.entries) else {
                    continue;
                };
                match fsutil::tree_entries(&path) {
                    Ok(n) if n == want => {}
                    Ok(n) => out.push(bad(
                        format!("has {n} entries, {want} when it was made"),
                        Fix::Tree(kind, id),
                    )),
                    Err(super::StoreError::Io { source, .. })
                        if source.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => out.push(bad(format!("cannot be read: {e}"), Fix::Tree(kind, id))),
                }
            }
        }
        let dir = self.indexes_dir();
        if dir.is_dir() {
            for name in fsutil::dir_names(&dir)? {
                let path = dir.join(&name);
                let reason = if name
                    .to_str()
                    .and_then(|n| format!("sha256:{n}").parse::<Digest>().ok())
                    .is_none()
                {
                    Some("not named by a blob digest".to_string())
                } else {
                    match std::fs::read(&path) {
                        Ok(bytes) => LayerIndex::decode(&bytes).err().map(|e| e.to_string()),
                        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
                        Err(e) => Some(e.to_string()),
                    }
                };
                if let Some(reason) = reason {
                    out.push((
                        Damage::BadIndex {
                            path: path.clone(),
                            reason,
                        },
                        Fix::Path(path),
                    ));
                }
            }
        }
        Ok(out)
    }

    fn rehash(&self, digest: &Digest) -> io::Result<(Digest, u64)> {
        let mut file = std::fs::File::open(self.blob_path(digest))?;
        let mut hasher = Hasher::new();
        let mut buf = vec![0; 1 << 16];
        loop {
            let n = file.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        let len = hasher.len();
        Ok((hasher.finish(), len))
    }
}
