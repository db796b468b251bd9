//! Entitlements (`hoist build --allow`, buildx's `--allow`): what a
//! Dockerfile may ask for only when the person running the build grants
//! it. Without the grant, the step that asks is refused with BuildKit's
//! message (`security.insecure is not allowed`) and what to pass.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// One entitlement, by buildx's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Entitlement {
    /// `security.insecure`: `RUN --security=insecure` (no seccomp filter,
    /// every capability).
    SecurityInsecure,
}

impl Entitlement {
    pub fn name(self) -> &'static str {
        match self {
            Entitlement::SecurityInsecure => "security.insecure",
        }
    }
}

impl fmt::Display for Entitlement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Entitlement {
    type Err = String;

    fn from_str(s: &str) -> Result<Entitlement, String> {
        match s.trim() {
            "security.insecure" => Ok(Entitlement::SecurityInsecure),
            other => Err(format!(
                "invalid entitlement {other:?} (hoist grants: security.insecure)"
            )),
        }
    }
}

/// The entitlements a build was granted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entitlements(BTreeSet<Entitlement>);

impl Entitlements {
    /// From `--allow` values (each may hold several, comma-separated, as
    /// buildx accepts).
    pub fn parse<'a>(values: impl IntoIterator<Item = &'a str>) -> Result<Entitlements, String> {
        let mut set = BTreeSet::new();
        for v in values {
            for name in v.split(',').filter(|n| !n.trim().is_empty()) {
                set.insert(name.parse()?);
            }
        }
        Ok(Entitlements(set))
    }

    pub fn allows(&self, e: Entitlement) -> bool {
        self.0.contains(&e)
    }

    /// `Ok` when granted; else BuildKit's refusal and the flag that grants it.
    pub fn check(&self, e: Entitlement) -> Result<(), String> {
        if self.allows(e) {
            return Ok(());
        }
        Err(format!(
            "{e} is not allowed (grant it with `hoist build --allow {e}`, as `docker buildx build \
             --allow {e}`)"
        ))
    }
}

/// Before anything runs (as BuildKit validates entitlements when it loads
/// the LLB): the first instruction of the `needed` stages that asks for an
/// entitlement not granted, as an error at its line. `ONBUILD` triggers
/// from a base image are checked when their step runs.
pub fn check_stages(
    df: &hoist_dockerfile::Dockerfile,
    needed: &[usize],
    granted: &Entitlements,
) -> Result<(), super::BuildError> {
    use hoist_dockerfile::instruction::{Command, Security};
    for &i in needed {
        let Some(stage) = df.stages.get(i) else {
            continue;
        };
        for ins in &stage.instructions {
            if let Command::Run(run) = &ins.command
                && run.security == Security::Insecure
            {
                granted.check(Entitlement::SecurityInsecure).map_err(|e| {
                    super::BuildError::Unsupported(format!("RUN --security=insecure: {e}"))
                        .at(ins.span.start.line)
                })?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_values_parse_as_buildx_takes_them() {
        let e = Entitlements::parse(["security.insecure"]).unwrap();
        assert!(e.allows(Entitlement::SecurityInsecure));
        assert!(e.check(Entitlement::SecurityInsecure).is_ok());
        let none = Entitlements::parse([]).unwrap();
        let err = none.check(Entitlement::SecurityInsecure).unwrap_err();
        assert!(err.starts_with("security.insecure is not allowed"), "{err}");
        assert!(err.contains("--allow security.insecure"), "{err}");
        let err = Entitlements::parse(["security.unknown"]).unwrap_err();
        assert!(err.contains("invalid entitlement"), "{err}");
        assert!(
            Entitlements::parse([" security.insecure,"])
                .unwrap()
                .allows(Entitlement::SecurityInsecure)
        );
    }
}
