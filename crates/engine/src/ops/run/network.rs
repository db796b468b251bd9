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

use std::sync::Mutex;

use hoist_sandbox::{Network, Stack};

/// `pasta` or `slirp4netns`: the stack private steps must use (an error
/// when it cannot serve); unset, the first installed of both.
pub const STACK_ENV: &str = "HOIST_NETWORK_STACK";

struct Found {
    /// `Ok(Err(why))`: no stack can serve here (the line says why).
    stack: Result<Result<Stack, String>, String>,
    printed: bool,
}

static FOUND: Mutex<Option<Found>> = Mutex::new(None);

/// What a step asking for `network` gets: the network and, for a
/// private one, its stack; the first private step tells `on_line`.
/// `namespaces`: the isolation plan has them (`--isolation=chroot` where
/// none can be made has none, and its line says steps share hoist's
/// network: a private one cannot be had, so the step shares it).
pub(super) fn resolve(
    network: Network,
    namespaces: bool,
    on_line: &mut dyn FnMut(&str),
) -> Result<(Network, Option<Stack>), String> {
    if network != Network::Private {
        return Ok((network, None));
    }
    let mut found = FOUND.lock().unwrap_or_else(|p| p.into_inner());
    if !namespaces {
        let f = found.get_or_insert_with(|| Found {
            stack: Ok(Err(String::new())),
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
fn find(wanted: Option<&str>) -> Result<Result<Stack, String>, String> {
    let Some(name) = wanted.filter(|w| !w.is_empty()) else {
        return Ok(match Stack::installed(&Stack::ALL) {
            None => Err(
                "neither pasta nor slirp4netns is installed (apt-get install passt \
                         gives steps outbound access)"
                    .to_string(),
            ),
            Some((stack, _)) => tun().map(|()| stack),
        });
    };
    let stack = Stack::from_name(name)
        .ok_or_else(|| format!("{STACK_ENV}={name:?}: expected pasta or slirp4netns"))?;
    if stack.find().is_none() {
        return Err(format!(
            "{STACK_ENV}={name}: {name} is not installed (docs/network.md)"
        ));
    }
    tun().map_err(|why| format!("{STACK_ENV}={name}: {why}"))?;
    Ok(Ok(stack))
}

/// The stacks attach a tap device: `/dev/net/tun` must open (it is 0666
/// on distributions; a rootless hoist is "other" to it).
fn tun() -> Result<(), String> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .map(drop)
        .map_err(|e| format!("/dev/net/tun cannot be opened ({e})"))
}

/// The one line about the default network.
fn line(stack: &Result<Stack, String>) -> String {
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
        let none = line(&Err("neither pasta nor slirp4netns is installed".into()));
        assert!(
            none.starts_with("network: none, loopback only: neither"),
            "{none}"
        );
        assert!(
            find(Some("bridge"))
                .unwrap_err()
                .contains("expected pasta or slirp4netns")
        );
    }
}
