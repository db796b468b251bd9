//! Where the configuration file is looked for, and which store root wins.
//!
//! The file: `--config FILE`, else `$HOIST_CONFIG`, else the default
//! location: `/etc/hoist/config.toml` for root, and for a user (rootless
//! hoist included) `$XDG_CONFIG_HOME/hoist/config.toml`, else
//! `~/.config/hoist/config.toml` (buildkitd's and containers' split). A
//! file named by the flag or the variable must exist; a missing default
//! file means no configuration.
//!
//! The store: `--root`, else `$HOIST_ROOT`, else `root` in the file, else
//! the built-in default ([`crate::store::default_root`]).
//!
//! Rootless hoist re-executes itself as root of a user namespace and hands
//! the child the user's default store as `$HOIST_ROOT`
//! (`hoist_sandbox::rootless`). The child is told apart from real root by
//! `HOIST_IN_USERNS` in its environment, and a `$HOIST_ROOT` equal to that
//! handed-down default counts as unset, so the file's `root` still applies.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::{Config, ConfigError, Result};
use crate::store::{StoreError, default_root_with};

/// The system-wide file root uses.
pub const SYSTEM_CONFIG: &str = "/etc/hoist/config.toml";

/// Who runs hoist, for the default locations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runner {
    /// Root of the host.
    Root,
    /// An ordinary user, unprivileged.
    User,
    /// A user's hoist re-executed as root of its own user namespace.
    Rootless,
}

impl Runner {
    /// This process.
    pub fn current() -> Runner {
        let euid_root = rustix::process::geteuid().is_root();
        let in_userns = crate::ops::run::rootless_reexec();
        match (euid_root, in_userns) {
            (true, false) => Runner::Root,
            (true, true) => Runner::Rootless,
            (false, _) => Runner::User,
        }
    }
}

/// Who named the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    Flag,
    Env,
    Default,
}

impl ConfigSource {
    pub fn name(self) -> &'static str {
        match self {
            ConfigSource::Flag => "--config",
            ConfigSource::Env => "$HOIST_CONFIG",
            ConfigSource::Default => "the default location",
        }
    }
}

/// The file to read and who named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    pub path: PathBuf,
    pub source: ConfigSource,
}

/// [`locate_with`] for this process.
pub fn locate(explicit: Option<&Path>) -> Option<Located> {
    locate_with(explicit, |k| std::env::var_os(k), Runner::current())
}

/// The file `explicit` (`--config`), `$HOIST_CONFIG` or the default
/// location names; `None` when a user has neither `$XDG_CONFIG_HOME` nor
/// `$HOME`.
pub fn locate_with(
    explicit: Option<&Path>,
    env: impl Fn(&str) -> Option<OsString>,
    runner: Runner,
) -> Option<Located> {
    let set = |k: &str| env(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    let (path, source) = if let Some(path) = explicit {
        (path.to_path_buf(), ConfigSource::Flag)
    } else if let Some(path) = set("HOIST_CONFIG") {
        (path, ConfigSource::Env)
    } else if runner == Runner::Root {
        (PathBuf::from(SYSTEM_CONFIG), ConfigSource::Default)
    } else {
        // The XDG spec says to ignore a relative XDG_CONFIG_HOME.
        let dir = set("XDG_CONFIG_HOME")
            .filter(|p| p.is_absolute())
            .or_else(|| set("HOME").map(|home| home.join(".config")))?;
        (dir.join("hoist").join("config.toml"), ConfigSource::Default)
    };
    Some(Located { path, source })
}

impl Config {
    /// The configuration for this process (see the module docs).
    pub fn discover(explicit: Option<&Path>) -> Result<Config> {
        Config::from_located(locate(explicit))
    }

    /// Load what [`locate_with`] found: a missing file is an error unless
    /// it is the default location's.
    pub fn from_located(located: Option<Located>) -> Result<Config> {
        let Some(Located { path, source }) = located else {
            return Ok(Config::default());
        };
        match Config::load(&path) {
            Err(ConfigError::Read { source: e, .. })
                if e.kind() == std::io::ErrorKind::NotFound =>
            {
                match source {
                    ConfigSource::Default => Ok(Config::default()),
                    _ => Err(ConfigError::Missing {
                        path,
                        source_name: source.name(),
                    }),
                }
            }
            other => other,
        }
    }
}

/// [`store_root_with`] for this process.
pub fn store_root(flag: Option<&Path>, config: &Config) -> Result<PathBuf, StoreError> {
    store_root_with(flag, config, |k| std::env::var_os(k), Runner::current())
}

/// The store root: `flag` (`--root`), else `$HOIST_ROOT`, else the
/// config's `root`, else the built-in default for `runner`.
pub fn store_root_with(
    flag: Option<&Path>,
    config: &Config,
    env: impl Fn(&str) -> Option<OsString>,
    runner: Runner,
) -> Result<PathBuf, StoreError> {
    if let Some(root) = flag {
        return Ok(root.to_path_buf());
    }
    let without_hoist_root = |k: &str| if k == "HOIST_ROOT" { None } else { env(k) };
    let builtin = || default_root_with(without_hoist_root, runner == Runner::Root);
    if let Some(root) = env("HOIST_ROOT")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
    {
        // Rootless: the parent hands its default down as $HOIST_ROOT.
        let handed_down = runner == Runner::Rootless && builtin().is_ok_and(|d| d == root);
        if !handed_down {
            return Ok(root);
        }
    }
    match &config.root {
        Some(root) => Ok(root.clone()),
        None => builtin(),
    }
}
