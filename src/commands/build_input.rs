//! What `hoist build` reads before it plans: the context directory and
//! the Dockerfile, either of them from stdin (`hoist build -`: a context
//! tar, or a Dockerfile alone as `docker build - < Dockerfile`), and
//! BuildKit's lowercase `dockerfile` fallback.

use std::path::PathBuf;

use anyhow::{Context as _, Result};
use hoist_engine::store::Store;

use super::input;

/// The build's context directory and Dockerfile.
pub struct Given {
    pub context: PathBuf,
    /// The Dockerfile's path (`None`: it came from stdin).
    pub dockerfile: Option<PathBuf>,
    pub src: input::Source,
    /// A stdin context's directory in the store's `tmp/`, removed on drop.
    pub scratch: Option<tempfile::TempDir>,
}

/// `CONTEXT` and `-f FILE` as given.
pub fn read(store: &Store, mut context: PathBuf, mut file: Option<String>) -> Result<Given> {
    // `hoist build -`: stdin is a tar of the context (its Dockerfile inside
    // it unless -f names another), unpacked safely into the store's tmp/
    // for this build; or, as `docker build - < Dockerfile`, a Dockerfile
    // alone with an empty context.
    let mut stdin_dockerfile: Option<Vec<u8>> = None;
    let scratch = if context.as_os_str() == "-" {
        if file.as_deref() == Some("-") {
            anyhow::bail!("the context and the Dockerfile cannot both come from stdin");
        }
        let scratch = tempfile::Builder::new()
            .prefix("context-")
            .tempdir_in(store.root().join("tmp"))
            .context("creating a directory for the stdin context")?;
        let dir = scratch.path().join("ctx");
        // The first KiB decides (a pipe may hand it over in pieces).
        let mut head = Vec::with_capacity(1024);
        std::io::Read::read_to_end(
            &mut std::io::Read::take(std::io::stdin().lock(), 1024),
            &mut head,
        )
        .context("reading stdin")?;
        let archive = hoist_engine::ops::file::looks_like_archive(&head);
        let mut stdin = std::io::Read::chain(std::io::Cursor::new(head), std::io::stdin().lock());
        if archive {
            hoist_engine::context::Context::from_tar(stdin, &dir, None)
                .context("reading the build context from stdin")?;
            if file.is_none() {
                file = Some(dir.join("Dockerfile").display().to_string());
            }
        } else {
            let text = hoist_engine::context::read_bounded(&mut stdin)
                .context("reading the Dockerfile from stdin")?;
            std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
            if file.is_some() {
                anyhow::bail!(
                    "stdin holds a Dockerfile, not a context tar: -f has nothing to name"
                );
            }
            stdin_dockerfile = Some(text);
        }
        context = dir;
        Some(scratch)
    } else {
        None
    };
    // BuildKit (and the docker CLI) take a lowercase `dockerfile` when
    // there is no `Dockerfile`.
    if file.is_none() && stdin_dockerfile.is_none() {
        let lower = context.join("dockerfile");
        if !context.join("Dockerfile").exists() && lower.is_file() {
            file = Some(lower.display().to_string());
        }
    }
    let dockerfile_path = match file.as_deref() {
        Some("-") => None,
        Some(f) => Some(PathBuf::from(f)),
        None if stdin_dockerfile.is_some() => None,
        None => Some(context.join("Dockerfile")),
    };
    let src = match stdin_dockerfile {
        Some(bytes) => input::Source {
            name: "<stdin>".into(),
            text: String::from_utf8(bytes).context("<stdin>: the Dockerfile is not valid UTF-8")?,
        },
        None => input::read(Some(
            dockerfile_path
                .as_ref()
                .map_or("-".to_string(), |p| p.display().to_string())
                .as_str(),
        ))?,
    };
    Ok(Given {
        context,
        dockerfile: dockerfile_path,
        src,
        scratch,
    })
}
