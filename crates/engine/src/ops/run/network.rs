//! A step's network, as the sandbox gets it (docs/network.md).
//!
//! `Private` (the default, BuildKit's) is a network namespace of the
//! step's own with outbound access through a user-mode stack: `pasta`
//! where installed, else `slirp4netns` ([`STACK_ENV`] picks one). Found
//! once per process; the first private step prints one line saying what
//! steps get. Where neither is installed, steps get no network at all
//! (`none`: loopback only), never the host's, and the line says how to
//! get one.

use std::sync::Mutex;

use hoist_sandbox::{Network, Stack};

/// `pasta` or `slirp4netns`: the stack private steps must use (an error
/// when it is not installed); unset, the first installed of both.
pub const STACK_ENV: &str = "HOIST_NETWORK_STACK";

struct Found {
    stack: Result<Option<Stack>, String>,
    printed: bool,
}

static FOUND: Mutex<Option<Found>> = Mutex::new(None);

/// What a step asking for `network` gets: the network and, for a
/// private one, its stack; the first private step tells `on_line`.
pub(super) fn resolve(
    network: Network,
    on_line: &mut dyn FnMut(&str),
) -> Result<(Network, Option<Stack>), String> {
    if network != Network::Private {
        return Ok((network, None));
    }
    let mut found = FOUND.lock().unwrap_or_else(|p| p.into_inner());
    let f = found.get_or_insert_with(|| Found {
        stack: find(std::env::var(STACK_ENV).ok().as_deref()),
        printed: false,
    });
    let stack = f.stack.clone()?;
    if !f.printed {
        f.printed = true;
        on_line(&line(stack));
    }
    Ok(match stack {
        Some(stack) => (Network::Private, Some(stack)),
        None => (Network::None, None),
    })
}

/// The stack `wanted` names (it must be installed), or the first installed.
fn find(wanted: Option<&str>) -> Result<Option<Stack>, String> {
    match wanted.filter(|w| !w.is_empty()) {
        Some(name) => {
            let stack = Stack::from_name(name)
                .ok_or_else(|| format!("{STACK_ENV}={name:?}: expected pasta or slirp4netns"))?;
            match stack.find() {
                Some(_) => Ok(Some(stack)),
                None => Err(format!(
                    "{STACK_ENV}={name}: {name} is not installed (docs/network.md)"
                )),
            }
        }
        None => Ok(Stack::installed(&Stack::ALL).map(|(s, _)| s)),
    }
}

/// The one line about the default network.
fn line(stack: Option<Stack>) -> String {
    match stack {
        Some(stack) => format!(
            "network: private ({}): a network namespace per step with outbound access; the \
             host's loopback, abstract sockets and interfaces are out of reach",
            stack.name()
        ),
        None => "network: none: neither pasta nor slirp4netns is installed, so steps have \
                 loopback only (apt-get install passt gives them outbound access; \
                 --network host needs --allow network.host)"
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_stack_or_says_there_is_none() {
        assert!(line(Some(Stack::Pasta)).starts_with("network: private (pasta)"));
        let none = line(None);
        assert!(none.contains("loopback only") && none.contains("apt-get install passt"));
        assert!(
            find(Some("bridge"))
                .unwrap_err()
                .contains("expected pasta or slirp4netns")
        );
    }
}
