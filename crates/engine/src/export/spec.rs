//! `-o/--output` specs in `docker buildx build` syntax, shared by
//! `hoist build -o` and `hoist save`:
//! `type=oci,dest=out.tar`, `type=docker,dest=-`, `type=local,dest=dir`,
//! `type=tar,dest=fs.tar`, `type=image,name=REF,push=true`, `type=docker`
//! alone (load into the local engine), and the
//! shorthand `-o DIR` (= `type=local,dest=DIR`) and `-o -` (= `type=tar,dest=-`).

use std::collections::BTreeMap;
use std::path::PathBuf;

/// Where `dest=` points.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dest {
    /// `dest=-`: standard output.
    Stdout,
    Path(PathBuf),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    Gzip,
    Zstd,
    Uncompressed,
}

/// The exporter and its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputKind {
    /// OCI image layout (tarball unless `tar=false`), also carrying
    /// Docker's `manifest.json` so `docker load` accepts it.
    Oci { dest: Dest, tar: bool },
    /// Docker archive (`docker save` format).
    Docker { dest: Dest },
    /// `type=docker` without `dest=` (and `hoist build --load`): the
    /// Docker archive loaded into the local Docker or Podman engine, as
    /// buildx loads it (`export::daemon`).
    Load,
    /// The image's filesystem as a directory.
    Local { dest: PathBuf },
    /// The image's filesystem as one tar.
    Tar { dest: Dest },
    /// Into the local store under `name`, and pushed when `push=true`.
    Image { names: Vec<String>, push: bool },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputSpec {
    pub kind: OutputKind,
    /// `name=`: the `org.opencontainers.image.ref.name` annotation and the
    /// tag in `manifest.json`.
    pub name: Option<String>,
    pub compression: Option<Compression>,
    pub compression_level: Option<i32>,
    /// `oci-mediatypes=false` writes Docker schema2 media types.
    pub oci_media_types: Option<bool>,
    /// `force-compression=true` recompresses layers already compressed differently.
    pub force_compression: bool,
    /// `annotation[-TYPE][[PLATFORM]].KEY=VALUE` (`export::annotation`).
    pub annotations: Vec<super::annotation::Annotation>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid output {spec:?}: {reason}")]
pub struct SpecError {
    pub spec: String,
    pub reason: String,
}

impl OutputSpec {
    /// Parse one `-o` value.
    pub fn parse(spec: &str) -> Result<OutputSpec, SpecError> {
        let err = |reason: String| SpecError {
            spec: spec.to_string(),
            reason,
        };
        if spec == "-" {
            return Ok(OutputSpec::new(OutputKind::Tar { dest: Dest::Stdout }));
        }
        if !spec.contains('=') {
            return Ok(OutputSpec::new(OutputKind::Local {
                dest: PathBuf::from(spec),
            }));
        }
        let mut fields: BTreeMap<String, String> = BTreeMap::new();
        for field in split_csv(spec).map_err(|e| err(e.to_string()))? {
            let (k, v) = field
                .split_once('=')
                .ok_or_else(|| err(format!("{field:?} is not key=value")))?;
            // Annotation keys keep their case (OCI keys are case-sensitive).
            let k = if k.trim().starts_with("annotation") {
                k.trim().to_string()
            } else {
                k.trim().to_lowercase()
            };
            if fields.insert(k.clone(), v.to_string()).is_some() && k != "name" {
                return Err(err(format!("{k} given twice")));
            }
        }
        let typ = fields
            .remove("type")
            .ok_or_else(|| err("type= is required".into()))?;
        let dest = |fields: &mut BTreeMap<String, String>| -> Result<Dest, SpecError> {
            match fields.remove("dest").as_deref() {
                None | Some("") => Err(err(format!("type={typ} needs dest=FILE or dest=-"))),
                Some("-") => Ok(Dest::Stdout),
                Some(p) => Ok(Dest::Path(PathBuf::from(p))),
            }
        };
        let boolean = |k: &str, v: &str| -> Result<bool, SpecError> {
            match v {
                "true" | "1" => Ok(true),
                "false" | "0" => Ok(false),
                _ => Err(err(format!("{k}={v}: expected true or false"))),
            }
        };
        let name = fields.remove("name");
        let kind = match typ.as_str() {
            "oci" => {
                let tar = match fields.remove("tar") {
                    Some(v) => boolean("tar", &v)?,
                    None => true,
                };
                let d = dest(&mut fields)?;
                if !tar && d == Dest::Stdout {
                    return Err(err("tar=false needs a directory in dest=".into()));
                }
                OutputKind::Oci { dest: d, tar }
            }
            "docker" if fields.get("dest").is_none_or(|d| d.is_empty()) => {
                fields.remove("dest");
                OutputKind::Load
            }
            "docker" => OutputKind::Docker {
                dest: dest(&mut fields)?,
            },
            "local" => match dest(&mut fields)? {
                Dest::Path(p) => OutputKind::Local { dest: p },
                Dest::Stdout => return Err(err("type=local needs a directory in dest=".into())),
            },
            "tar" => OutputKind::Tar {
                dest: dest(&mut fields)?,
            },
            "image" | "registry" => {
                let push = match fields.remove("push") {
                    Some(v) => boolean("push", &v)?,
                    None => typ == "registry",
                };
                let names: Vec<String> = name
                    .as_deref()
                    .unwrap_or("")
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect();
                if push && names.is_empty() {
                    return Err(err("push=true needs name=REF".into()));
                }
                OutputKind::Image { names, push }
            }
            other => {
                return Err(err(format!(
                    "unknown type {other:?} (known: oci, docker, local, tar, image, registry)"
                )));
            }
        };
        let compression = match fields.remove("compression").as_deref() {
            None => None,
            Some("gzip") => Some(Compression::Gzip),
            Some("zstd") => Some(Compression::Zstd),
            Some("uncompressed") => Some(Compression::Uncompressed),
            Some(o) => {
                return Err(err(format!(
                    "compression={o}: expected gzip, zstd or uncompressed"
                )));
            }
        };
        let compression_level = match fields.remove("compression-level") {
            None => None,
            Some(v) => Some(
                v.parse::<i32>()
                    .map_err(|_| err(format!("compression-level={v}: expected an integer")))?,
            ),
        };
        let oci_media_types = match fields.remove("oci-mediatypes") {
            None => None,
            Some(v) => Some(boolean("oci-mediatypes", &v)?),
        };
        let force_compression = match fields.remove("force-compression") {
            None => false,
            Some(v) => boolean("force-compression", &v)?,
        };
        let mut annotations = Vec::new();
        for (k, v) in std::mem::take(&mut fields) {
            match super::annotation::parse_attr(&k, &v) {
                Some(a) => annotations.push(a.map_err(|e| err(e.to_string()))?),
                None => {
                    fields.insert(k, v);
                }
            }
        }
        if !annotations.is_empty()
            && !matches!(
                kind,
                OutputKind::Oci { .. }
                    | OutputKind::Docker { .. }
                    | OutputKind::Load
                    | OutputKind::Image { .. }
            )
        {
            return Err(err(format!("type={typ} takes no annotations")));
        }
        if let Some(k) = fields.keys().next() {
            return Err(err(format!("unknown option {k:?} for type={typ}")));
        }
        Ok(OutputSpec {
            kind,
            name,
            compression,
            compression_level,
            oci_media_types,
            force_compression,
            annotations,
        })
    }

    fn new(kind: OutputKind) -> OutputSpec {
        OutputSpec {
            kind,
            name: None,
            compression: None,
            compression_level: None,
            oci_media_types: None,
            force_compression: false,
            annotations: Vec::new(),
        }
    }
}

/// A `"` without its closing `"` in a `-o` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unterminated quote")]
struct UnterminatedQuote;

/// Split on commas outside double quotes (`name="a,b"` stays one field).
fn split_csv(s: &str) -> Result<Vec<String>, UnterminatedQuote> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in s.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    if quoted {
        return Err(UnterminatedQuote);
    }
    out.push(cur);
    Ok(out.into_iter().filter(|f| !f.is_empty()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> OutputSpec {
        OutputSpec::parse(s).unwrap()
    }

    #[test]
    fn buildx_forms() {
        assert_eq!(
            p("type=oci,dest=out.tar").kind,
            OutputKind::Oci {
                dest: Dest::Path("out.tar".into()),
                tar: true
            }
        );
        assert_eq!(
            p("type=oci,dest=dir,tar=false").kind,
            OutputKind::Oci {
                dest: Dest::Path("dir".into()),
                tar: false
            }
        );
        assert_eq!(
            p("type=docker,dest=-").kind,
            OutputKind::Docker { dest: Dest::Stdout }
        );
        assert_eq!(
            p("type=local,dest=rootfs").kind,
            OutputKind::Local {
                dest: "rootfs".into()
            }
        );
        assert_eq!(
            p("type=tar,dest=fs.tar").kind,
            OutputKind::Tar {
                dest: Dest::Path("fs.tar".into())
            }
        );
        assert_eq!(
            p("./out").kind,
            OutputKind::Local {
                dest: "./out".into()
            }
        );
        assert_eq!(p("-").kind, OutputKind::Tar { dest: Dest::Stdout });
        let img = p("type=image,\"name=a:1,b:2\",push=true");
        assert_eq!(
            img.kind,
            OutputKind::Image {
                names: vec!["a:1".into(), "b:2".into()],
                push: true
            }
        );
        assert_eq!(
            p("type=registry,name=r/x").kind,
            OutputKind::Image {
                names: vec!["r/x".into()],
                push: true
            }
        );
    }

    #[test]
    fn docker_without_dest_loads_into_the_engine() {
        // buildx: `type=docker` with no `dest` loads into the docker instance.
        assert_eq!(p("type=docker").kind, OutputKind::Load);
        assert_eq!(p("type=docker,name=app:1").name.as_deref(), Some("app:1"));
        assert_eq!(
            p("type=docker,dest=-").kind,
            OutputKind::Docker { dest: Dest::Stdout }
        );
    }

    #[test]
    fn options() {
        let o = p(
            "type=oci,dest=o.tar,compression=zstd,compression-level=19,oci-mediatypes=false,name=app:1,force-compression=true",
        );
        assert_eq!(o.compression, Some(Compression::Zstd));
        assert_eq!(o.compression_level, Some(19));
        assert_eq!(o.oci_media_types, Some(false));
        assert_eq!(o.name.as_deref(), Some("app:1"));
        assert!(o.force_compression);
    }

    #[test]
    fn errors_name_the_problem() {
        let e = |s: &str| OutputSpec::parse(s).unwrap_err().reason;
        assert_eq!(e("dest=x"), "type= is required");
        assert_eq!(e("type=oci"), "type=oci needs dest=FILE or dest=-");
        assert_eq!(
            e("type=nope,dest=x"),
            "unknown type \"nope\" (known: oci, docker, local, tar, image, registry)"
        );
        assert_eq!(
            e("type=oci,dest=x,compression=lz4"),
            "compression=lz4: expected gzip, zstd or uncompressed"
        );
        assert_eq!(
            e("type=oci,dest=x,bogus=1"),
            "unknown option \"bogus\" for type=oci"
        );
        assert_eq!(
            e("type=oci,dest=-,tar=false"),
            "tar=false needs a directory in dest="
        );
        assert_eq!(e("type=image,push=true"), "push=true needs name=REF");
        assert_eq!(
            e("type=local,dest=-"),
            "type=local needs a directory in dest="
        );
        assert_eq!(
            e("type=oci,dest=x,tar=maybe"),
            "tar=maybe: expected true or false"
        );
    }
}
