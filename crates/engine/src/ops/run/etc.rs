//! The files every step sees in `/etc`, generated per step and bind-mounted
//! read-only (never part of the layer): `hosts` and `resolv.conf`, as
//! BuildKit mounts them. `/etc/hostname` is the image's own (BuildKit does
//! not mount one; the hostname itself is set in the uts namespace).

use std::path::Path;

use hoist_sandbox::{MountSpec, Network, Stack};

use super::{ExtraHost, RunError, bind, io};

/// BuildKit's `/etc/hosts` (`initHostsFile`) for a step's hostname.
/// `--add-host`s follow, one `IP\tHOST` line each (`makeHostsFile`).
fn hosts(hostname: &str, extra: &[ExtraHost]) -> String {
    let mut text =
        format!("127.0.0.1\tlocalhost {hostname}\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    for h in extra {
        text.push_str(&h.line());
    }
    text
}

/// Write the files into `dir`; the mounts that put them in place.
pub(super) fn files(
    dir: &Path,
    network: Network,
    stack: Option<Stack>,
    hostname: &str,
    extra_hosts: &[ExtraHost],
) -> Result<Vec<MountSpec>, RunError> {
    let hosts_file = dir.join("hosts");
    std::fs::write(&hosts_file, hosts(hostname, extra_hosts)).map_err(io("write", &hosts_file))?;
    let resolv = dir.join("resolv.conf");
    let read = |p: &str| std::fs::read_to_string(p).ok();
    let text = resolv_conf(
        &read("/etc/resolv.conf").unwrap_or_default(),
        read("/run/systemd/resolve/resolv.conf").as_deref(),
        network,
        stack,
    );
    std::fs::write(&resolv, text).map_err(io("write", &resolv))?;
    Ok(vec![
        bind(hosts_file, "/etc/hosts", true),
        bind(resolv, "/etc/resolv.conf", true),
    ])
}

/// The step's `resolv.conf` from the host's (`host`, and systemd-resolved's
/// upstream list `systemd`). With no network, no servers. A private
/// network asks the stack's DNS forwarder alone (pasta `--dns-forward`,
/// slirp4netns's 10.0.2.3), which answers for the host's first resolver
/// from the host's side, as podman does with pasta: a resolver on the
/// host's loopback (systemd-resolved's 127.0.0.53, dnsmasq's 127.0.1.1)
/// cannot be reached from the step at all, and queries sent through pasta
/// straight to the host's own resolver timed out on this project's CI
/// machines while the forwarder answered (docs/network.md). The host's
/// network keeps its stub's upstream list, as Docker does. With no server
/// at all, Google's, as BuildKit.
fn resolv_conf(
    host: &str,
    systemd: Option<&str>,
    network: Network,
    stack: Option<Stack>,
) -> String {
    let nameserver = |l: &str| {
        l.trim_start()
            .strip_prefix("nameserver")
            .filter(|rest| rest.starts_with([' ', '\t']))
            .map(|rest| rest.trim().to_string())
    };
    if network == Network::None {
        // Nothing is reachable; keep the search options only.
        return host
            .lines()
            .filter(|l| nameserver(l).is_none())
            .map(|l| format!("{l}\n"))
            .collect();
    }
    let text = match (network, stack) {
        (Network::Private, Some(stack)) => {
            let mut forwarded = false;
            let mut out = String::new();
            for l in host.lines() {
                if nameserver(l).is_none() {
                    out.push_str(&format!("{l}\n"));
                } else if !forwarded {
                    forwarded = true;
                    out.push_str(&format!("nameserver {}\n", stack.dns_forwarder()));
                }
            }
            if !forwarded {
                out.push_str(&format!("nameserver {}\n", stack.dns_forwarder()));
            }
            out
        }
        _ => {
            let stub = host
                .lines()
                .any(|l| nameserver(l).as_deref() == Some("127.0.0.53"));
            match systemd {
                Some(upstream) if stub => upstream.to_string(),
                _ => host.to_string(),
            }
        }
    };
    if text.lines().any(|l| nameserver(l).is_some()) {
        return text;
    }
    format!("{text}nameserver 8.8.8.8\nnameserver 8.8.4.4\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    const STUB: &str = "# systemd\nnameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n";
    const UPSTREAM: &str = "nameserver 192.0.2.53\nsearch lan\n";

    #[test]
    fn private_network_gets_the_stacks_forwarder_for_a_stub() {
        let pasta = resolv_conf(STUB, Some(UPSTREAM), Network::Private, Some(Stack::Pasta));
        assert_eq!(
            pasta,
            "# systemd\nnameserver 169.254.1.1\noptions edns0 trust-ad\nsearch lan\n"
        );
        let slirp = resolv_conf(
            "nameserver 127.0.1.1\nnameserver ::1\nnameserver 198.51.100.53\n",
            None,
            Network::Private,
            Some(Stack::Slirp4netns),
        );
        assert_eq!(slirp, "nameserver 10.0.2.3\n");
        // A resolver on the network is asked through the forwarder too, and
        // a host without any gets the forwarder (which falls back itself).
        let plain = "nameserver 198.51.100.53\nsearch corp\n";
        assert_eq!(
            resolv_conf(plain, None, Network::Private, Some(Stack::Pasta)),
            "nameserver 169.254.1.1\nsearch corp\n"
        );
        assert_eq!(
            resolv_conf("", None, Network::Private, Some(Stack::Slirp4netns)),
            "nameserver 10.0.2.3\n"
        );
    }

    #[test]
    fn host_network_gets_the_stubs_upstream_and_none_gets_no_server() {
        assert_eq!(
            resolv_conf(STUB, Some(UPSTREAM), Network::Host, None),
            UPSTREAM
        );
        assert_eq!(
            resolv_conf(STUB, None, Network::None, None),
            "# systemd\noptions edns0 trust-ad\nsearch lan\n"
        );
        assert_eq!(
            resolv_conf("search lan\n", None, Network::Host, None),
            "search lan\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n"
        );
    }
}
