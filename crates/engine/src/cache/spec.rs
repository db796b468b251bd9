//! `--cache-to` / `--cache-from` in `docker buildx` syntax:
//! `type=registry,ref=REF[,mode=min|max][,compression=gzip|zstd|uncompressed][,cache-mounts=true]`,
//! `type=local,dest=DIR` (export) / `type=local,src=DIR` (import) and
//! `type=inline`. A bare value is `type=registry,ref=VALUE`, as buildx.

use std::path::PathBuf;

use super::CacheError;
use crate::layer::Compression;

/// Which steps an export carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The target stage's steps (the layers of the image), as BuildKit's
    /// default.
    Min,
    /// Every step of every stage the build ran.
    Max,
}

/// Where a cache lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Registry(String),
    Local(PathBuf),
    /// Records inside the image's own config (export), read back from an
    /// image reference with `type=registry` (import).
    Inline,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheSpec {
    pub location: Location,
    pub mode: Mode,
    pub compression: Compression,
    /// Also carry `RUN --mount=type=cache` directories.
    pub cache_mounts: bool,
}

impl CacheSpec {
    /// Parse one `--cache-to` (`export`) or `--cache-from` value.
    pub fn parse(value: &str, export: bool) -> Result<CacheSpec, CacheError> {
        let bad = |why: String| CacheError::Spec {
            spec: value.to_string(),
            reason: why,
        };
        if !value.contains('=') {
            return Ok(CacheSpec {
                location: Location::Registry(value.to_string()),
                mode: Mode::Min,
                compression: Compression::Gzip,
                cache_mounts: false,
            });
        }
        let mut kind = None;
        let (mut reference, mut dest, mut src) = (None, None, None);
        let mut mode = Mode::Min;
        let mut compression = Compression::Gzip;
        let mut cache_mounts = false;
        for field in value.split(',') {
            let (k, v) = field
                .split_once('=')
                .ok_or_else(|| bad(format!("{field:?} is not key=value")))?;
            match k.trim() {
                "type" => kind = Some(v.to_string()),
                "ref" => reference = Some(v.to_string()),
                "dest" => dest = Some(PathBuf::from(v)),
                "src" => src = Some(PathBuf::from(v)),
                "mode" => {
                    mode = match v {
                        "min" => Mode::Min,
                        "max" => Mode::Max,
                        other => return Err(bad(format!("mode {other:?} (min or max)"))),
                    }
                }
                "compression" => {
                    compression = match v {
                        "gzip" => Compression::Gzip,
                        "zstd" => Compression::Zstd,
                        "uncompressed" => Compression::None,
                        other => {
                            return Err(bad(format!(
                                "compression {other:?} (gzip, zstd or uncompressed)"
                            )));
                        }
                    }
                }
                "cache-mounts" => {
                    cache_mounts = v
                        .parse()
                        .map_err(|_| bad(format!("cache-mounts {v:?} (true or false)")))?
                }
                // buildx keys hoist accepts and has no use for.
                "oci-mediatypes" | "image-manifest" | "ignore-error" | "compression-level"
                | "force-compression" | "digest" | "tag" => {}
                other => return Err(bad(format!("unknown key {other:?}"))),
            }
        }
        let location = match kind.as_deref().unwrap_or("registry") {
            "registry" => Location::Registry(
                reference.ok_or_else(|| bad("type=registry needs ref=REF".into()))?,
            ),
            "local" if export => {
                Location::Local(dest.ok_or_else(|| bad("type=local needs dest=DIR".into()))?)
            }
            "local" => Location::Local(src.ok_or_else(|| bad("type=local needs src=DIR".into()))?),
            "inline" if export => Location::Inline,
            "inline" => {
                return Err(bad(
                    "an inline cache is read with type=registry,ref=IMAGE".into()
                ));
            }
            other => {
                return Err(bad(format!(
                    "type {other:?} (registry, local or inline; gha and s3 are not supported)"
                )));
            }
        };
        Ok(CacheSpec {
            location,
            mode,
            compression,
            cache_mounts,
        })
    }

    /// What the progress output calls this cache.
    pub fn describe(&self) -> String {
        match &self.location {
            Location::Registry(r) => format!("registry {r}"),
            Location::Local(d) => format!("local {}", d.display()),
            Location::Inline => "inline".to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buildx_forms() {
        let s = CacheSpec::parse("type=registry,ref=r:5000/c:x,mode=max", true).unwrap();
        assert_eq!(s.location, Location::Registry("r:5000/c:x".into()));
        assert_eq!(s.mode, Mode::Max);
        assert_eq!(s.compression, Compression::Gzip);
        let s = CacheSpec::parse("r:5000/c", false).unwrap();
        assert_eq!(s.location, Location::Registry("r:5000/c".into()));
        let s = CacheSpec::parse("type=local,dest=/tmp/c,compression=zstd", true).unwrap();
        assert_eq!(s.location, Location::Local("/tmp/c".into()));
        assert_eq!(s.compression, Compression::Zstd);
        let s = CacheSpec::parse("type=local,src=/tmp/c", false).unwrap();
        assert_eq!(s.location, Location::Local("/tmp/c".into()));
        let s = CacheSpec::parse("type=inline", true).unwrap();
        assert_eq!(s.location, Location::Inline);
        assert!(
            CacheSpec::parse("type=registry,ref=x,cache-mounts=true", true)
                .unwrap()
                .cache_mounts
        );
    }

    #[test]
    fn errors_name_the_problem() {
        for (v, export, want) in [
            ("type=local", true, "dest=DIR"),
            ("type=local,dest=/x", false, "src=DIR"),
            ("type=gha", true, "gha"),
            ("type=registry,ref=x,mode=all", true, "mode"),
            ("type=registry,ref=x,foo=1", true, "foo"),
            ("type=inline", false, "type=registry,ref=IMAGE"),
        ] {
            let e = CacheSpec::parse(v, export).unwrap_err().to_string();
            assert!(e.contains(want), "{v}: {e}");
        }
    }
}
