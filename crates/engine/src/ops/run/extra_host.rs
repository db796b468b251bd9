//! `--add-host HOST:IP` (buildx's flag): lines added to every `RUN`
//! step's generated `/etc/hosts`, never to the image.

use std::net::IpAddr;

/// An `--add-host` value buildx would refuse (or that needs a daemon).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid --add-host {spec:?}: {why}")]
pub struct ExtraHostError {
    /// The value as given.
    pub spec: String,
    /// What is wrong with it.
    pub why: ExtraHostProblem,
}

/// What is wrong with an `--add-host` value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExtraHostProblem {
    /// Neither `HOST:IP` nor `HOST=IP`.
    #[error("expected HOST:IP")]
    Shape,
    /// `host-gateway`, which only a daemon can name.
    #[error("host-gateway needs a Docker daemon to name it; give the address")]
    HostGateway,
    /// An address that does not parse, as given.
    #[error("{0:?} is not an IP address")]
    NotAnAddress(String),
    /// A host name with white space or control characters.
    #[error("a host name has no spaces")]
    HostName,
}

/// One `--add-host`: `HOST:IP` or `HOST=IP`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraHost {
    pub host: String,
    pub ip: IpAddr,
}

impl ExtraHost {
    /// buildx's parsing (`toBuildkitExtraHosts`): `HOST=IP`, else split at
    /// the first `:` (so `HOST:::1` is an IPv6 address); the address may be
    /// in square brackets. `host-gateway` needs a daemon to say what it
    /// is: refused.
    pub fn parse(spec: &str) -> Result<ExtraHost, ExtraHostError> {
        let invalid = |why| ExtraHostError {
            spec: spec.to_owned(),
            why,
        };
        let (host, ip) = spec
            .split_once('=')
            .or_else(|| spec.split_once(':'))
            .filter(|(h, ip)| !h.is_empty() && !ip.is_empty())
            .ok_or_else(|| invalid(ExtraHostProblem::Shape))?;
        if ip == "host-gateway" {
            return Err(invalid(ExtraHostProblem::HostGateway));
        }
        let bare = ip
            .strip_prefix('[')
            .and_then(|i| i.strip_suffix(']'))
            .unwrap_or(ip);
        let ip = bare
            .parse()
            .map_err(|_| invalid(ExtraHostProblem::NotAnAddress(ip.to_owned())))?;
        if host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid(ExtraHostProblem::HostName));
        }
        Ok(ExtraHost {
            host: host.to_string(),
            ip,
        })
    }

    /// The line BuildKit writes for it (`IP\tHOST`).
    pub fn line(&self) -> String {
        format!("{}\t{}\n", self.ip, self.host)
    }

    /// How it goes into a cache key (BuildKit keys an ExecOp's extra hosts).
    pub fn key(&self) -> String {
        format!("{}={}", self.host, self.ip)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_as_buildx() {
        let h = ExtraHost::parse("db:10.0.0.5").unwrap();
        assert_eq!(h.line(), "10.0.0.5\tdb\n");
        assert_eq!(ExtraHost::parse("db=10.0.0.5").unwrap(), h);
        assert_eq!(ExtraHost::parse("v6:::1").unwrap().line(), "::1\tv6\n");
        assert_eq!(
            ExtraHost::parse("v6=[2001:db8::1]").unwrap().line(),
            "2001:db8::1\tv6\n"
        );
        for bad in [
            "db",
            "db:",
            ":1.2.3.4",
            "db:nope",
            "db:host-gateway",
            "a b:1.2.3.4",
        ] {
            assert!(ExtraHost::parse(bad).is_err(), "{bad}");
        }
    }
}
