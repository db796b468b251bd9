//! Registry commands: `pull`, `push`, `login`, `logout`. The registry
//! client is async; each command runs it on its own runtime.

use std::io::{BufRead, IsTerminal, Read};
use std::path::PathBuf;

use anyhow::{Context, Result};
use hoist_engine::reference::Reference;
use hoist_engine::registry::{Client, ClientOptions, Credentials, Progress, ProgressEvent};
use hoist_engine::store::Store;
use hoist_engine::transfer::{PullOptions, pull, push};

use super::images::{host_platform, lookup, manifest_of};
use hoist_engine::export::recompress::recompress_layers;
use hoist_engine::image::media_types;

/// Registry settings shared by every command that talks to one.
#[derive(clap::Args, Clone, Default)]
pub struct RegistryArgs {
    /// A registry (`host[:port]`) that may be used over plain HTTP
    /// (localhost and 127.0.0.0/8 always may) or TLS without certificate
    /// verification. Repeatable; also `HOIST_INSECURE_REGISTRIES=a,b` and
    /// `insecure = true` in the config file.
    #[arg(long = "insecure-registry", value_name = "HOST")]
    insecure: Vec<String>,
    /// Extra CA certificates (PEM) to trust for registries.
    #[arg(long = "registry-ca", value_name = "FILE", env = "HOIST_REGISTRY_CA")]
    ca: Option<PathBuf>,
}

impl RegistryArgs {
    pub fn client(&self) -> Result<Client> {
        let mut insecure = self.insecure.clone();
        if let Ok(list) = std::env::var("HOIST_INSECURE_REGISTRIES") {
            insecure.extend(
                list.split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string),
            );
        }
        // The config file's `insecure` registries and mirrors add to these.
        let config = crate::config_file::get()?;
        insecure.extend(config.insecure_registries());
        let options = ClientOptions {
            insecure_registries: insecure,
            extra_ca_file: self.ca.clone(),
            mirrors: config.mirrors(),
            idle_timeout: idle_timeout()?,
            ..ClientOptions::default()
        };
        Ok(Client::new(options)?)
    }
}

/// `$HOIST_REGISTRY_IDLE_TIMEOUT` (seconds): how long a pull waits for the
/// next byte before it resumes the blob from what arrived (default 30).
fn idle_timeout() -> Result<std::time::Duration> {
    const VAR: &str = "HOIST_REGISTRY_IDLE_TIMEOUT";
    let Some(raw) = std::env::var_os(VAR) else {
        return Ok(hoist_engine::registry::DEFAULT_IDLE_TIMEOUT);
    };
    let text = raw.to_string_lossy();
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s > 0.0 && *s <= 86_400.0)
        .map(std::time::Duration::from_secs_f64)
        .with_context(|| {
            format!("{VAR}={text:?}: expected a number of seconds, more than 0 and at most 86400")
        })
}

/// The process's one tokio runtime, made on first use: the engine is
/// handed its `Handle` (it makes none of its own).
pub fn runtime() -> Result<&'static tokio::runtime::Runtime> {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    if let Some(rt) = RUNTIME.get() {
        return Ok(rt);
    }
    let made = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    // Two threads racing here: the loser's runtime is dropped unused.
    Ok(RUNTIME.get_or_init(|| made))
}

/// One line per blob as it finishes, on stderr (docker pull's spirit).
fn progress(quiet: bool) -> Progress {
    if quiet {
        return Progress::none();
    }
    Progress::new(|e| match e {
        ProgressEvent::Done { digest } => eprintln!("{}: done", &digest.hex()[..12]),
        ProgressEvent::Exists { digest } => eprintln!("{}: already exists", &digest.hex()[..12]),
        ProgressEvent::Mounted { digest, from } => {
            eprintln!("{}: mounted from {from}", &digest.hex()[..12])
        }
        ProgressEvent::Bytes { .. } => {}
    })
}

#[derive(clap::Args)]
pub struct PullArgs {
    image: String,
    /// The platform to pick from a multi-platform image (default: this machine's).
    #[arg(long)]
    platform: Option<String>,
    #[arg(short, long)]
    quiet: bool,
    /// Unpack the layers into the store's snapshot now (as `docker pull`).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    unpack: bool,
    #[command(flatten)]
    registry: RegistryArgs,
}

