//! Reading the Dockerfile named by `-f` (or stdin for `-`), and turning
//! front-end errors into errors that carry the file name and the line.

use anyhow::{Context, Result};

use crate::report::SourceError;

/// A Dockerfile's name (for messages) and text.
pub struct Source {
    pub name: String,
    pub text: String,
}

/// Read `-f FILE` (default `Dockerfile`); `-` reads stdin. Symlinks
/// resolve inside the file's directory.
pub fn read(file: Option<&str>) -> Result<Source> {
    let name = file.unwrap_or("Dockerfile").to_string();
    let bytes = if name == "-" {
        hoist_engine::context::read_bounded(std::io::stdin().lock())
            .context("reading the Dockerfile from stdin")?
    } else {
        // Resolved inside its own directory, as BuildKit reads it: a
        // symlink that leads out is refused, never read (nor echoed).
        let (dir, file) = hoist_engine::context::split_file(std::path::Path::new(&name));
        hoist_engine::context::read_in_dir(&dir, &file)
            .with_context(|| format!("reading Dockerfile {name}"))?
    };
    let text = String::from_utf8(bytes)
        .with_context(|| format!("{name}: the Dockerfile is not valid UTF-8"))?;
    Ok(Source {
        name: if name == "-" { "<stdin>".into() } else { name },
        text,
    })
}

impl Source {
    /// Attach file, line and the offending line's text to a front-end error.
    pub fn error(&self, err: hoist_dockerfile::Error) -> anyhow::Error {
        let line_text = (err.pos.line > 0)
            .then(|| self.text.lines().nth(err.pos.line - 1).map(str::to_string))
            .flatten();
        anyhow::Error::new(SourceError {
            file: self.name.clone(),
            pos: err.pos,
            message: err.message,
            line_text,
        })
    }

    /// Print the front end's warnings to stderr.
    pub fn warn(&self, warnings: &[hoist_dockerfile::Warning]) {
        for w in warnings {
            crate::report::warning(&self.name, w);
        }
    }
}

/// `--build-arg K=V`, or `K` alone to take the value from the environment
/// (ignored when unset), as `docker build` does.
pub fn build_args(raw: &[String]) -> Result<std::collections::BTreeMap<String, String>> {
    let mut out = std::collections::BTreeMap::new();
    for a in raw {
        match a.split_once('=') {
            Some(("", _)) => anyhow::bail!("invalid --build-arg {a:?}: the name is empty"),
            Some((k, v)) => {
                out.insert(k.to_string(), v.to_string());
            }
            None => {
                if let Ok(v) = std::env::var(a) {
                    out.insert(a.clone(), v);
                }
            }
        }
    }
    Ok(out)
}
