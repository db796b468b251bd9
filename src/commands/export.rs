//! `hoist export IMAGE -o SPEC`: an image from the store to any output
//! `hoist build -o` takes (`docker buildx` syntax): `type=oci`,
//! `type=docker`, `type=local`, `type=tar`, `type=image[,push=true]`.

use anyhow::{Context, Result};
use hoist_engine::executor::{BuildEvent, BuildProgress};
use hoist_engine::export::{OutputKind, OutputSpec};
use hoist_engine::request::outputs::{self, Source};
use hoist_engine::request::{Notice, Report};
use hoist_engine::store::Store;

use super::archive::source_date_epoch;
use super::images::{lookup, manifest_of};
use super::registry::{RegistryArgs, runtime};

#[derive(clap::Args)]
pub struct ExportArgs {
    /// The image in the store.
    image: String,
    /// Where it goes, as `docker buildx build -o` takes it; repeatable.
    #[arg(short, long = "output", value_name = "SPEC", required = true)]
    outputs: Vec<String>,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// Notices on stderr, tarballs to stdout; no build events.
struct Front;

impl BuildProgress for Front {
    fn event(&self, _: BuildEvent) {}
}

impl Report for Front {
    fn notice(&self, notice: Notice) {
        super::notices::print(notice, false);
    }

    fn stdout(&self) -> std::io::Result<Box<dyn std::io::Write + '_>> {
        super::notices::stdout()
    }
}

pub fn export(store: &Store, args: ExportArgs) -> Result<()> {
    for raw in &args.outputs {
        let spec = OutputSpec::parse(raw)?;
        run(store, &args.image, &spec, &args.registry)
            .with_context(|| format!("exporting to {raw}"))?;
    }
    Ok(())
}

/// Export one stored image to one output (`hoist_engine::request::outputs`).
fn run(store: &Store, image: &str, spec: &OutputSpec, registry: &RegistryArgs) -> Result<()> {
    let target = lookup(store, image)?;
    let source = Source {
        manifest: manifest_of(store, image)?,
        // A bare digest or ID (a build without -t) names nothing, as BuildKit.
        name: target.name,
        stored: Some((target.digest, target.media_type)),
    };
    let pushes = matches!(spec.kind, OutputKind::Image { push: true, .. });
    let client = pushes.then(|| registry.client()).transpose()?;
    let cx = outputs::Context {
        client: client.as_ref(),
        runtime: runtime()?.handle(),
        epoch: source_date_epoch(),
    };
    Ok(outputs::export(store, &cx, &source, spec, &Front)?)
}