pub fn pull_cmd(store: &Store, args: PullArgs) -> Result<()> {
    let reference = Reference::parse(&args.image)
        .with_context(|| format!("invalid image reference {:?}", args.image))?;
    let platform = match &args.platform {
        Some(p) => p.parse().map_err(|e| anyhow::anyhow!("{e}"))?,
        None => host_platform(),
    };
    let client = args.registry.client()?;
    let report = runtime()?.block_on(pull(
        &client,
        store,
        &reference,
        &PullOptions {
            platform: platform.clone(),
        },
        &progress(args.quiet),
    ))?;
    if !args.quiet {
        eprintln!("Digest: {}", report.digest);
    }
    // Unpacked now, as docker and podman do at pull time (the first build
    // on it does not wait); --unpack=false skips it.
    if args.unpack {
        hoist_engine::executor::snapshot::unpack_image(store, &report.manifest, &platform)?;
    }
    crate::report::outln!("{}", report.name);
    Ok(())
}

#[derive(clap::Args)]
pub struct PushArgs {
    /// The image in the store.
    source: String,
    /// Where to push it (default: its own name).
    dest: Option<String>,
    #[arg(short, long)]
    quiet: bool,
    #[command(flatten)]
    registry: RegistryArgs,
}

pub fn push_cmd(store: &Store, args: PushArgs) -> Result<()> {
    let target = lookup(store, &args.source)?;
    let media_type = target.media_type.clone();
    let dest = match (&args.dest, &target.name) {
        (Some(d), _) => d.as_str(),
        (None, Some(_)) => args.source.as_str(),
        (None, None) => anyhow::bail!(
            "{} is an image ID, not a name: give the destination (hoist push {} REGISTRY/REPO:TAG)",
            args.source,
            args.source
        ),
    };
    let dest = Reference::parse(dest).with_context(|| format!("invalid destination {dest:?}"))?;
    // An image given by ID is pushed under the destination's name.
    let mut source = match target.name {
        Some(name) => name,
        None => {
            store.set_ref(&dest.to_string(), &target.digest, Some(&media_type))?;
            dest.to_string()
        }
    };
    // Built layers are stored uncompressed (as BuildKit's snapshots);
    // registries get gzip, as `docker push` sends. The gzip manifest is
    // what the destination name points at locally afterwards.
    if !media_types::is_index(&media_type) {
        let manifest = manifest_of(store, &args.source)?;
        let gz = recompress_layers(
            store,
            &manifest,
            hoist_engine::layer::Compression::Gzip,
            None,
            false,
        )?;
        if gz.digest() != manifest.digest() {
            source = dest.to_string();
            store.set_ref(&source, gz.digest(), Some(gz.value().media_type()))?;
        }
    }
    let client = args.registry.client()?;
    let report =
        runtime()?.block_on(push(&client, store, &source, &dest, &progress(args.quiet)))?;
    crate::report::outln!("{}: digest: {}", dest.familiar(), report.digest);
    Ok(())
}

#[derive(clap::Args)]
pub struct LoginArgs {
    /// The registry (`host[:port]`; default: Docker Hub).
    server: Option<String>,
    /// Asked for on a terminal when not given.
    #[arg(short, long)]
    username: Option<String>,
    /// The password or token (insecure: it shows in `ps` and the shell's
    /// history; asked for without echo on a terminal when not given).
    #[arg(short, long)]
    password: Option<String>,
    /// Read the password from stdin.
    #[arg(long)]
    password_stdin: bool,
    #[command(flatten)]
    registry: RegistryArgs,
}

fn domain(server: Option<&str>) -> String {
    let s = server.unwrap_or("docker.io");
    let s = s
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let s = s
        .strip_suffix("/v1")
        .or_else(|| s.strip_suffix("/v2"))
        .unwrap_or(s);
    if s == "index.docker.io" || s == "registry-1.docker.io" {
        "docker.io".into()
    } else {
        s.to_string()
    }
}

/// A password on stdin is refused past this many bytes (hostile input is
/// bounded).
const MAX_STDIN_PASSWORD: u64 = 1 << 20;

/// docker's words for a login that needs a prompt without a terminal.
const NO_TTY: &str = "Cannot perform an interactive login from a non TTY device";

