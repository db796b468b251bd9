//! Who may reach the store. Images carry setuid-root files, file
//! capabilities and device nodes; unpacked under `snapshots/` and `diffs/`
//! they would serve any local user who can reach them (moby's
//! CVE-2021-41091). So the root is `0700` (a group may be given search,
//! `0710`, and nothing more), and the directories of unpacked trees and
//! work in progress are `0700` whatever the root is.
//!
//! `open` makes a new store so; an older store with looser modes is
//! reported by `check` ([`Damage::LooseMode`]) and fixed by
//! [`Store::repair`] (`hoist store check --repair`).

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::Store;
use super::check::Damage;
use super::error::{IoContext, Result};

/// The bits the store root may have: owner all, group search.
const ROOT_ALLOWED: u32 = 0o710;
/// The bits the directories of unpacked trees may have: owner only.
const TREE_ALLOWED: u32 = 0o700;

/// Creates `dir` (and missing parents, with the usual modes) so that `dir`
/// itself is `0700`. An existing directory keeps its mode, except an empty
/// one (`mkdir` by a user or a volume mount before the first use), which
/// is about to become private.
pub(crate) fn create_private_dir(dir: &Path) -> Result<()> {
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).at(parent)?;
    }
    match fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => {
            let empty = fs::read_dir(dir).at(dir)?.next().is_none();
            let mode = fs::metadata(dir).at(dir)?.permissions().mode();
            if empty && mode & 0o077 != 0 {
                fs::set_permissions(dir, fs::Permissions::from_mode(mode & 0o700)).at(dir)?;
            }
            Ok(())
        }
        Err(e) => Err(e).at(dir),
    }
}

impl Store {
    /// The directories whose modes matter, with the bits each may have.
    fn guarded_dirs(&self) -> Vec<(PathBuf, u32)> {
        let mut dirs = vec![(self.root.clone(), ROOT_ALLOWED)];
        for d in [
            self.snapshots_dir(),
            self.diffs_dir(),
            self.tmp_dir(),
            self.root.join("cache-mounts"),
        ] {
            dirs.push((d, TREE_ALLOWED));
        }
        dirs
    }

    /// Directories looser than they may be: `(path, mode, allowed bits)`.
    pub fn loose_modes(&self) -> Result<Vec<(PathBuf, u32, u32)>> {
        let mut loose = Vec::new();
        for (dir, allowed) in self.guarded_dirs() {
            let mode = match fs::symlink_metadata(&dir) {
                Ok(m) => m.permissions().mode() & 0o7777,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e).at(&dir),
            };
            if mode & !allowed & 0o777 != 0 {
                loose.push((dir, mode, allowed));
            }
        }
        Ok(loose)
    }

    /// Directories looser than they may be, as `check` reports them.
    pub(crate) fn loose_mode_damage(&self) -> Result<Vec<Damage>> {
        Ok(self.loose_modes()?.into_iter().map(damage).collect())
    }

    /// Takes away every group and other bit (a group that must search the
    /// root is given `g+x` by hand); returns the damage it repaired.
    pub(crate) fn repair_modes(&self) -> Result<Vec<Damage>> {
        let loose = self.loose_modes()?;
        for (dir, mode, _) in &loose {
            fs::set_permissions(dir, fs::Permissions::from_mode(mode & !0o077)).at(dir)?;
        }
        Ok(loose.into_iter().map(damage).collect())
    }
}

fn damage((path, mode, allowed): (PathBuf, u32, u32)) -> Damage {
    Damage::LooseMode {
        path,
        mode: format!("{mode:04o}"),
        allowed: format!("{allowed:04o}"),
    }
}
