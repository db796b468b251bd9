//! A step's network, as the sandbox gets it (docs/network.md).
//!
//! `Private` (the default, BuildKit's) is a network namespace of the
//! step's own with outbound access through a user-mode stack: `pasta`
//! where installed, else `slirp4netns` ([`STACK_ENV`] picks one). Found
//! once per process; the first private step prints one line saying what
//! steps get. Where no stack can serve (neither is installed, or
//! `/dev/net/tun` cannot be opened, as for a rootless hoist on a host that
//! made it 0600), steps get no network at all (`none`: loopback only),
//! never the host's, and the line says why and what would do.

use std::sync::{Arc, Mutex};

use hoist_sandbox::{Network, Stack};

/// `pasta` or `slirp4netns`: the stack private steps must use (an error
/// when it cannot serve); unset, the first installed of both.
pub const STACK_ENV: &str = "HOIST_NETWORK_STACK";

/// The stack [`STACK_ENV`] names cannot serve: an error, since the
/// person running the build asked for it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StackError {
    /// Neither `pasta` nor `slirp4netns`.
    #[error("{env}={0:?}: expected pasta or slirp4netns", env = STACK_ENV)]
    Unknown(String),
    /// Not installed.
    #[error("{env}={0}: {0} is not installed (docs/network.md)", env = STACK_ENV)]
    NotInstalled(String),
    /// Installed, but `/dev/net/tun` does not open.
    #[error("{env}={name}: {source}", env = STACK_ENV)]
    Tun {
        name: String,
        #[source]
        source: TunError,
    },
}

/// Why private steps get no network here (their line says it).
#[derive(Debug, Clone, thiserror::Error)]
pub enum NoStack {
    /// `--isolation=chroot` without namespaces (its own line says so).
    #[error("no network namespace")]
    NoNamespaces,
    /// Only pasta is installed and the host has no default route.
    #[error("the host has no default route, which pasta needs (slirp4netns does not)")]
    NoDefaultRoute,
    /// Neither stack is installed.
    #[error(
        "neither pasta nor slirp4netns is installed (apt-get install passt gives steps outbound access)"
    )]
    NotInstalled,
    /// A stack is installed but cannot attach its tap device.
    #[error(transparent)]
    Tun(#[from] TunError),
}