/// `hoist login`, as `docker login`: `--password-stdin` reads the secret
/// from stdin, `-p` warns as docker warns, stored credentials are tried
/// when neither username nor password is given, and what is missing is
/// asked for on a terminal (the password without echo; the stored
/// username is the default).
pub fn login(args: LoginArgs) -> Result<()> {
    if args.password.is_some() && args.password_stdin {
        anyhow::bail!("--password and --password-stdin are mutually exclusive");
    }
    let mut password = args.password;
    if password.is_some() {
        eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
    }
    if args.password_stdin {
        if args.username.is_none() {
            anyhow::bail!("Must provide --username with --password-stdin");
        }
        let mut bytes = Vec::new();
        std::io::stdin()
            .lock()
            .take(MAX_STDIN_PASSWORD + 1)
            .read_to_end(&mut bytes)
            .context("reading the password from stdin")?;
        if bytes.len() as u64 > MAX_STDIN_PASSWORD {
            anyhow::bail!("the password on stdin is longer than {MAX_STDIN_PASSWORD} bytes");
        }
        let text = String::from_utf8(bytes).context("the password on stdin is not UTF-8")?;
        // docker trims one trailing newline (and a carriage return before it).
        let text = text.strip_suffix('\n').unwrap_or(&text);
        password = Some(text.strip_suffix('\r').unwrap_or(text).to_string());
    }
    let domain = domain(args.server.as_deref());
    let client = args.registry.client()?;
    let rt = runtime()?;
    // Neither given: the stored credentials first, as docker does.
    let stored = rt
        .block_on(hoist_engine::registry::CredentialStore::from_env().get(&domain))
        .ok()
        .flatten();
    if args.username.is_none()
        && password.is_none()
        && let Some(creds @ Credentials::Basic { .. }) = &stored
    {
        crate::report::outln!("Authenticating with existing credentials...");
        match rt.block_on(client.login(&domain, creds.clone())) {
            Ok(()) => {
                crate::report::outln!("Login Succeeded");
                return Ok(());
            }
            Err(e) => eprintln!("Login did not succeed, error: {e}"),
        }
    }
    let stored_user = match &stored {
        Some(Credentials::Basic { username, .. } | Credentials::IdentityToken { username, .. }) => {
            Some(username.clone())
        }
        None => None,
    };
    let interactive = std::io::stdin().is_terminal();
    let username = match args.username {
        Some(u) => u,
        None if interactive => {
            match &stored_user {
                Some(u) => print!("Username ({u}): "),
                None => print!("Username: "),
            }
            std::io::Write::flush(&mut std::io::stdout())?;
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line)?;
            match (line.trim(), stored_user) {
                ("", Some(u)) => u,
                _ => line,
            }
        }
        None => anyhow::bail!(NO_TTY),
    };
    let username = username.trim().to_string();
    if username.is_empty() {
        anyhow::bail!("Non-null Username Required");
    }
    let password = match password {
        Some(p) => p,
        None if interactive => {
            rpassword::prompt_password("Password: ").context("reading the password")?
        }
        None => anyhow::bail!(NO_TTY),
    };
    if password.is_empty() {
        anyhow::bail!("Password Required");
    }
    rt.block_on(client.login(&domain, Credentials::Basic { username, password }))?;
    crate::report::outln!("Login Succeeded");
    Ok(())
}

#[derive(clap::Args)]
pub struct LogoutArgs {
    server: Option<String>,
}

pub fn logout(args: LogoutArgs) -> Result<()> {
    let domain = domain(args.server.as_deref());
    let client = RegistryArgs::default().client()?;
    if runtime()?.block_on(client.logout(&domain))? {
        crate::report::outln!("Removing login credentials for {domain}");
    } else {
        crate::report::outln!("Not logged in to {domain}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::domain;

    #[test]
    fn login_server_names() {
        assert_eq!(domain(None), "docker.io");
        assert_eq!(domain(Some("https://index.docker.io/v1/")), "docker.io");
        assert_eq!(domain(Some("127.0.0.1:5000")), "127.0.0.1:5000");
        assert_eq!(domain(Some("http://r.example:5000/")), "r.example:5000");
    }
}
