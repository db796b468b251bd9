//! The `hoist` command line: flags in, library calls, errors out.
//! Flags follow `docker buildx build` and the `docker` image commands
//! where the two overlap.

mod commands;
mod config_file;
mod network;
mod report;
mod usage;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};
use commands::{archive, build, export, images, registry, store};

#[derive(Parser)]
#[command(
    name = "hoist",
    version,
    about = "A daemonless container image builder for Dockerfiles"
)]
struct Cli {
    /// The local store (default: $HOIST_ROOT, else `root` in the config
    /// file, else /var/lib/hoist as root, else $XDG_DATA_HOME/hoist).
    #[arg(long, global = true, value_name = "DIR")]
    root: Option<PathBuf>,
    /// The config file (default: $HOIST_CONFIG, else /etc/hoist/config.toml
    /// as root, else $XDG_CONFIG_HOME/hoist/config.toml).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build an image from a Dockerfile and a context.
    Build(Box<build::BuildArgs>),
    /// Parse a Dockerfile and print its syntax tree or its typed stages.
    Parse(commands::parse::Args),
    /// Show the stage graph: what the target needs and what it skips.
    Graph(commands::graph::Args),
    /// List the images in the store.
    Images(images::ImagesArgs),
    /// Print an image's manifest and config as JSON.
    Inspect(images::InspectArgs),
    /// Give an image another name.
    Tag(images::TagArgs),
    /// Remove image names (blobs go at the next prune).
    Rmi(images::RmiArgs),
    /// Remove what no image needs (`--all`: also images and build cache).
    Prune(store::PruneArgs),
    /// Show the store's disk usage.
    Du(store::DuArgs),
    /// Maintain the store.
    Store {
        #[command(subcommand)]
        command: StoreCmd,
    },
    /// Write images to a tarball that docker load, podman load and skopeo read.
    Save(archive::SaveArgs),
    /// Load images from an OCI or docker tarball.
    Load(archive::LoadArgs),
    /// Export an image to any `-o` output (oci, docker, local, tar, image).
    Export(export::ExportArgs),
    /// Pull an image from a registry into the store.
    Pull(registry::PullArgs),
    /// Push an image from the store to a registry.
    Push(registry::PushArgs),
    /// Store credentials for a registry (in Docker's config.json).
    Login(registry::LoginArgs),
    /// Remove stored credentials for a registry.
    Logout(registry::LogoutArgs),
    #[command(flatten)]
    Docs(commands::completion::DocsCmd),
}

#[derive(Subcommand)]
enum StoreCmd {
    /// Verify every blob's digest, every reference, the unpacked trees and
    /// path indexes builds reuse, and who may reach the store; exit 1 on
    /// damage.
    Check {
        /// Fix what can be fixed: directories other local users could
        /// reach get their group and other bits taken away; broken
        /// unpacked trees and path indexes are removed (the next build
        /// makes them again from the blobs).
        #[arg(long)]
        repair: bool,
    },
}

fn main() {
    // A sandbox process (hoist started again for a RUN step) before anything
    // else: it must stay single-threaded.
    if let Some(code) = hoist_sandbox::dispatch() {
        std::process::exit(code)
    }
    // As a user: hoist again as root of a user namespace (rootless).
    let notify = |n: &hoist_sandbox::rootless::Notice| {
        if n.is_warning() {
            eprintln!("hoist: warning: {n}");
        } else {
            eprintln!("hoist: {n}");
        }
    };
    if let Some(code) = hoist_sandbox::rootless::enter_if_unprivileged(&notify) {
        std::process::exit(code)
    }
    // Mounts hoist makes itself (read-only views of stages) stay private to
    // this process and vanish with it. Where it is not allowed, views fall
    // back to unpacking.
    let _ = hoist_sandbox::view::private_mount_namespace();
    let cli = Cli::try_parse().unwrap_or_else(|e| match usage::unknown_flag(&e) {
        Some(message) => {
            eprintln!("{message}");
            std::process::exit(usage::EXIT)
        }
        None => e.exit(),
    });
    if let Err(err) = run(cli) {
        report::error(&err);
        std::process::exit(build::cancelled_by().map_or(1, |sig| 128 + sig));
    }
}

fn run(cli: Cli) -> Result<()> {
    config_file::init(cli.config.clone());
    let open = || -> Result<hoist_engine::store::Store> {
        let root = config_file::store_root(cli.root.as_deref())?;
        let store = hoist_engine::store::Store::open(root)?;
        store::warn_loose_modes(&store);
        Ok(store)
    };
    match cli.command {
        Cmd::Build(args) => build::run(&open()?, *args),
        Cmd::Parse(args) => commands::parse::run(args),
        Cmd::Graph(args) => commands::graph::run(args, &open),
        Cmd::Images(args) => images::images(&open()?, args),
        Cmd::Inspect(args) => images::inspect(&open()?, args),
        Cmd::Tag(args) => images::tag(&open()?, args),
        Cmd::Rmi(args) => images::rmi(&open()?, args),
        Cmd::Prune(args) => store::prune(&open()?, args),
        Cmd::Du(args) => store::du(&open()?, args),
        Cmd::Store {
            command: StoreCmd::Check { repair },
        } => store::check(&open()?, repair),
        Cmd::Save(args) => archive::save(&open()?, args),
        Cmd::Load(args) => archive::load(&open()?, args),
        Cmd::Export(args) => export::export(&open()?, args),
        Cmd::Pull(args) => registry::pull_cmd(&open()?, args),
        Cmd::Push(args) => registry::push_cmd(&open()?, args),
        Cmd::Login(args) => registry::login(args),
        Cmd::Logout(args) => registry::logout(args),
        Cmd::Docs(cmd) => commands::completion::run(cmd, <Cli as clap::CommandFactory>::command()),
    }
}
