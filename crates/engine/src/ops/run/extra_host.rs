//! `--add-host HOST:IP` (buildx's flag): lines added to every `RUN`
//! step's generated `/etc/hosts`, never to the image.

use std::net::IpAddr;

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
    pub fn parse(spec: &str) -> Result<ExtraHost, String> {
        let (host, ip) = spec
            .split_once('=')
            .or_else(|| spec.split_once(':'))
            .filter(|(h, ip)| !h.is_empty() && !ip.is_empty())
            .ok_or_else(|| format!("invalid --add-host {spec:?}: expected HOST:IP"))?;
        if ip == "host-gateway" {
            return Err(format!(
                "invalid --add-host {spec:?}: host-gateway needs a Docker daemon to name it; give the address"
            ));
        }
        let bare = ip
            .strip_prefix('[')
            .and_then(|i| i.strip_suffix(']'))
            .unwrap_or(ip);
        let ip = bare
            .parse()
            .map_err(|_| format!("invalid --add-host {spec:?}: {ip:?} is not an IP address"))?;
        if host.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!(
                "invalid --add-host {spec:?}: a host name has no spaces"
            ));
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