/// `/dev/net/tun` does not open (shared by the steps of a build, hence the
/// `Arc`).
#[derive(Debug, Clone, thiserror::Error)]
#[error("/dev/net/tun cannot be opened ({0})")]
pub struct TunError(#[source] Arc<std::io::Error>);

/// The stack a build's private steps use, found by its first such step
/// (held by the build's `Probe`), and whether its line was printed.
pub(super) struct Found {
    /// `Ok(Err(why))`: no stack can serve here (the line says why).
    stack: Result<Result<Stack, NoStack>, StackError>,
    printed: bool,
}

/// What a step asking for `network` gets: the network and, for a
/// private one, its stack; the first private step tells `on_line`.
/// `namespaces`: the isolation plan has them (`--isolation=chroot` where
/// none can be made has none, and its line says steps share hoist's
/// network: a private one cannot be had, so the step shares it).
pub(super) fn resolve(
    found: &Mutex<Option<Found>>,
    network: Network,
    namespaces: bool,
    on_line: &mut dyn FnMut(&str),
) -> Result<(Network, Option<Stack>), StackError> {
    if network != Network::Private {
        return Ok((network, None));
    }
    let mut found = found.lock().unwrap_or_else(|p| p.into_inner());
    if !namespaces {
        let f = found.get_or_insert_with(|| Found {
            stack: Ok(Err(NoStack::NoNamespaces)),
            printed: false,
        });
        if !f.printed {
            f.printed = true;
            on_line(
                "network: hoist's own: --isolation=chroot without namespaces has no network \
                 namespace to give steps",
            );
        }
        return Ok((Network::Host, None));
    }
    let f = found.get_or_insert_with(|| Found {
        stack: find(std::env::var(STACK_ENV).ok().as_deref()),
        printed: false,
    });
    let stack = f.stack.clone()?;
    if !f.printed {
        f.printed = true;
        on_line(&line(&stack));
    }
    Ok(match stack {
        Ok(stack) => (Network::Private, Some(stack)),
        Err(_) => (Network::None, None),
    })
}

/// The stack `wanted` names (it must serve), or the first installed; the
/// inner `Err` says why there is none.
fn find(wanted: Option<&str>) -> Result<Result<Stack, NoStack>, StackError> {
    let Some(name) = wanted.filter(|w| !w.is_empty()) else {
        // pasta copies the host's default route and refuses to start
        // without one; slirp4netns has its own.
        let routed = default_route(
            &std::fs::read_to_string("/proc/net/route").unwrap_or_default(),
            &std::fs::read_to_string("/proc/net/ipv6_route").unwrap_or_default(),
        );
        let order: &[Stack] = if routed {
            &Stack::ALL
        } else {
            &[Stack::Slirp4netns]
        };
        return Ok(match Stack::installed(order) {
            Some((stack, _)) => tun().map(|()| stack).map_err(NoStack::from),
            None if !routed && Stack::Pasta.find().is_some() => Err(NoStack::NoDefaultRoute),
            None => Err(NoStack::NotInstalled),
        });
    };
    let stack = Stack::from_name(name).ok_or_else(|| StackError::Unknown(name.to_owned()))?;
    if stack.find().is_none() {
        return Err(StackError::NotInstalled(name.to_owned()));
    }
    tun().map_err(|source| StackError::Tun {
        name: name.to_owned(),
        source,
    })?;
    Ok(Ok(stack))
}

/// Whether the host has a default route (`/proc/net/route`: destination
/// and mask 0; `/proc/net/ipv6_route`: `::/0` not on `lo`).
fn default_route(v4: &str, v6: &str) -> bool {
    let v4 = v4.lines().skip(1).any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() > 7 && f[1] == "00000000" && f[7] == "00000000"
    });
    let v6 = v6.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() > 9 && f[0].bytes().all(|b| b == b'0') && f[1] == "00" && f[9] != "lo"
    });
    v4 || v6
}

/// The stacks attach a tap device: `/dev/net/tun` must open (it is 0666
/// on distributions; a rootless hoist is "other" to it).
fn tun() -> Result<(), TunError> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .map(drop)
        .map_err(|e| TunError(Arc::new(e)))
}

/// The one line about the default network.
fn line(stack: &Result<Stack, NoStack>) -> String {
    match stack {
        Ok(stack) => format!(
            "network: private ({}): a network namespace per step with outbound access; the \
             host's loopback, abstract sockets and interfaces are out of reach",
            stack.name()
        ),
        Err(why) => format!(
            "network: none, loopback only: {why}; --network host needs --allow network.host \
             (docs/network.md)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_stack_or_says_there_is_none() {
        assert!(line(&Ok(Stack::Pasta)).starts_with("network: private (pasta)"));
        let none = line(&Err(NoStack::NotInstalled));
        assert!(
            none.starts_with("network: none, loopback only: neither"),
            "{none}"
        );
        let header = "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\n";
        let default = "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\n";
        let lan = "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\n";
        assert!(default_route(&format!("{header}{default}{lan}"), ""));
        assert!(!default_route(&format!("{header}{lan}"), ""));
        let v6 = "00000000000000000000000000000000 00 00000000000000000000000000000000 00 \
                  fd000000000000000000000000000001 00000400 00000002 00000000 00000003 eth0\n";
        assert!(default_route(header, v6));
        assert!(!default_route(header, &v6.replace("eth0", "lo")));
        assert!(
            find(Some("bridge"))
                .unwrap_err()
                .to_string()
                .contains("expected pasta or slirp4netns")
        );
    }
}
