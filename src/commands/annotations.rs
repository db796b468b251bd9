//! `--annotation` (buildx's syntax, parsed in
//! `hoist_engine::export::annotation`; applied by `hoist_engine::request`).

use anyhow::Result;
use hoist_engine::export::annotation::{self, Annotation};

/// `--annotation` values.
pub fn parse_flags(values: &[String]) -> Result<Vec<Annotation>> {
    let mut out = Vec::new();
    for v in values {
        out.extend(annotation::parse_flag(v).map_err(anyhow::Error::msg)?);
    }
    annotation::check_single_platform(&out).map_err(anyhow::Error::msg)?;
    Ok(out)
}
