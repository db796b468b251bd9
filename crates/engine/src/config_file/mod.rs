//! hoist's configuration file: TOML, read once per command.
//!
//! ```toml
//! root = "/srv/hoist"                  # the store (--root and $HOIST_ROOT win)
//!
//! [registry."registry.lan:5000"]       # buildkitd.toml's shape
//! insecure = true                      # plain HTTP and unverified TLS allowed
//! mirrors = ["mirror.lan:5000"]        # pulls try these first, in order
//!
//! [build]                              # defaults for `hoist build`; flags win
//! platform = "linux/arm64"
//! network = "none"
//! compression = "zstd"
//! allow = ["network.host"]             # entitlements (--allow adds)
//! ```
//!
//! The shape follows BuildKit's `buildkitd.toml` (`[registry."host"]`
//! tables with `mirrors`), and `insecure` means what it means in
//! containers-registries.conf(5): plain HTTP and TLS with certificates that
//! are not verified. Unknown keys and wrong types are errors naming the
//! file, line and column, so a typo never silently changes nothing.
//! [`locate`] says where the file is looked for and how the store root is
//! chosen.

mod locate;

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::export::Compression;

pub use locate::{ConfigSource, Located, Runner, locate, locate_with, store_root, store_root_with};

/// The settings of one registry, `[registry."host[:port]"]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryConfig {
    /// Plain HTTP and TLS without certificate verification are allowed.
    pub insecure: bool,
    /// `host[:port]` of mirrors that pulls try first, in order.
    pub mirrors: Vec<String>,
}

/// `[build]`: defaults for `hoist build` flags (a flag always wins).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildDefaults {
    /// `--platform`: `os/arch[/variant]`.
    pub platform: Option<String>,
    /// `--network`: `default`, `host` or `none`.
    pub network: Option<String>,
    /// The layer compression of image outputs whose `-o` does not say
    /// `compression=` (built-in: gzip, as BuildKit).
    pub compression: Option<Compression>,
    /// Entitlements every build on this machine has (`--allow` adds).
    pub allow: Vec<crate::executor::Entitlement>,
}

/// A loaded configuration file (or the empty one when there is none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// The file it came from, if any.
    pub path: Option<PathBuf>,
    /// `root`: the store location.
    pub root: Option<PathBuf>,
    /// `[registry."host[:port]"]` tables by domain.
    pub registries: BTreeMap<String, RegistryConfig>,
    pub build: BuildDefaults,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file named by `--config` or `$HOIST_CONFIG` is not there.
    #[error("config file {} (from {source_name}) does not exist", path.display())]
    Missing {
        path: PathBuf,
        source_name: &'static str,
    },
    #[error("config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A syntax error, an unknown key, a wrong type or a bad value;
    /// `line` and `column` are 1-based (0 when the position is unknown).
    #[error("{}{}: {message}", path.display(), position(*line, *column))]
    At {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
        /// The offending line as written (empty when unknown).
        line_text: String,
    },
}

fn position(line: usize, column: usize) -> String {
    if line == 0 {
        String::new()
    } else {
        format!(":{line}:{column}")
    }
}

pub type Result<T, E = ConfigError> = std::result::Result<T, E>;

/// The file as written; every value that is checked keeps its span.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    root: Option<Spanned<PathBuf>>,
    #[serde(default)]
    registry: BTreeMap<Spanned<String>, RawRegistry>,
    #[serde(default)]
    build: RawBuild,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRegistry {
    #[serde(default)]
    insecure: bool,
    #[serde(default)]
    mirrors: Vec<Spanned<String>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawBuild {
    platform: Option<Spanned<String>>,
    network: Option<Spanned<String>>,
    compression: Option<Spanned<String>>,
    #[serde(default)]
    allow: Vec<Spanned<String>>,
}

impl Config {
    /// Read and check the file at `path` (a missing file is an error).
    pub fn load(path: &Path) -> Result<Config> {
        let text = fs_err::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path)
    }

    /// Check `text` as the contents of `path` (used in messages only).
    pub fn parse(text: &str, path: &Path) -> Result<Config> {
        let at = |span: Option<Range<usize>>, message: String| at(text, path, span, message);
        let raw: RawConfig = toml::from_str(text).map_err(|e| at(e.span(), e.message().into()))?;
        let root = match raw.root {
            Some(root) if !root.get_ref().is_absolute() => {
                return Err(at(
                    Some(root.span()),
                    format!(
                        "root {:?} must be an absolute path",
                        root.get_ref().display()
                    ),
                ));
            }
            Some(root) => Some(root.into_inner()),
            None => None,
        };
        let mut registries = BTreeMap::new();
        for (name, settings) in raw.registry {
            let domain = check_host(name.get_ref())
                .map_err(|why| at(Some(name.span()), format!("registry {name:?}: {why}")))?;
            let mut mirrors: Vec<String> = Vec::new();
            for mirror in settings.mirrors {
                let host = check_host(mirror.get_ref())
                    .map_err(|why| at(Some(mirror.span()), format!("mirror {mirror:?}: {why}")))?;
                if host == domain {
                    return Err(at(
                        Some(mirror.span()),
                        format!("mirror {mirror:?} is the registry itself"),
                    ));
                }
                if !mirrors.contains(&host) {
                    mirrors.push(host);
                }
            }
            let config = RegistryConfig {
                insecure: settings.insecure,
                mirrors,
            };
            if registries.insert(domain.clone(), config).is_some() {
                return Err(at(
                    Some(name.span()),
                    format!("registry {name:?}: {domain} is configured twice"),
                ));
            }
        }
        let build = check_build(raw.build).map_err(|(span, message)| at(Some(span), message))?;
        Ok(Config {
            path: Some(path.to_path_buf()),
            root,
            registries,
            build,
        })
    }

    /// Registries marked `insecure = true`.
    pub fn insecure_registries(&self) -> Vec<String> {
        self.registries
            .iter()
            .filter(|(_, r)| r.insecure)
            .map(|(domain, _)| domain.clone())
            .collect()
    }

    /// Mirrors by registry domain (registries without mirrors left out).
    pub fn mirrors(&self) -> BTreeMap<String, Vec<String>> {
        self.registries
            .iter()
            .filter(|(_, r)| !r.mirrors.is_empty())
            .map(|(domain, r)| (domain.clone(), r.mirrors.clone()))
            .collect()
    }
}

