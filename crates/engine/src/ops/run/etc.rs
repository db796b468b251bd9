//! The files every step sees in `/etc`, generated per step and bind-mounted
//! read-only (never part of the layer): `hosts` and `resolv.conf`, as
//! BuildKit mounts them. `/etc/hostname` is the image's own (BuildKit does
//! not mount one; the hostname itself is set in the uts namespace).

use std::path::Path;

use hoist_sandbox::{MountSpec, Network};

use super::{RunError, bind, io};

/// BuildKit's default `/etc/hosts`.
const HOSTS: &str =
    "127.0.0.1\tlocalhost buildkitsandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n";

/// Write the files into `dir`; the mounts that put them in place.
pub(super) fn files(dir: &Path, network: Network) -> Result<Vec<MountSpec>, RunError> {
    let hosts = dir.join("hosts");
    std::fs::write(&hosts, HOSTS).map_err(io("write", &hosts))?;
    let resolv = dir.join("resolv.conf");
    std::fs::write(&resolv, resolv_conf(network)).map_err(io("write", &resolv))?;
    Ok(vec![
        bind(hosts, "/etc/hosts", true),
        bind(resolv, "/etc/resolv.conf", true),
    ])
}

/// The host's resolver configuration; a local stub resolver (systemd's
/// 127.0.0.53) is replaced by the upstream list behind it, and with no
/// server at all, Google's, as BuildKit does. With no network, no servers.
fn resolv_conf(network: Network) -> String {
    let read = |p: &str| std::fs::read_to_string(p).ok();
    let host = read("/etc/resolv.conf").unwrap_or_default();
    let stub = host
        .lines()
        .any(|l| l.trim_start().starts_with("nameserver 127.0.0.53"));
    let text = if stub {
        read("/run/systemd/resolve/resolv.conf").unwrap_or(host)
    } else {
        host
    };
    if network == Network::None {
        // Nothing is reachable; keep the search options only.
        return text
            .lines()
            .filter(|l| !l.trim_start().starts_with("nameserver"))
            .map(|l| format!("{l}\n"))
            .collect();
    }
    if text
        .lines()
        .any(|l| l.trim_start().starts_with("nameserver"))
    {
        return text;
    }
    format!("{text}nameserver 8.8.8.8\nnameserver 8.8.4.4\n")
}
