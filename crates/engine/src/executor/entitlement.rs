//! Entitlements (`hoist build --allow`, buildx's flag): what a build may
//! ask for beyond the default sandbox. A step (or `--network`) that needs
//! one not granted is refused with BuildKit's message (`network.host is not
//! allowed`, `security.insecure is not allowed`) before anything runs. The
//! configuration file's `[build] allow` grants them for a machine
//! (docs/network.md, docs/security.md).

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// One entitlement, as buildx spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Entitlement {
    /// `network.host`: `--network host` and `RUN --network=host` share the
    /// host's network namespace.
    NetworkHost,
    /// `security.insecure`: `RUN --security=insecure` (no seccomp filter,
    /// every capability).
    SecurityInsecure,
}

impl Entitlement {
    pub const ALL: [Entitlement; 2] = [Entitlement::NetworkHost, Entitlement::SecurityInsecure];

    pub fn name(self) -> &'static str {
        match self {
            Entitlement::NetworkHost => "network.host",
            Entitlement::SecurityInsecure => "security.insecure",
        }
    }
}

impl fmt::Display for Entitlement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An `--allow` value hoist does not know (buildx's `unknown entitlement`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown entitlement {name} (hoist knows {})", Entitlement::ALL.map(|e| e.name()).join(", "))]
pub struct UnknownEntitlement {
    pub name: String,
}

/// An entitlement the build needs and was not granted: BuildKit's refusal,
/// and how to grant it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0} is not allowed: grant it with `hoist build --allow {0}` (buildx's flag), or for \
     this machine with `allow = [\"{0}\"]` in the configuration file's [build] table"
)]
pub struct NotAllowed(pub Entitlement);

impl FromStr for Entitlement {
    type Err = UnknownEntitlement;

    /// buildx's names.
    fn from_str(s: &str) -> Result<Entitlement, UnknownEntitlement> {
        Entitlement::ALL
            .into_iter()
            .find(|e| e.name() == s.trim())
            .ok_or_else(|| UnknownEntitlement {
                name: s.to_string(),
            })
    }
}

/// The granted set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Entitlements(BTreeSet<Entitlement>);

impl Entitlements {
    /// Parse `--allow` values; each may be a comma-separated list, as
    /// buildx accepts (`--allow network.host,security.insecure`).
    pub fn parse<S: AsRef<str>>(values: &[S]) -> Result<Entitlements, UnknownEntitlement> {
        let mut set = BTreeSet::new();
        for v in values {
            for name in v.as_ref().split(',').filter(|n| !n.trim().is_empty()) {
                set.insert(name.parse()?);
            }
        }
        Ok(Entitlements(set))
    }

    pub fn grant(&mut self, e: Entitlement) {
        self.0.insert(e);
    }

    pub fn allows(&self, e: Entitlement) -> bool {
        self.0.contains(&e)
    }

    /// `Ok` when `e` is granted; else BuildKit's refusal with how to grant it.
    pub fn require(&self, e: Entitlement) -> Result<(), NotAllowed> {
        if self.allows(e) {
            return Ok(());
        }
        Err(NotAllowed(e))
    }
}

/// Before anything runs (as BuildKit validates entitlements when it loads
/// the LLB): the first step of the plan that asks for an entitlement not
/// granted (`RUN --security=insecure`, `RUN --network=host`, the build's
/// `--network host`; `ONBUILD` triggers included), as an error at its line.
pub fn check_plan(
    plan: &crate::plan::Plan,
    granted: &Entitlements,
) -> Result<(), super::BuildError> {
    use crate::plan::Op;
    for id in plan.graph.needed(&[plan.target]) {
        let step = &plan.graph.vertex(id).op;
        let Op::Exec(op) = &step.op else {
            continue;
        };
        exec_allowed(op.security, op.network, granted)
            .map_err(|e| e.at_step(step.range, &step.stage, &step.text))?;
    }
    Ok(())
}

/// Whether a `RUN` with this security and network may run.
pub(super) fn exec_allowed(
    security: crate::ops::run::Security,
    network: crate::ops::run::Network,
    granted: &Entitlements,
) -> Result<(), super::BuildError> {
    if security == crate::ops::run::Security::Insecure {
        granted
            .require(Entitlement::SecurityInsecure)
            .map_err(|e| super::BuildError::Unsupported(format!("RUN --security=insecure: {e}")))?;
    }
    if network == crate::ops::run::Network::Host {
        granted
            .require(Entitlement::NetworkHost)
            .map_err(|e| super::BuildError::Unsupported(e.to_string()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_refuse_as_buildkit() {
        let none = Entitlements::default();
        let msg = none
            .require(Entitlement::NetworkHost)
            .unwrap_err()
            .to_string();
        // BuildKit's solver: errors.Errorf("%s is not allowed", EntitlementNetworkHost).
        assert!(msg.starts_with("network.host is not allowed"), "{msg}");
        let some = Entitlements::parse(&["network.host"]).unwrap();
        assert!(some.require(Entitlement::NetworkHost).is_ok());
        assert_eq!(Entitlements::parse(&["network.host,"]).unwrap(), some);
        let err = Entitlements::parse(&["network.hots"])
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("unknown entitlement network.hots"), "{err}");
        let both = Entitlements::parse(&[" security.insecure,network.host"]).unwrap();
        assert!(
            both.allows(Entitlement::SecurityInsecure) && both.allows(Entitlement::NetworkHost)
        );
        let msg = none
            .require(Entitlement::SecurityInsecure)
            .unwrap_err()
            .to_string();
        assert!(msg.starts_with("security.insecure is not allowed"), "{msg}");
        assert!(msg.contains("--allow security.insecure"), "{msg}");
    }
}
