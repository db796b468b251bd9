//! `hoist build --network` and `--allow`: the default network of `RUN`
//! steps and the entitlements granted, checked before the build starts
//! (docs/network.md). `--network host` without `network.host` (from
//! `--allow` or the configuration file's `[build] allow`) is refused with
//! BuildKit's message.

use anyhow::Result;
use hoist_engine::executor::{Entitlement, Entitlements, RunNetwork};

/// The `--network` value (already defaulted from the configuration file)
/// and the `--allow` values: the steps' default network and the granted
/// entitlements.
pub fn options(network: Option<&str>, allow: &[String]) -> Result<(RunNetwork, Entitlements)> {
    let mut granted = Entitlements::parse(allow).map_err(anyhow::Error::msg)?;
    for &e in &crate::config_file::get()?.build.allow {
        granted.grant(e);
    }
    let network = match network.unwrap_or("default") {
        "default" => RunNetwork::Private,
        "none" => RunNetwork::None,
        "host" => {
            granted
                .require(Entitlement::NetworkHost)
                .map_err(anyhow::Error::msg)?;
            RunNetwork::Host
        }
        other => anyhow::bail!("invalid --network {other:?}: expected default, host or none"),
    };
    Ok((network, granted))
}
