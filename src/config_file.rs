//! The configuration file for the commands (`hoist_engine::config`):
//! `main` names it once ([`init`]), and what needs it loads it on first
//! use ([`get`]), so a command that reads no setting never fails on it.
//! See `docs/configuration.md`.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::Result;
use hoist_engine::config_file::{BuildDefaults, Config, ConfigError};
use hoist_engine::export::Compression;

use crate::report::SourceError;

static EXPLICIT: OnceLock<Option<PathBuf>> = OnceLock::new();
static LOADED: OnceLock<Result<Config, ConfigError>> = OnceLock::new();

/// Remember `--config FILE` (call once, before [`get`]).
pub fn init(explicit: Option<PathBuf>) {
    let _ = EXPLICIT.set(explicit);
}

/// The configuration: the file `--config`, `$HOIST_CONFIG` or the default
/// location names, loaded and checked once.
pub fn get() -> Result<&'static Config> {
    let loaded = LOADED.get_or_init(|| Config::discover(EXPLICIT.get().and_then(|p| p.as_deref())));
    loaded.as_ref().map_err(report)
}

/// A config error as the CLI prints it: `file:line:col: message`, the
/// line and a caret, as for Dockerfile errors.
fn report(err: &ConfigError) -> anyhow::Error {
    match err {
        ConfigError::At {
            path,
            line,
            column,
            message,
            line_text,
        } => anyhow::Error::new(SourceError {
            file: path.display().to_string(),
            pos: hoist_dockerfile::Pos {
                line: *line,
                column: *column,
            },
            message: message.clone(),
            line_text: (*line > 0).then(|| line_text.clone()),
        }),
        other => anyhow::anyhow!("{other}"),
    }
}

/// The store: `--root`, `$HOIST_ROOT`, the file's `root`, the default.
pub fn store_root(flag: Option<&Path>) -> Result<PathBuf> {
    Ok(hoist_engine::config_file::store_root(flag, get()?)?)
}

/// `hoist build`'s flags that were not given, from the file's `[build]`
/// (a flag always wins).
pub fn apply_build_defaults(
    platform: &mut Option<String>,
    network: &mut Option<String>,
) -> Result<()> {
    let defaults: &BuildDefaults = &get()?.build;
    for (flag, default) in [(platform, &defaults.platform), (network, &defaults.network)] {
        if flag.is_none() {
            flag.clone_from(default);
        }
    }
    Ok(())
}

/// The compression for image outputs whose `-o` names none: the file's
/// `[build] compression`, else gzip (BuildKit's default).
pub fn output_compression() -> Compression {
    get()
        .ok()
        .and_then(|c| c.build.compression)
        .unwrap_or(Compression::Gzip)
}