/// A registry or mirror name that is not `host[:port]`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum HostError {
    #[error("empty name; expected host[:port]")]
    Empty,
    #[error(
        "expected host[:port] without a scheme (plain HTTP is `insecure = true` in the host's own [registry] table)"
    )]
    Scheme,
    #[error("expected host[:port]; a path (namespace) is not supported")]
    Path,
    #[error("{0:?} is not allowed in host[:port]")]
    Char(char),
    #[error("port {0:?} is not a number")]
    Port(String),
}

/// A registry or mirror name: `host[:port]` as image references spell
/// it, no scheme and no path. Docker Hub's other names become `docker.io`.
fn check_host(name: &str) -> Result<String, HostError> {
    if name.is_empty() {
        return Err(HostError::Empty);
    }
    if name.contains("://") {
        return Err(HostError::Scheme);
    }
    if name.contains('/') {
        return Err(HostError::Path);
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']' | '_')))
    {
        return Err(HostError::Char(bad));
    }
    if let Some((_, port)) = name.rsplit_once(':')
        && !name.ends_with(']')
        && port.parse::<u16>().is_err()
    {
        return Err(HostError::Port(port.to_owned()));
    }
    let lower = name.to_ascii_lowercase();
    Ok(match lower.as_str() {
        "index.docker.io" | "registry-1.docker.io" => crate::reference::DEFAULT_DOMAIN.into(),
        _ => lower,
    })
}

/// A bad value's span and the message.
type SpanError = (Range<usize>, String);

fn check_build(raw: RawBuild) -> Result<BuildDefaults, SpanError> {
    let one_of = |v: &Option<Spanned<String>>, key: &str, allowed: &[&str]| match v {
        Some(v) if !allowed.contains(&v.get_ref().as_str()) => Err((
            v.span(),
            format!(
                "build.{key} {:?}: expected one of {}",
                v.get_ref(),
                allowed.join(", ")
            ),
        )),
        Some(v) => Ok(Some(v.get_ref().clone())),
        None => Ok(None),
    };
    let platform = match &raw.platform {
        Some(p) => {
            hoist_dockerfile::Platform::parse(p.get_ref())
                .map_err(|e| (p.span(), format!("build.platform: {e}")))?;
            Some(p.get_ref().clone())
        }
        None => None,
    };
    let compression = one_of(
        &raw.compression,
        "compression",
        &["gzip", "zstd", "uncompressed"],
    )?
    .map(|c| match c.as_str() {
        "zstd" => Compression::Zstd,
        "uncompressed" => Compression::Uncompressed,
        _ => Compression::Gzip,
    });
    let mut allow = Vec::new();
    for name in &raw.allow {
        let e = name
            .get_ref()
            .parse()
            .map_err(|why| (name.span(), format!("build.allow: {why}")))?;
        if !allow.contains(&e) {
            allow.push(e);
        }
    }
    Ok(BuildDefaults {
        platform,
        network: one_of(&raw.network, "network", &["default", "host", "none"])?,
        compression,
        allow,
    })
}

/// An error at byte range `span` of `text`, as 1-based line and column
/// (in characters) with the line's text.
fn at(text: &str, path: &Path, span: Option<Range<usize>>, message: String) -> ConfigError {
    let (line, column, line_text) = match span {
        Some(span) => {
            let start = floor_char_boundary(text, span.start.min(text.len()));
            let before = &text[..start];
            let line_start = before.rfind('\n').map_or(0, |i| i + 1);
            let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
            (
                before.matches('\n').count() + 1,
                text[line_start..start].chars().count() + 1,
                text[line_start..line_end]
                    .trim_end_matches('\r')
                    .to_string(),
            )
        }
        None => (0, 0, String::new()),
    };
    ConfigError::At {
        path: path.to_path_buf(),
        line,
        column,
        message,
        line_text,
    }
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests;
